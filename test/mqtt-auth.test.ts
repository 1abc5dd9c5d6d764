// MQTT access control with real clients (MQTT.js, mosquitto_pub and
// mosquitto_sub) against the real server: anonymous clients refused on a new
// install, each sensor publishing only as itself, nobody but the server
// publishing a config, read-only tokens for tools, $SYS for write tokens only,
// client ids not stolen, credentials withdrawn ending their connections, and
// every refusal logged once per cause with the client id and address.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import {
  connectMqtt,
  createToken,
  legacyPayload,
  mqttLoginArgs,
  publishAcked,
  readingTopic,
  run,
  startServer,
  waitFor,
  withTimeout,
  type MqttLogin,
  type TestServer,
} from "./helpers.ts";
import { sensorLogin } from "./sensor-helpers.ts";

const TS = 1_725_427_200_000;
let server: TestServer;
const clients: MqttClient[] = [];

beforeEach(async () => {
  server = await startServer();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  // Nothing a test did may leave the broker unhealthy.
  expect((await server.api("/health")).status).toBe(200);
  await server.stop();
});

const readings = async (uid: string) => (await server.api(`/api/v1/devices/${uid}/readings?limit=10000`)).body.data ?? [];

/** A sensor's login: its uid and the secret it was given. */
function device(uid: string): MqttLogin {
  const env = sensorLogin(server, uid);
  return { username: env.TECHTEMP_MQTT_USERNAME!, password: env.TECHTEMP_MQTT_PASSWORD! };
}

async function connectAs(login: MqttLogin | null, options: Record<string, unknown> = {}): Promise<MqttClient> {
  const c = await connectMqtt(server.mqttPort, { username: login?.username, password: login?.password, ...options });
  clients.push(c);
  return c;
}

/** The CONNACK refusal a connection gets (MQTT.js puts the return code on the error). */
async function refusedWith(login: MqttLogin | null, options: Record<string, unknown> = {}): Promise<number | undefined> {
  const err = (await connectAs(login, options).then(
    () => null,
    (e) => e,
  )) as (Error & { code?: number }) | null;
  expect(err).not.toBeNull();
  return err!.code;
}

/** Publishes at QoS 1 and resolves with "acked", or "closed" when the broker ends the connection instead. */
function publishOutcome(client: MqttClient, topic: string, payload: string, retain = false): Promise<"acked" | "closed"> {
  return withTimeout(
    new Promise((resolve) => {
      client.once("close", () => resolve("closed"));
      client.publish(topic, payload, { qos: 1, retain }, (err) => {
        if (!err) resolve("acked");
      });
    }),
    5000,
    `the outcome of a publish to ${topic}`,
  );
}

/** Subscribes and resolves with the granted QoS (128 = refused: MQTT.js makes that an error carrying the SUBACK). */
function granted(client: MqttClient, filter: string): Promise<number> {
  return withTimeout(
    new Promise((resolve, reject) =>
      client.subscribe(filter, { qos: 1 }, (err, grants) => {
        const refused = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted?.[0];
        if (err) return refused === undefined ? reject(err) : resolve(refused);
        resolve(grants![0]!.qos);
      }),
    ),
    5000,
    `SUBACK for ${filter}`,
  );
}

const logged = (pattern: RegExp) => server.logs.filter((l) => pattern.test(l));

