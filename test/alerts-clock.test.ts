// What alerts do as time passes, on an injected clock (the server's, in the
// home's time zone, Europe/Paris): staleness measured in each sensor's own
// interval, sensor failures from status messages, rules that follow
// placements, quiet hours (critical ones still go out), repeats until
// acknowledged (from the alerts page too; the dashboard's banner and the
// room's card), the daily digest, retries with backoff until a
// notification is marked failed and shown, and a receiver that hangs (no
// PUBACK, page or other channel waits for it).

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import { connectMqtt, endMqtt, publishAcked, startServer, waitFor, type TestServer } from "./helpers.ts";
import { getPage, placeDevice, postForm, statusTopic } from "./web-helpers.ts";
import { feed, httpReceiver, mosquittoSub, type HttpReceiver } from "./alerts-helpers.ts";

// 23:00 in Paris on a Friday in November (CET, UTC+1).
let clock = Date.parse("2026-11-27T22:00:00Z");
const MIN = 60_000;
let server: TestServer;
let client: MqttClient;
let ntfy: HttpReceiver;
let hook: HttpReceiver;

/** Moves the clock and runs the alerts' clock work, then waits for what it queued to be sent. */
async function advance(ms: number): Promise<void> {
  clock += ms;
  server.alerts.tick();
  await server.alerts.idle();
}

