// The scripted scenario of issue 12 through every channel, with real
// stand-ins: an HTTP receiver for ntfy, one for a webhook (its HMAC
// signature checked), two SMTP receivers written for the test (STARTTLS on
// one, implicit TLS on the other, both with a login and a certificate from a
// test CA), and mosquitto_sub on the alert topics. The temperature rises
// past the threshold, hovers, stays, hovers and drops: exactly one "opened"
// and one "resolved" reach each of them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import type { MqttClient } from "mqtt";
import { connectMqtt, endMqtt, startServer, tempDir, waitFor, type TestServer } from "./helpers.ts";
import { placeDevice } from "./web-helpers.ts";
import {
  feed,
  httpReceiver,
  mosquittoSub,
  received,
  SCENARIO,
  smtpReceiver,
  testCertificates,
  type HttpReceiver,
  type SmtpReceiver,
} from "./alerts-helpers.ts";

const UID = "aht20-f1f1f1";
const BASE = Date.now() - 3_600_000;
let server: TestServer;
let client: MqttClient;
let ntfy: HttpReceiver;
let hook: HttpReceiver;
let mailStarttls: SmtpReceiver;
let mailTls: SmtpReceiver;
let sub: ReturnType<typeof mosquittoSub>;
let webhookSecret: string;
let ca: string;
const dir = tempDir("techtemp-alerts-certs-");