describe("who may connect", () => {
  test("an anonymous client is refused on a new install with CONNACK 'not authorized' (MQTT.js and mosquitto_pub)", async () => {
    expect(server.store.auth.settings.get("accept_anonymous_sensors")).toBe("0");
    expect(await refusedWith(null, { clientId: "anon-1" })).toBe(5);
    const pub = await run([
      "mosquitto_pub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.mqttPort),
      "-i",
      "anon-2",
      "-q",
      "1",
      "-t",
      readingTopic("aht20-anon01"),
      "-m",
      legacyPayload(21, 40, TS),
    ]);
    expect(pub.code).not.toBe(0);
    expect(pub.stderr.toLowerCase()).toContain("not authori");
    expect((await server.api("/api/v1/devices")).body.data).toEqual([]);
  });

  test("wrong secrets, unknown names and revoked tokens are refused; a refusal is logged once per cause and minute with client id and address, and counted", async () => {
    const a = device("aht20-aaaaaa");
    for (let i = 0; i < 5; i++)
      expect(await refusedWith({ username: a.username, password: "guess" }, { clientId: `guesser-${i}` })).toBe(5);
    expect(await refusedWith({ username: "nobody", password: "x" })).toBe(5);
    const revoked = createToken(server.store, "read", "revoked-tool");
    server.store.auth.tokens.revoke(server.store.auth.tokens.byName("revoked-tool")!.id);
    expect(await refusedWith(revoked)).toBe(5);

    const lines = logged(/refused connection/);
    // Five wrong passwords from one address: one line, which names the first client and where it came from.
    expect(lines.filter((l) => l.includes("or wrong password"))).toHaveLength(1);
    expect(lines[0]).toMatch(
      /client=guesser-0 .*address=127\.0\.0\.1:\d+ .*user=aht20-aaaaaa reason="unknown username \\"aht20-aaaaaa\\" or wrong password"/,
    );
    expect(lines.some((l) => l.includes('API token \\"revoked-tool\\" is revoked'))).toBe(true);
    expect((await server.api("/api/v1/stats")).body.data.broker.connectionsRefused).toBe(7);
  });

  test("a client cannot take over a sensor's client id; the sensor itself can", async () => {
    const a = device("aht20-aaaaaa");
    const sensor = await connectAs(a, { clientId: "techtemp-aht20-aaaaaa" });
    const tool = createToken(server.store, "read", "tool");
    expect(await refusedWith(tool, { clientId: "techtemp-aht20-aaaaaa" })).toBe(5);
    expect(await refusedWith(device("aht20-bbbbbb"), { clientId: "techtemp-aht20-aaaaaa" })).toBe(5);
    expect(sensor.connected).toBe(true);
    await publishAcked(sensor, readingTopic("aht20-aaaaaa"), legacyPayload(21, 40, TS));
    expect(logged(/refused connection .*in use by device aht20-aaaaaa/).length).toBeGreaterThanOrEqual(1);
    // The sensor reconnecting (its old connection half-open) takes its own id over.
    const again = await connectAs(a, { clientId: "techtemp-aht20-aaaaaa" });
    await publishAcked(again, readingTopic("aht20-aaaaaa"), legacyPayload(22, 40, TS + 1));
    await waitFor(() => !sensor.connected, 5000, "the older connection to be closed");
  });
});

describe("what a sensor may do", () => {
  test("it publishes its own readings and status; a reading as another device is not stored, not passed on, and ends its connection", async () => {
    const a = await connectAs(device("aht20-aaaaaa"));
    device("aht20-bbbbbb");
    const watcher = await connectMqtt(server.mqttPort); // the test's write token
    clients.push(watcher);
    const seen: string[] = [];
    watcher.on("message", (topic) => seen.push(topic));
    expect(await granted(watcher, "home/#")).toBe(1);

    await publishAcked(a, readingTopic("aht20-aaaaaa"), legacyPayload(21, 40, TS));
    await publishAcked(a, "home/home-001/sensors/aht20-aaaaaa/status", '{"state":"online","interval_s":60}', 5000, true);
    expect(await publishOutcome(a, readingTopic("aht20-bbbbbb"), legacyPayload(30, 30, TS))).toBe("closed");

    expect(await readings("aht20-aaaaaa")).toHaveLength(1);
    expect(await readings("aht20-bbbbbb")).toEqual([]);
    await waitFor(() => seen.includes(readingTopic("aht20-aaaaaa")), 5000, "the watcher to get A's reading");
    expect(seen).not.toContain(readingTopic("aht20-bbbbbb"));
    expect(
      logged(/refused publish .*as="device aht20-aaaaaa" .*topic=home\/home-001\/sensors\/aht20-bbbbbb\/reading/),
    ).toHaveLength(1);
    expect((await server.api("/api/v1/stats")).body.data.broker.publishRefused).toBe(1);
  });

  test("its malformed reading is acknowledged and discarded, and counted on it", async () => {
    const a = await connectAs(device("aht20-aaaaaa"));
    await publishAcked(a, readingTopic("aht20-aaaaaa"), '{"temperature_c":"hot"}');
    const d = (await server.api("/api/v1/devices/aht20-aaaaaa")).body.data;
    expect(d.refused_count).toBe(1);
    expect(await readings("aht20-aaaaaa")).toEqual([]);
  });

  test("it subscribes only to its own config, and receives what the server publishes there", async () => {
    const a = await connectAs(device("aht20-aaaaaa"));
    device("aht20-bbbbbb");
    for (const filter of [
      "home/+/sensors/aht20-bbbbbb/config",
      "home/+/sensors/+/config",
      "#",
      "home/+/sensors/aht20-aaaaaa/reading",
      "$SYS/#",
    ]) {
      expect(`${filter}: ${await granted(a, filter)}`).toBe(`${filter}: 128`);
    }
    expect(a.connected).toBe(true);
    expect(await granted(a, "home/+/sensors/aht20-aaaaaa/config")).toBe(1);
    const config = new Promise<string>((resolve) => a.on("message", (_t, p) => resolve(p.toString())));
    const put = await server.api("/api/v1/devices/aht20-aaaaaa", { method: "PUT", body: { interval_s: 60 } });
    expect(put.status).toBe(200);
    expect(JSON.parse(await withTimeout(config, 5000, "the config message"))).toMatchObject({ interval_s: 60 });
    expect(logged(/refused subscription .*as="device aht20-aaaaaa"/).length).toBeGreaterThanOrEqual(1);
  });

  test("nobody publishes a config, not even a write token: the sensor keeps the server's settings", async () => {
    const a = await connectAs(device("aht20-aaaaaa"));
    const put = await server.api("/api/v1/devices/aht20-aaaaaa", { method: "PUT", body: { temperature_offset: 0.5 } });
    expect(put.status).toBe(200);
    const topic = "home/home-001/sensors/aht20-aaaaaa/config";
    const attack = '{"interval_s":2,"temperature_offset":20}';
    expect(await publishOutcome(a, topic, attack, true)).toBe("closed");
    const owner = await connectMqtt(server.mqttPort);
    clients.push(owner);
    expect(await publishOutcome(owner, topic, attack, true)).toBe("closed");
    // The retained config is still the server's.
    const sub = await run([
      "mosquitto_sub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.mqttPort),
      ...mqttLoginArgs(server.mqttPort),
      "-t",
      topic,
      "-C",
      "1",
      "-W",
      "5",
    ]);
    expect(JSON.parse(sub.stdout)).toEqual({ temperature_offset: 0.5, humidity_offset: 0 });
    // Two refusals of one cause from one address in a minute: one line, both counted.
    expect(logged(/refused publish .*reason="config topics are published by the server only"/)).toHaveLength(1);
    expect((await server.api("/api/v1/stats")).body.data.broker.publishRefused).toBe(2);
  });

  test("mosquitto_pub with the owner's write token cannot forge an alert state: refused and logged", async () => {
    const topic = "home/home-001/alerts/rule-1-aht20-aaaaaa";
    const pub = await run([
      "mosquitto_pub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.mqttPort),
      ...mqttLoginArgs(server.mqttPort),
      "-q",
      "1",
      "-r",
      "-t",
      topic,
      "-m",
      '{"state":"ok"}',
    ]);
    expect(pub.code).not.toBe(0);
    await waitFor(() => logged(/refused publish .*reason="alert topics are published by the server only"/).length === 1, 5000);
  });
});