const titles = () => ntfy.got.map((r) => r.json.title);
const incidents = async (q = "") => (await server.api(`/api/v1/alerts/incidents${q}`)).body.data as any[];
const rule = async (body: Record<string, unknown>) => {
  const res = await server.api("/api/v1/alerts/rules", { body });
  if (res.status !== 201) throw new Error(`rule: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data.id as number;
};

/** The nursery's two rules: above 24 °C a warning, above 28 °C critical. */
async function nurseryRules(): Promise<void> {
  await rule({ name: "Nursery warm", kind: "threshold", metric: "temperature", max: 24, duration_s: 0, room_uid: "nursery" });
  await rule({
    name: "Nursery hot",
    kind: "threshold",
    metric: "temperature",
    max: 28,
    duration_s: 0,
    room_uid: "nursery",
    severity: "critical",
  });
}

beforeAll(async () => {
  ntfy = httpReceiver();
  hook = httpReceiver();
  server = await startServer(
    { alert_retry_base_s: 1, alert_retry_attempts: 3, alert_send_timeout_s: 30, home_timezone: "Europe/Paris" },
    { now: () => clock },
  );
  client = await connectMqtt(server.mqttPort);
  await server.api("/api/v1/alerts/channels", { body: { name: "phone", kind: "ntfy", url: ntfy.url, topic: "home" } });
});
// Each test starts with no rule and nothing received: deleting a rule resolves its incidents, sent before the next test.
beforeEach(() => {
  ntfy.got.length = 0;
});
afterEach(async () => {
  for (const r of (await server.api("/api/v1/alerts/rules")).body.data)
    await server.api(`/api/v1/alerts/rules/${r.id}`, { method: "DELETE" });
  await server.alerts.idle();
});
afterAll(async () => {
  if (client) await endMqtt(client);
  await server?.stop();
  ntfy?.stop();
  hook?.stop();
});

describe("on the clock", () => {
  test("a sensor that stops reporting is late after 5 of its own intervals (60 s), and resolves with its next reading", async () => {
    await placeDevice(server, client, { uid: "aht20-5a1e00", room: "Hall", placedAt: clock - 10 * MIN, intervalS: 60 });
    await rule({ kind: "stale", intervals: 5, device_uid: "aht20-5a1e00" });
    await feed(client, "aht20-5a1e00", clock, [[0, 20]]);
    await server.alerts.idle();
    await advance(299_000);
    expect(await incidents()).toEqual([]);
    await advance(2000);
    const [open] = await incidents("?state=open");
    expect(open).toMatchObject({ kind: "stale", device: "aht20-5a1e00", room: "hall", value: 301, threshold: 300 });
    expect(open.message).toContain("no reading since");
    expect(open.message).toBe("Hall (aht20-5a1e00): no reading since 27 Nov, 23:00 (5 min); it reports every 1 min");
    await feed(client, "aht20-5a1e00", clock, [[0, 20]]);
    await server.alerts.idle();
    expect((await incidents())[0]).toMatchObject({ state: "resolved", end_reason: "cleared" });
    expect(titles()).toEqual([
      "Warning: No reading for 5 of the sensor's intervals · Hall",
      "Resolved: No reading for 5 of the sensor's intervals · Hall",
    ]);
  });

  test("read failures reported in the status message open an incident; 0 resolves it", async () => {
    await placeDevice(server, client, { uid: "aht20-fa1100", room: "Attic", placedAt: clock - MIN, intervalS: 60 });
    await rule({ kind: "failures", failures: 3, room_uid: "attic", severity: "critical" });
    const status = (n: number) =>
      JSON.stringify({
        state: "online",
        interval_s: 60,
        version: "t",
        sensor_failures: n,
        ...(n ? { last_error: "the sensor did not answer within 10 s" } : {}),
      });
    await publishAcked(client, statusTopic("aht20-fa1100"), status(2), 5000, true);
    await publishAcked(client, statusTopic("aht20-fa1100"), status(3), 5000, true);
    await server.alerts.idle();
    const [open] = await incidents("?state=open");
    expect(open.message).toBe("Attic (aht20-fa1100): the sensor failed 3 reads in a row (the sensor did not answer within 10 s)");
    await publishAcked(client, statusTopic("aht20-fa1100"), status(0), 5000, true);
    await server.alerts.idle();
    expect(await incidents("?state=active")).toEqual([]);
  });

  test("a room's rule follows placements: a device moved out resolves, the device moved in is watched", async () => {
    await placeDevice(server, client, { uid: "aht20-c00c01", room: "Kitchen", placedAt: clock - MIN });
    await placeDevice(server, client, { uid: "aht20-c00c02", room: "Garage", placedAt: clock - MIN });
    await rule({ name: "Kitchen hot", kind: "threshold", metric: "temperature", max: 30, duration_s: 0, room_uid: "kitchen" });
    await feed(client, "aht20-c00c01", clock, [[0, 31]]);
    await server.alerts.idle();
    expect((await incidents("?state=open")).map((i) => i.device)).toEqual(["aht20-c00c01"]);
    await server.api("/api/v1/devices/aht20-c00c01", { method: "PUT", body: { room_uid: "garage", moved_at: clock } });
    await server.api("/api/v1/devices/aht20-c00c02", { method: "PUT", body: { room_uid: "kitchen", moved_at: clock } });
    clock += MIN;
    await feed(client, "aht20-c00c01", clock, [[0, 35]]);
    await feed(client, "aht20-c00c02", clock, [[0, 32]]);
    await server.alerts.idle();
    const all = (await incidents()).filter((i) => i.rule === "Kitchen hot");
    expect(all.map((i) => [i.device, i.room, i.state, i.end_reason])).toEqual([
      ["aht20-c00c02", "kitchen", "open", null],
      ["aht20-c00c01", "kitchen", "resolved", "device_moved"],
    ]);
    expect(titles()).toEqual([
      "Warning: Kitchen hot · Kitchen",
      "Resolved: Kitchen hot · Kitchen",
      "Warning: Kitchen hot · Kitchen",
    ]);
  });

  test("quiet hours (22:00-07:00 in Paris) hold a warning until 07:00; a critical one goes out at once", async () => {
    const set = await server.api("/api/v1/alerts/settings", {
      method: "PUT",
      body: { quiet_start: "22:00", quiet_end: "07:00", repeat_minutes: 0 },
    });
    expect(set.body.data).toMatchObject({
      quiet_start: "22:00",
      quiet_end: "07:00",
      quiet_allows_critical: true,
      time_zone: "Europe/Paris",
    });
    await placeDevice(server, client, { uid: "aht20-0a1e70", room: "Nursery", placedAt: clock - MIN });
    await nurseryRules();
    await feed(client, "aht20-0a1e70", clock, [[0, 29]]);
    await server.alerts.idle();
    expect(titles()).toEqual(["Critical: Nursery hot · Nursery"]);
    const held = (await server.api("/api/v1/alerts/notifications?state=pending")).body.data;
    expect(held.map((n: any) => [n.notification.title, n.next_attempt_at])).toEqual([
      ["Warning: Nursery warm · Nursery", "2026-11-28T06:00:00.000Z"],
    ]);
    await advance(Date.parse("2026-11-28T06:00:30Z") - clock);
    expect(titles()).toEqual(["Critical: Nursery hot · Nursery", "Warning: Nursery warm · Nursery"]);
    await server.api("/api/v1/alerts/settings", { method: "PUT", body: { quiet_start: null, quiet_end: null } });
  });

  test("an incident nobody acknowledges is repeated every 30 minutes; acknowledged, it stops, and MQTT says acknowledged", async () => {
    await server.api("/api/v1/alerts/settings", { method: "PUT", body: { repeat_minutes: 30 } });
    await nurseryRules();
    await feed(client, "aht20-0a1e70", clock, [
      [0, 20],
      [1, 29],
    ]);
    await server.alerts.idle();
    ntfy.got.length = 0;
    const sub = mosquittoSub(server, "home/+/alerts/#");
    try {
      await advance(29 * MIN);
      expect(titles()).toEqual([]);
      await advance(2 * MIN);
      expect(titles().sort()).toEqual(["Still: Nursery hot · Nursery", "Still: Nursery warm · Nursery"]);
      const hot = (await incidents("?state=open")).find((i) => i.rule === "Nursery hot");
      const ack = await server.api(`/api/v1/alerts/incidents/${hot.id}/ack`, { method: "POST" });
      expect(ack.body.data).toMatchObject({ state: "acknowledged", acknowledged_by: "test" });
      await advance(31 * MIN);
      expect(titles().filter((t) => t.includes("hot"))).toHaveLength(1);
      expect(titles().filter((t) => t.includes("warm"))).toHaveLength(2);
      await waitFor(
        () => sub.states().some(([, s]) => s?.state === "acknowledged" && s.rule === "Nursery hot"),
        5000,
        "the acknowledged state",
      );
      const again = await server.api(`/api/v1/alerts/incidents/${hot.id}/ack`, { method: "POST" });
      expect(again.status).toBe(200);
    } finally {
      sub.stop();
    }
    await feed(client, "aht20-0a1e70", clock, [[2, 20]]);
    await server.alerts.idle();
    const resolved = (await incidents()).find((i) => i.rule === "Nursery hot");
    expect((await server.api(`/api/v1/alerts/incidents/${resolved.id}/ack`, { method: "POST" })).status).toBe(409);
    await server.api("/api/v1/alerts/settings", { method: "PUT", body: { repeat_minutes: 0 } });
  });

  test("the daily digest at 08:00 in Paris: once a day, with what happened", async () => {
    await server.api("/api/v1/alerts/settings", { method: "PUT", body: { digest_time: "08:00" } });
    await advance(Date.parse("2026-11-28T06:59:00Z") - clock);
    expect(titles()).toEqual([]);
    await advance(MIN);
    await advance(MIN);
    expect(titles()).toEqual(["TechTemp daily digest"]);
    const message: string = ntfy.got[0]!.json.message;
    expect(message).toStartWith("Last 24 hours: 8 incidents began, 8 resolved; 0 still open.\n\nResolved:\n");
    expect(message).toContain("\n- Nursery hot · Nursery: 28 Nov, 07:01 to 28 Nov, 08:02 (1 h 1 min, worst 29 °C)");
    expect(ntfy.got[0]!.json.priority).toBe(2);
    await server.api("/api/v1/alerts/settings", { method: "PUT", body: { digest_time: null } });
  });

  test("the dashboard's banner and the room's card show an incident; the alerts page acknowledges it; names are escaped", async () => {
    const room = "<b>Wine</b> cellar";
    await placeDevice(server, client, { uid: "aht20-b0b0b0", room, placedAt: clock - MIN });
    const roomUid = (await server.api("/api/v1/rooms")).body.data.find((r: any) => r.name === room).uid;
    await rule({
      name: "Wine <i>warm</i>",
      kind: "threshold",
      metric: "temperature",
      max: 14,
      duration_s: 0,
      room_uid: roomUid,
    });
    const before = await getPage(server, "/");
    expect(before.html).toContain('<div id="alerts" sse-swap="alerts">');
    expect(before.html).not.toContain('id="alert-banner"');
    await feed(client, "aht20-b0b0b0", clock, [[0, 15]]);
    await server.alerts.idle();
    const [open] = await incidents("?state=open");
    const dash = await getPage(server, "/");
    const banner = /<div class="banner alert-banner alert-warning" role="alert" id="alert-banner">([\s\S]*?)<\/div>/.exec(
      dash.html,
    )?.[1];
    expect(banner).toContain("1 alert");
    expect(banner).toContain("Wine &lt;i&gt;warm&lt;/i&gt; · &lt;b&gt;Wine&lt;/b&gt; cellar");
    expect(dash.html).toContain('class="alert-mark sev-warning"');
    expect(dash.html).not.toContain("<i>warm</i>");
    const page = await getPage(server, "/alerts");
    expect(page.html).toContain(`id="incident-${open.id}"`);
    expect(page.html).toContain(`action="/alerts/incidents/${open.id}/ack"`);
    const ack = await postForm(server, `/alerts/incidents/${open.id}/ack`, {});
    expect(ack.status).toBe(303);
    expect((await incidents("?state=acknowledged")).map((i) => i.id)).toEqual([open.id]);
    const after = await getPage(server, "/alerts");
    expect(after.html).not.toContain(`action="/alerts/incidents/${open.id}/ack"`);
    expect(after.html).toContain("no more repeats");
    expect((await getPage(server, "/")).html).toContain("(1 acknowledged)");
    await feed(client, "aht20-b0b0b0", clock, [[1, 12]]);
    await server.alerts.idle();
    const cleared = await getPage(server, "/");
    expect(cleared.html).not.toContain('id="alert-banner"');
    expect(cleared.html).not.toContain("alert-mark");
  });

  test("a webhook answering 500 is tried 3 times with growing waits (1 s, 3 s), then marked failed and shown", async () => {
    hook.failNext(1000, 500);
    const made = await server.api("/api/v1/alerts/channels", {
      body: { name: "flaky hook", kind: "webhook", url: hook.url, secret: "0123456789abcdef0123", min_severity: "critical" },
    });
    await rule({
      name: "Hall freezing",
      kind: "threshold",
      metric: "temperature",
      min: 5,
      duration_s: 0,
      room_uid: "hall",
      severity: "critical",
    });
    await feed(client, "aht20-5a1e00", clock, [[0, 4]]);
    await server.alerts.idle();
    const mine = async () =>
      (await server.api("/api/v1/alerts/notifications")).body.data.find((n: any) => n.channel.name === "flaky hook");
    expect(await mine()).toMatchObject({ state: "pending", attempts: 1, next_attempt_at: new Date(clock + 1000).toISOString() });
    await advance(999);
    expect((await mine()).attempts).toBe(1);
    await advance(1);
    expect(await mine()).toMatchObject({ state: "pending", attempts: 2, next_attempt_at: new Date(clock + 3000).toISOString() });
    await advance(3000);
    const failed = await mine();
    expect(failed).toMatchObject({ state: "failed", attempts: 3 });
    expect(failed.last_error).toBe(`${hook.url} answered 500: try later`);
    expect((await server.api(`/api/v1/alerts/channels/${made.body.data.id}`)).body.data.last_error).toBe(failed.last_error);
    expect(server.logs.filter((l) => l.includes("notification failed; giving up"))).toHaveLength(1);
    const page = await getPage(server, "/alerts");
    expect(page.html).toContain('id="failed-notifications"');
    const channels = await getPage(server, "/alerts/channels");
    expect(channels.html).toContain("answered 500: try later");
    // A 404 will not get better: failed at once.
    hook.failNext(1000, 404);
    await feed(client, "aht20-5a1e00", clock, [
      [1, 20],
      [2, 3],
    ]);
    await server.alerts.idle();
    const list = (await server.api("/api/v1/alerts/notifications?state=failed")).body.data;
    expect(list[0]).toMatchObject({ attempts: 1, event: "opened" });
    expect(list[0].last_error).toContain("answered 404");
    hook.failNext(0);
  });

  test("a receiver that hangs delays no PUBACK, no page and no other channel; once it answers, what still matters goes out, once", async () => {
    const hung = httpReceiver();
    const made = await server.api("/api/v1/alerts/channels", {
      body: { name: "hung", kind: "ntfy", url: hung.url, topic: "home" },
    });
    expect(made.status).toBe(201);
    hung.hang();
    try {
      await placeDevice(server, client, { uid: "aht20-4a4600", room: "Cellar", placedAt: clock - 60 * MIN });
      await rule({ name: "Cellar warm", kind: "threshold", metric: "temperature", max: 15, duration_s: 0, room_uid: "cellar" });
      const base = clock - 30 * MIN;
      await feed(client, "aht20-4a4600", base, [[0, 16]]);
      await waitFor(() => hung.held === 1, 5000, "the receiver to hold the first notification");
      // 20 readings, each acknowledged before the next, while that send hangs: an incident resolves and opens again with each.
      let slowest = 0;
      for (let i = 1; i <= 20; i++) {
        const started = performance.now();
        await feed(client, "aht20-4a4600", base, [[i, i % 2 ? 14 : 16]]);
        slowest = Math.max(slowest, performance.now() - started);
      }
      // Ingestion waiting on the receiver would take the send timeout (30 s here) for a PUBACK.
      expect(slowest).toBeLessThan(5000);
      expect((await getPage(server, "/")).status).toBe(200);
      // The other channel is not held up: it hears of the last incident.
      await waitFor(() => titles().includes("Warning: Cellar warm · Cellar"), 5000, "the phone's notification");
      expect(hung.held).toBe(1);
      expect(hung.got).toEqual([]);

      // Let go (answered 503): the held "opened" waits for its retry in 1 s; the "opened" of incidents already
      // resolved are dropped, their "resolved" sent, and the open incident's "opened".
      hung.release();
      await server.alerts.idle();
      await advance(1000);
      const got = hung.got.map((r) => r.json.title);
      expect(got.filter((t) => t === "Resolved: Cellar warm · Cellar")).toHaveLength(10);
      expect(got.filter((t) => t === "Warning: Cellar warm · Cellar")).toHaveLength(1);
      expect(got).toHaveLength(11);
      const mine = (await server.api("/api/v1/alerts/notifications?limit=1000")).body.data.filter(
        (n: any) => n.channel.name === "hung",
      );
      expect(mine.filter((n: any) => n.state === "pending")).toEqual([]);
      expect(mine.filter((n: any) => n.state === "sent")).toHaveLength(11);
      expect(mine.filter((n: any) => n.state === "skipped")).toHaveLength(10);
    } finally {
      hung.release();
      // Its queued notifications go with it: the next tests hear nothing from this channel.
      await server.api(`/api/v1/alerts/channels/${made.body.data.id}`, { method: "DELETE" });
      hung.stop();
    }
  });
});