beforeAll(async () => {
  const certs = await testCertificates(dir.path);
  ca = certs.ca;
  ntfy = httpReceiver();
  hook = httpReceiver();
  const login = { user: "alerts@home.test", password: "mail password" };
  mailStarttls = await smtpReceiver({ mode: "starttls", ...certs, ...login });
  mailTls = await smtpReceiver({ mode: "tls", ...certs, ...login });
  // A mail server that never answers costs a test 3 s, not 10.
  server = await startServer({ alert_send_timeout_s: 3 });
  client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, { uid: UID, room: "Freezer", placedAt: BASE - 60_000, label: "Chest freezer" });
  const add = async (body: Record<string, unknown>) => {
    const res = await server.api("/api/v1/alerts/channels", { body });
    if (res.status !== 201) throw new Error(`channel ${JSON.stringify(body)}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  await add({ name: "phone", kind: "ntfy", url: ntfy.url, topic: "freezer-alerts", token: "tk_test", min_severity: "warning" });
  webhookSecret = (await add({ name: "node-red", kind: "webhook", url: `${hook.url}/hook` })).secret;
  const mail = {
    kind: "email",
    host: "127.0.0.1",
    from: "techtemp@home.test",
    to: "me@home.test, you@home.test",
    username: login.user,
    password: login.password,
    ca,
  };
  await add({ ...mail, name: "mail starttls", port: mailStarttls.port, security: "starttls" });
  await add({ ...mail, name: "mail tls", port: mailTls.port, security: "tls" });
  sub = mosquittoSub(server, "home/+/alerts/#");
});

afterAll(async () => {
  sub?.stop();
  if (client) await endMqtt(client);
  await server?.stop();
  for (const r of [ntfy, hook, mailStarttls, mailTls]) r?.stop();
  dir.cleanup();
});

describe("the scripted scenario: rises past 26 °C, hovers, stays, hovers, drops", () => {
  let ruleId: number;

  test("a rule from the API: above 26 °C for 10 minutes, hysteresis 0.5, critical", async () => {
    const res = await server.api("/api/v1/alerts/rules", {
      body: {
        name: "Freezer too warm",
        kind: "threshold",
        metric: "temperature",
        max: 26,
        hysteresis: 0.5,
        duration_s: 600,
        severity: "critical",
        room_uid: "freezer",
      },
    });
    expect(res.status).toBe(201);
    ruleId = res.body.data.id;
    expect(res.body.data).toMatchObject({
      room: { uid: "freezer", name: "Freezer" },
      description: "temperature above 26 °C for 10 min",
    });
  });

  test("exactly one incident opens (at minute 20, worst 27.4 °C) and resolves (at minute 25)", async () => {
    await feed(client, UID, BASE, SCENARIO.slice(0, 20));
    await server.alerts.idle();
    expect((await server.api("/api/v1/alerts/incidents")).body.data).toEqual([]);
    await feed(client, UID, BASE, SCENARIO.slice(20, 25));
    await server.alerts.idle();
    const open = (await server.api("/api/v1/alerts/incidents?state=active")).body.data;
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({
      state: "open",
      severity: "critical",
      rule_id: ruleId,
      device: UID,
      device_name: "Chest freezer",
      room: "freezer",
      value: 26.4,
      threshold: 26,
      since: new Date(BASE + 10 * 60_000).toISOString(),
    });
    await feed(client, UID, BASE, SCENARIO.slice(25));
    await server.alerts.idle();
    const all = (await server.api("/api/v1/alerts/incidents")).body.data;
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ state: "resolved", peak: 27.4, last_value: 25.4, end_reason: "cleared" });
  });

  test("ntfy got exactly the two messages, priority and tags by severity, with the access token", async () => {
    const got = await received(ntfy, 2);
    await server.alerts.idle();
    expect(got.map((r) => r.json.title)).toEqual([
      "Critical: Freezer too warm · Freezer",
      "Resolved: Freezer too warm · Freezer",
    ]);
    expect(got.map((r) => [r.path, r.json.topic, r.json.priority, r.json.tags])).toEqual([
      ["/", "freezer-alerts", 5, ["rotating_light"]],
      ["/", "freezer-alerts", 3, ["white_check_mark"]],
    ]);
    expect(got[0]!.headers.authorization).toBe("Bearer tk_test");
    expect(got[0]!.json.message).toContain("Freezer (Chest freezer): temperature 26.4 °C, above 26 °C since");
    expect(got[1]!.json.message).toContain("back to 25.4 °C");
    expect(got[1]!.json.message).toContain("worst 27.4 °C");
  });

  test("the webhook got the two events as JSON, each signed with HMAC-SHA256 of its body", async () => {
    const got = await received(hook, 2);
    expect(got.map((r) => r.json.event)).toEqual(["opened", "resolved"]);
    for (const r of got) {
      const want = `sha256=${createHmac("sha256", webhookSecret).update(r.body).digest("hex")}`;
      expect(r.headers["x-techtemp-signature-256"]).toBe(want);
      expect(r.headers["x-techtemp-delivery"]).toBe(r.json.id);
      expect(r.json.incident).toMatchObject({ rule: "Freezer too warm", room: "freezer", device: UID, severity: "critical" });
    }
    expect(got[0]!.json.incident.state).toBe("open");
    expect(got[1]!.json.incident).toMatchObject({ state: "resolved", peak: 27.4 });
    expect(webhookSecret).toMatch(/^whsec_/);
  });

  test("e-mail over STARTTLS and over TLS, logged in, to both recipients: the two messages each", async () => {
    for (const box of [mailStarttls, mailTls]) {
      await waitFor(() => box.mails.length >= 2, 15_000, "two mails");
      expect(box.mails.map((m) => m.subject)).toEqual([
        "Critical: Freezer too warm · Freezer",
        "Resolved: Freezer too warm · Freezer",
      ]);
      for (const m of box.mails) {
        expect(m).toMatchObject({
          secure: true,
          user: "alerts@home.test",
          from: "techtemp@home.test",
          to: ["me@home.test", "you@home.test"],
        });
        expect(m.data).toMatch(/^Message-ID: <i\d+-(opened|resolved)-c\d+@techtemp>$/m);
      }
      expect(box.mails[1]!.text).toContain("back to 25.4 °C");
    }
    // STARTTLS came before the login, and no password crossed in clear.
    const starttls = mailStarttls.commands.indexOf("STARTTLS");
    expect(starttls).toBeGreaterThan(0);
    expect(mailStarttls.commands.findIndex((c) => c.startsWith("AUTH"))).toBeGreaterThan(starttls);
  });

  test("mosquitto_sub saw the retained state go open, then resolved; a new subscriber gets resolved", async () => {
    const topic = `home/home-001/alerts/rule-${ruleId}-${UID}`;
    await waitFor(() => sub.states().filter(([t]) => t === topic).length >= 2, 10_000, "two alert states");
    const states = sub
      .states()
      .filter(([t]) => t === topic)
      .map(([, s]) => s);
    expect(states.map((s) => s.state)).toEqual(["open", "resolved"]);
    expect(states[0]).toMatchObject({
      severity: "critical",
      room: "freezer",
      device: UID,
      value: 26.4,
      since: new Date(BASE + 600_000).toISOString(),
    });
    expect(states[1]).toMatchObject({ state: "resolved", value: 25.4, peak: 27.4 });
    const late = mosquittoSub(server, topic);
    try {
      await waitFor(() => late.lines.length >= 1, 10_000, "the retained state");
      expect(late.states()[0]![1].state).toBe("resolved");
    } finally {
      late.stop();
    }
  });

  test("nothing more is queued or sent: every notification is marked sent once", async () => {
    await server.alerts.idle();
    const sent = (await server.api("/api/v1/alerts/notifications")).body.data;
    expect(sent.map((n: any) => `${n.channel.name} ${n.event} ${n.state} ${n.attempts}`).sort()).toEqual([
      "mail starttls opened sent 1",
      "mail starttls resolved sent 1",
      "mail tls opened sent 1",
      "mail tls resolved sent 1",
      "node-red opened sent 1",
      "node-red resolved sent 1",
      "phone opened sent 1",
      "phone resolved sent 1",
    ]);
    expect(ntfy.got).toHaveLength(2);
    expect(hook.got).toHaveLength(2);
  });
});

describe("channels", () => {
  test("'send test' reaches each channel now and says so; a certificate from an unknown CA is named", async () => {
    const channels = (await server.api("/api/v1/alerts/channels")).body.data;
    for (const c of channels) {
      const res = await server.api(`/api/v1/alerts/channels/${c.id}/test`, { method: "POST" });
      expect(`${c.name}: ${res.status}`).toBe(`${c.name}: 200`);
    }
    expect(ntfy.got.at(-1)!.json).toMatchObject({ title: "TechTemp test notification", tags: ["bell"] });
    expect(hook.got.at(-1)!.json.event).toBe("test");
    expect(mailTls.mails.at(-1)!.subject).toBe("TechTemp test notification");
    // Without the test CA the mail server's certificate is refused, and the answer says why.
    const bare = await server.api("/api/v1/alerts/channels", {
      body: {
        name: "no ca",
        kind: "email",
        host: "127.0.0.1",
        port: mailTls.port,
        security: "tls",
        from: "a@b.test",
        to: "c@d.test",
        username: "x",
        password: "y",
      },
    });
    const res = await server.api(`/api/v1/alerts/channels/${bare.body.data.id}/test`, { method: "POST" });
    expect(res.status).toBe(502);
    expect(res.body.error).toMatch(
      /test notification not delivered: 127\.0\.0\.1:\d+: .*(certificate|self.signed|verify|issuer)/i,
    );
    const listed = (await server.api(`/api/v1/alerts/channels/${bare.body.data.id}`)).body.data;
    expect(listed.last_error).toContain("127.0.0.1");
    expect(listed).not.toHaveProperty("password");
    expect(listed.password_set).toBe(true);
  });

  test("a wrong mail password is refused by the server and the test says so; STARTTLS is required when asked for", async () => {
    const wrong = await server.api("/api/v1/alerts/channels", {
      body: {
        name: "wrong pass",
        kind: "email",
        host: "127.0.0.1",
        port: mailStarttls.port,
        from: "a@b.test",
        to: "c@d.test",
        username: "alerts@home.test",
        password: "nope",
        ca,
      },
    });
    const res = await server.api(`/api/v1/alerts/channels/${wrong.body.data.id}/test`, { method: "POST" });
    expect(res.body.error).toContain("535");
    expect(res.body.error).toContain("check the user name and password");
    const plainOnly = await server.api("/api/v1/alerts/channels", {
      body: {
        name: "tls box as starttls",
        kind: "email",
        host: "127.0.0.1",
        port: mailTls.port,
        security: "starttls",
        from: "a@b.test",
        to: "c@d.test",
        ca,
      },
    });
    // The TLS server waits for a TLS hello, the client for a greeting: the send timeout ends it.
    const r2 = await server.api(`/api/v1/alerts/channels/${plainOnly.body.data.id}/test`, { method: "POST" });
    expect(r2.status).toBe(502);
    expect(r2.body.error).toContain("in time");
  });

  test("the API never sends a secret back", async () => {
    const text = JSON.stringify((await server.api("/api/v1/alerts/channels")).body);
    for (const secret of ["tk_test", webhookSecret, "mail password"]) expect(text).not.toContain(secret);
  });
});