describe("tools with API tokens", () => {
  test("mosquitto_sub -u NAME -P TOKEN -t 'home/#' with a read token sees readings; the token cannot publish", async () => {
    const reader = createToken(server.store, "read", "grafana");
    const sub = Bun.spawn(
      [
        "mosquitto_sub",
        "-h",
        "127.0.0.1",
        "-p",
        String(server.mqttPort),
        "-u",
        "grafana",
        "-P",
        reader.password,
        "-t",
        "home/#",
        "-v",
        "-C",
        "1",
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    // Subscribed once the broker counts its subscription.
    await waitFor(
      () => server.logs.some((l) => l.includes("client authenticated") && l.includes("token grafana (read)")),
      5000,
      "mosquitto_sub in",
    );
    const a = await connectAs(device("aht20-aaaaaa"));
    const out = new Response(sub.stdout).text();
    // Retry the publish until the subscription is in place (SUBACK is not visible from here).
    await waitFor(
      async () => {
        await publishAcked(a, readingTopic("aht20-aaaaaa"), legacyPayload(21, 40, Date.now()));
        return sub.exitCode !== null;
      },
      10_000,
      "mosquitto_sub to receive a reading",
    );
    expect(await out).toStartWith(`${readingTopic("aht20-aaaaaa")} {"temperature_c":21.00`);

    const pub = await run([
      "mosquitto_pub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.mqttPort),
      "-u",
      "grafana",
      "-P",
      reader.password,
      "-q",
      "1",
      "-t",
      readingTopic("aht20-forged"),
      "-m",
      legacyPayload(99, 99, TS),
    ]);
    expect(pub.code).not.toBe(0);
    expect(await readings("aht20-forged")).toEqual([]);
    expect(logged(/refused publish .*as="token grafana \(read\)" .*reason="API token \\"grafana\\" is read-only"/)).toHaveLength(
      1,
    );
  });

  test("$SYS is readable with a write token only; '#' never delivers it", async () => {
    const reader = await connectAs(createToken(server.store, "read", "reader"));
    const writer = await connectMqtt(server.mqttPort);
    clients.push(writer);
    expect(await granted(reader, "$SYS/#")).toBe(128);
    expect(await granted(writer, "$SYS/#")).toBe(1);
    expect(await granted(reader, "#")).toBe(1);
    const sys: string[] = [];
    const readerTopics: string[] = [];
    writer.on("message", (topic) => topic.startsWith("$SYS/") && sys.push(topic));
    reader.on("message", (topic) => readerTopics.push(topic));
    // A new client makes the broker announce it under $SYS/<id>/new/clients.
    await connectAs(device("aht20-cccccc"), { clientId: "techtemp-aht20-cccccc" });
    await waitFor(() => sys.some((t) => t.endsWith("/new/clients")), 5000, "the write token to see $SYS");
    expect(readerTopics.filter((t) => t.startsWith("$SYS/"))).toEqual([]);
  });
});

describe("credentials withdrawn while connected", () => {
  test("a revoked token, a device's new secret and a deleted device end their connections", async () => {
    const tool = await connectAs(createToken(server.store, "read", "tool"));
    const a = await connectAs(device("aht20-aaaaaa"));
    // With a last will, as the agent connects.
    const will = {
      topic: "home/home-001/sensors/aht20-bbbbbb/status",
      payload: Buffer.from('{"state":"offline"}'),
      qos: 1 as const,
      retain: true,
    };
    const b = await connectAs(device("aht20-bbbbbb"), { will });
    await publishAcked(b, readingTopic("aht20-bbbbbb"), legacyPayload(20, 40, TS));

    server.store.auth.tokens.revoke(server.store.auth.tokens.byName("tool")!.id);
    device("aht20-aaaaaa"); // a new secret: the old one no longer works
    // The broker looks again every 10 s; a test need not wait for it.
    expect(server.broker.recheck()).toBe(2);
    await waitFor(() => !tool.connected && !a.connected, 5000, "both connections closed");
    expect(b.connected).toBe(true);
    expect(logged(/closing connection: its credentials no longer hold .*reason="the API token was revoked"/)).toHaveLength(1);
    expect(
      logged(/closing connection: .*as="device aht20-aaaaaa" .*reason="the device was given a new MQTT secret"/),
    ).toHaveLength(1);

    // Deleting a device ends its connection at once (the store's device event).
    expect((await server.api("/api/v1/devices/aht20-bbbbbb", { method: "DELETE" })).status).toBe(200);
    await waitFor(() => !b.connected, 5000, "the deleted device's connection closed");
    // Its last will is not published: it would register the deleted device again.
    expect((await server.api("/api/v1/devices/aht20-bbbbbb")).status).toBe(404);
  });

  test("a device's MQTT secret withdrawn (DELETE .../mqtt-password) ends its connection and refuses it after; the device and its readings stay", async () => {
    const login = device("aht20-cccccc");
    const c = await connectAs(login);
    await publishAcked(c, readingTopic("aht20-cccccc"), legacyPayload(21, 45, TS));
    await waitFor(async () => (await readings("aht20-cccccc")).length === 1, 5000, "the reading stored");

    const withdrawn = await server.api("/api/v1/devices/aht20-cccccc/mqtt-password", { method: "DELETE" });
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body.data).toEqual({ device_uid: "aht20-cccccc", mqtt_credentials: "withdrawn" });
    expect(withdrawn.body.message).toStartWith("MQTT credentials withdrawn: nothing can publish as aht20-cccccc");
    expect(server.broker.recheck()).toBe(1);
    await waitFor(() => !c.connected, 5000, "the withdrawn device's connection closed");
    expect(
      logged(/closing connection: .*as="device aht20-cccccc" .*reason="the device's MQTT secret was withdrawn"/),
    ).toHaveLength(1);
    expect(await refusedWith(login)).toBe(5);

    expect((await server.api("/api/v1/devices/aht20-cccccc")).status).toBe(200);
    expect(await readings("aht20-cccccc")).toHaveLength(1);
    // Again: nothing left to withdraw, said so; an unknown device is a 404.
    const again = await server.api("/api/v1/devices/aht20-cccccc/mqtt-password", { method: "DELETE" });
    expect(again.status).toBe(200);
    expect(again.body.message).toStartWith("No working MQTT credentials to withdraw");
    const unknown = await server.api("/api/v1/devices/aht20-000000/mqtt-password", { method: "DELETE" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toContain("aht20-000000");

    // A new password lets it in again.
    const fresh = await server.api("/api/v1/devices/aht20-cccccc/mqtt-password", { body: {} });
    const back = await connectAs({ username: "aht20-cccccc", password: fresh.body.data.mqtt_password });
    await publishAcked(back, readingTopic("aht20-cccccc"), legacyPayload(22, 46, TS + 60_000));
    await waitFor(async () => (await readings("aht20-cccccc")).length === 2, 5000, "the new reading stored");
  });
});
