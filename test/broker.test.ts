// The embedded broker with real clients over TCP: the earlier sensors'
// payload through mosquitto_pub, ack-after-commit, duplicates, refusals,
// limits, hostile byte streams, and the Aedes stack-overflow scenario.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import mqttPacket from "mqtt-packet";
import type { Socket } from "node:net";
import { sensorLogin } from "./sensor-helpers.ts";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  mqttLogin,
  mqttLoginArgs,
  publishAcked,
  rawConnection,
  readingTopic,
  run,
  spawnServer,
  startServer,
  tempDir,
  waitFor,
  withTimeout,
  type TestServer,
} from "./helpers.ts";

const TS = 1_725_427_200_000; // 2024-09-04T05:20:00Z
let server: TestServer;

beforeEach(async () => {
  server = await startServer();
});
afterEach(async () => {
  await server.stop();
});

const deviceReadings = async (uid: string) => (await server.api(`/api/v1/devices/${uid}/readings?limit=10000`)).body.data;

/** SUBACK of packet id 1 granting QoS 0: type 9, remaining length 3, id 0x0001, return code 0. */
const SUBACK_1_QOS0 = Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00]);

/** A CONNECT packet, with the test server's login of `port` (anonymous clients are refused). */
const connectPacket = (clientId: string, port: number) =>
  mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: true,
    clientId,
    keepalive: 0,
    username: mqttLogin(port)?.username,
    password: Buffer.from(mqttLogin(port)?.password ?? ""),
  } as mqttPacket.IConnectPacket);

describe("the earlier sensor's readings", () => {
  test("mosquitto_pub with the earlier payload is acknowledged and returned by /readings/latest", async () => {
    const uid = "aht20-f49c53";
    const payload = '{"temperature_c":20.87,"humidity_pct":60.91,"ts":1757591504072}';
    // Its two lines of device.conf: username = its uid, password = its secret.
    const login = sensorLogin(server, uid);
    const pub = await run([
      "mosquitto_pub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.mqttPort),
      "-u",
      login.TECHTEMP_MQTT_USERNAME!,
      "-P",
      login.TECHTEMP_MQTT_PASSWORD!,
      "-q",
      "1",
      "-i",
      `techtemp-${uid}`,
      "-t",
      readingTopic(uid),
      "-m",
      payload,
      "-d",
    ]);
    expect(pub.code).toBe(0);
    expect(pub.stdout).toContain("received PUBACK");
    const { status, body } = await server.api(`/api/v1/readings/latest?deviceId=${uid}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      data: [{ device_id: uid, room_id: null, ts: "2025-09-11T11:51:44.072Z", temperature: 20.87, humidity: 60.91 }],
    });
  });

  test("a reading sent twice is stored once", async () => {
    const client = await connectMqtt(server.mqttPort);
    const payload = legacyPayload(22.5, 45, TS);
    await publishAcked(client, readingTopic("aht20-000001"), payload);
    await publishAcked(client, readingTopic("aht20-000001"), payload);
    await endMqtt(client);
    expect(await deviceReadings("aht20-000001")).toHaveLength(1);
  });

  test("a reading of exactly 0 °C and 0 % is stored as 0, not null", async () => {
    const client = await connectMqtt(server.mqttPort);
    await publishAcked(client, readingTopic("aht20-000002"), legacyPayload(0, 0, TS));
    await endMqtt(client);
    expect(await deviceReadings("aht20-000002")).toEqual([
      { ts: new Date(TS).toISOString(), temperature: 0, humidity: 0, source: "mqtt" },
    ]);
  });

  test("a reading from an unknown device registers it as unplaced and keeps the reading", async () => {
    const client = await connectMqtt(server.mqttPort);
    await publishAcked(client, readingTopic("aht20-00000a"), legacyPayload(19, 50, TS));
    await endMqtt(client);
    const { body } = await server.api("/api/v1/devices/aht20-00000a");
    expect(body.data.room).toBeNull();
    expect(body.data.home_id).toBe("home-001");
    expect(await deviceReadings("aht20-00000a")).toHaveLength(1);
  });

  test("the boundaries of the valid range are accepted (−40…85 °C, 0…100 %, ts up to 24 h ahead)", async () => {
    const client = await connectMqtt(server.mqttPort);
    const uid = "aht20-bounds";
    await publishAcked(client, readingTopic(uid), legacyPayload(-40, 0, TS));
    await publishAcked(client, readingTopic(uid), legacyPayload(85, 100, TS + 1));
    await publishAcked(client, readingTopic(uid), legacyPayload(20, 50, Date.now() + 23 * 3600_000));
    await publishAcked(
      client,
      readingTopic(uid),
      '{"temperature_c":21,"humidity_pct":40,"ts":' + (TS + 2) + ',"clock_synced":false,"extra":"ignored"}',
    );
    await endMqtt(client);
    expect(await deviceReadings(uid)).toHaveLength(4);
    expect((await server.api(`/api/v1/devices/${uid}`)).body.data.refused_count).toBe(0);
  });
});

describe("bad input from a sensor", () => {
  const cases: [string, string][] = [
    ["invalid JSON", "{temperature_c: 21"],
    ["a missing field", `{"temperature_c":21.5,"ts":${TS}}`],
    ["string numbers", `{"temperature_c":"21.5","humidity_pct":"40","ts":${TS}}`],
    ["NaN (not JSON)", `{"temperature_c":NaN,"humidity_pct":40,"ts":${TS}}`],
    ["Infinity (1e999)", `{"temperature_c":1e999,"humidity_pct":40,"ts":${TS}}`],
    ["an out-of-range temperature", legacyPayload(120, 40, TS)],
    ["an out-of-range humidity", legacyPayload(20, 140, TS)],
    ["ts far in the future", legacyPayload(20, 40, Date.now() + 3 * 86_400_000)],
    ["ts in seconds as a float", `{"temperature_c":20,"humidity_pct":40,"ts":1725427200.5}`],
    ["a JSON array", "[1,2,3]"],
    ["an empty payload", ""],
  ];
  for (const [name, payload] of cases) {
    test(`${name}: acknowledged, discarded, counted with its reason; the broker keeps serving`, async () => {
      const uid = "aht20-bad001";
      // Counted on a device the server knows (an unknown one is not registered for garbage: test/limits-mqtt.test.ts).
      await server.api("/api/v1/devices", { body: { device_uid: uid, room_name: "Lab" } });
      const bad = await connectMqtt(server.mqttPort);
      const good = await connectMqtt(server.mqttPort);
      await publishAcked(bad, readingTopic(uid), payload); // acked: no resend loop
      await publishAcked(good, readingTopic("aht20-good01"), legacyPayload(21, 40, TS));
      const device = (await server.api(`/api/v1/devices/${uid}`)).body.data;
      expect(device.refused_count).toBe(1);
      expect(device.last_refusal.length).toBeGreaterThan(5);
      expect(await deviceReadings(uid)).toEqual([]);
      expect(await deviceReadings("aht20-good01")).toHaveLength(1);
      expect(server.logs.some((l) => l.includes("refused message") && l.includes(uid))).toBe(true);
      expect((await server.api("/health")).body).toEqual({ status: "ok" });
      await endMqtt(bad);
      await endMqtt(good);
    });
  }

  test("a topic with bad IDs is acknowledged, discarded and counted", async () => {
    const client = await connectMqtt(server.mqttPort);
    await publishAcked(client, "home/home-001/sensors/bad uid!/reading", legacyPayload(21, 40, TS));
    await publishAcked(client, `home/${"h".repeat(51)}/sensors/aht20-x/reading`, legacyPayload(21, 40, TS));
    await publishAcked(client, "home/home-001/sensors/aht20-x/unknown-kind", legacyPayload(21, 40, TS));
    await endMqtt(client);
    const stats = (await server.api("/api/v1/stats")).body.data.broker;
    expect(stats.badTopics).toBe(3);
    expect((await server.api("/api/v1/devices")).body.data).toEqual([]);
    // One line per publishing client and minute.
    expect(server.logs.filter((l) => l.includes("refused message")).length).toBe(1);
  });

  test("many refusals from one device make one log line per minute, all counted", async () => {
    await server.api("/api/v1/devices", { body: { device_uid: "aht20-noisy1", room_name: "Lab" } });
    const client = await connectMqtt(server.mqttPort);
    for (let i = 0; i < 50; i++) await publishAcked(client, readingTopic("aht20-noisy1"), "nope");
    await endMqtt(client);
    expect((await server.api("/api/v1/devices/aht20-noisy1")).body.data.refused_count).toBe(50);
    expect(server.logs.filter((l) => l.includes("refused message") && l.includes("aht20-noisy1")).length).toBe(1);
  });

  test("an oversized packet closes that connection with a log line; others keep publishing", async () => {
    await server.stop();
    server = await startServer({ mqtt_max_packet_bytes: 1024 });
    const good = await connectMqtt(server.mqttPort);
    const { socket, closed } = await rawConnection(server.mqttPort);
    socket.write(connectPacket("big-sender", server.mqttPort));
    // A PUBLISH header announcing 10 MB: refused from its length alone, before any body arrives.
    socket.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x05]));
    await withTimeout(closed, 5000, "oversized connection closed");
    expect(server.logs.some((l) => l.includes("refused packet") && l.includes("mqtt_max_packet_bytes"))).toBe(true);
    await publishAcked(good, readingTopic("aht20-good02"), legacyPayload(21, 40, TS));
    await endMqtt(good);
    expect((await server.api("/health")).status).toBe(200);
  });

  test("a first packet that is not CONNECT closes the connection", async () => {
    const { socket, closed } = await rawConnection(server.mqttPort);
    socket.write(
      mqttPacket.generate({
        cmd: "publish",
        topic: readingTopic("aht20-sneaky"),
        payload: legacyPayload(1, 1, TS),
        qos: 0,
        retain: false,
        dup: false,
      } as mqttPacket.IPublishPacket),
    );
    await withTimeout(closed, 5000, "connection closed");
    expect((await server.api("/api/v1/devices")).body.data).toEqual([]);
    expect((await server.api("/health")).status).toBe(200);
  });

  test("a garbage byte stream closes the connection; the broker stays up", async () => {
    const { socket, closed } = await rawConnection(server.mqttPort);
    socket.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    socket.write(crypto.getRandomValues(new Uint8Array(4096)));
    await withTimeout(closed, 5000, "garbage connection closed");
    const client = await connectMqtt(server.mqttPort);
    await publishAcked(client, readingTopic("aht20-after1"), legacyPayload(21, 40, TS));
    await endMqtt(client);
    expect((await server.api("/health")).status).toBe(200);
  });

  test("a client id longer than the limit is refused with CONNACK 'identifier rejected' and a log line", async () => {
    const longId = "x".repeat(200);
    const pub = await run([
      "mosquitto_pub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.mqttPort),
      "-i",
      longId,
      "-t",
      "t",
      "-m",
      "m",
    ]);
    expect(pub.code).not.toBe(0);
    expect(pub.stderr.toLowerCase()).toContain("identifier rejected");
    expect(server.logs.some((l) => l.includes("refused connection") && l.includes("mqtt_max_client_id"))).toBe(true);
  });

  test("a connection that never sends CONNECT is closed after the connect timeout", async () => {
    await server.stop();
    server = await startServer({ mqtt_connect_timeout_s: 1 });
    const { closed } = await rawConnection(server.mqttPort);
    const started = Date.now();
    await withTimeout(closed, 5000, "idle connection closed");
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(server.logs.some((l) => l.includes("connect did not arrive in time"))).toBe(true);
  });

  test("connections beyond mqtt_max_clients are refused with 'server unavailable'", async () => {
    await server.stop();
    server = await startServer({ mqtt_max_clients: 2 });
    const a = await connectMqtt(server.mqttPort);
    const b = await connectMqtt(server.mqttPort);
    const pub = await run(["mosquitto_pub", "-h", "127.0.0.1", "-p", String(server.mqttPort), "-t", "t", "-m", "m"]);
    expect(pub.code).not.toBe(0);
    expect(pub.stderr.toLowerCase()).toContain("unavailable");
    await endMqtt(a);
    await endMqtt(b);
  });
});

describe("status and config messages", () => {
  test("a birth message marks the device online with its interval; its last will marks it offline", async () => {
    const uid = "aht20-status";
    const statusTopic = `home/home-001/sensors/${uid}/status`;
    const client = await connectMqtt(server.mqttPort, {
      clientId: `techtemp-${uid}`,
      will: { topic: statusTopic, payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: true },
    });
    await publishAcked(client, statusTopic, '{"state":"online","interval_s":60,"version":"1.0.0"}', 5000, true);
    let device = (await server.api(`/api/v1/devices/${uid}`)).body.data;
    expect(device).toMatchObject({ state: "online", interval_s: 60, version: "1.0.0" });
    // Cut the connection without DISCONNECT: the broker publishes the will.
    (client as unknown as { stream: Socket }).stream.destroy();
    client.end(true);
    device = await waitFor(
      async () => {
        const d = (await server.api(`/api/v1/devices/${uid}`)).body.data;
        return d.state === "offline" ? d : null;
      },
      5000,
      "device offline",
    );
    expect(device.interval_s).toBe(60);
  });

  test("a malformed status is refused with a log line and changes nothing", async () => {
    const client = await connectMqtt(server.mqttPort);
    await publishAcked(client, "home/home-001/sensors/aht20-stat02/status", '{"state":"sleepy"}');
    await endMqtt(client);
    expect((await server.api("/api/v1/stats")).body.data.broker.statusRefused).toBe(1);
    expect((await server.api("/api/v1/devices")).body.data).toEqual([]);
  });

  test("changing interval and offsets publishes the retained config message, again after a restart", async () => {
    const uid = "aht20-config";
    const client = await connectMqtt(server.mqttPort);
    await publishAcked(client, readingTopic(uid, "maison"), legacyPayload(21, 40, TS));
    await endMqtt(client);
    const put = await server.api(`/api/v1/devices/${uid}`, { method: "PUT", body: { interval_s: 60, temperature_offset: -0.5 } });
    expect(put.status).toBe(200);
    expect(put.body.data.device.config).toEqual({ interval_s: 60, temperature_offset: -0.5, humidity_offset: 0 });
    const topic = `home/maison/sensors/${uid}/config`;
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
    expect(JSON.parse(sub.stdout)).toEqual({ interval_s: 60, temperature_offset: -0.5, humidity_offset: 0 });

    const dataDir = server.dataDir;
    await server.stop({ keepData: true });
    server = await startServer({}, { dataDir });
    const again = await run([
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
    expect(JSON.parse(again.stdout)).toEqual({ interval_s: 60, temperature_offset: -0.5, humidity_offset: 0 });
  });

  test("bad config values through the API are refused with a message and publish nothing", async () => {
    const client = await connectMqtt(server.mqttPort);
    await publishAcked(client, readingTopic("aht20-cfgbad"), legacyPayload(21, 40, TS));
    await endMqtt(client);
    for (const body of [
      { interval_s: 0 },
      { interval_s: 3601 },
      { interval_s: 2.5 },
      { temperature_offset: 50 },
      { humidity_offset: "1" },
    ]) {
      const res = await server.api("/api/v1/devices/aht20-cfgbad", { method: "PUT", body });
      expect(res.status).toBe(400);
      expect(res.body.error).toContain(Object.keys(body)[0]!);
    }
    const sub = await run([
      "mosquitto_sub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.mqttPort),
      ...mqttLoginArgs(server.mqttPort),
      "-t",
      "home/+/sensors/aht20-cfgbad/config",
      "-C",
      "1",
      "-W",
      "1",
    ]);
    expect(sub.stdout).toBe("");
    expect((await server.api("/api/v1/devices/aht20-cfgbad")).body.data.config).toEqual({
      interval_s: null,
      temperature_offset: 0,
      humidity_offset: 0,
    });
  });
});

describe("failures the broker must survive", () => {
  test("a full database: the reading is not acknowledged; once space is back the client's resend is stored", async () => {
    const uid = "aht20-diskfull";
    const client = await connectMqtt(server.mqttPort, { reconnectPeriod: 200, clientId: "diskfull", clean: false });
    await publishAcked(client, readingTopic(uid), legacyPayload(21, 40, TS));
    const db = server.db;
    const pages = (db.query("PRAGMA page_count").get() as { page_count: number }).page_count;
    db.exec(`PRAGMA max_page_count = ${pages}`); // the "disk" is full from now on
    const acked: number[] = [];
    const sent = Array.from({ length: 300 }, (_, i) => TS + 60_000 * (i + 1));
    for (const ts of sent)
      client.publish(readingTopic(uid), legacyPayload(21, 40, ts), { qos: 1 }, (err) => !err && acked.push(ts));
    await waitFor(() => server.logs.some((l) => l.includes("cannot store readings")), 10_000, "the commit to fail");
    expect((await server.api("/health")).status).toBe(503);
    // Every acknowledged reading is stored; the others are not (yet).
    const storedDuringFault = new Set((await deviceReadings(uid)).map((r: { ts: string }) => Date.parse(r.ts)));
    for (const ts of acked) expect(storedDuringFault.has(ts)).toBe(true);
    expect(acked.length).toBeLessThan(sent.length);

    db.exec("PRAGMA max_page_count = 1073741823"); // space is back
    await waitFor(async () => (await deviceReadings(uid)).length === sent.length + 1, 20_000, "the resends to be stored");
    await waitFor(() => acked.length === sent.length, 10_000, "every reading acknowledged");
    expect((await server.api("/health")).body).toEqual({ status: "ok" });
    await endMqtt(client, true);
  }, 40_000);

  test("a QoS 0 flood queued behind a frozen subscriber that then disconnects does not take the process down", async () => {
    // In a child process: an uncaught stack overflow must be seen as the process dying
    // (bun test would catch it inside this process and carry on).
    const dir = tempDir();
    const child = await spawnServer(dir.path, { TECHTEMP_LOG_LEVEL: "debug" });
    try {
      // The subscriber connects and subscribes to everything, then stops reading.
      const frozen = await rawConnection(child.mqttPort);
      frozen.socket.write(connectPacket("frozen", child.mqttPort));
      frozen.socket.write(
        mqttPacket.generate({
          cmd: "subscribe",
          messageId: 1,
          subscriptions: [{ topic: "#", qos: 0 }],
        } as mqttPacket.ISubscribePacket),
      );
      // Stop reading only once the subscription is granted.
      await waitFor(() => frozen.received().includes(SUBACK_1_QOS0), 10_000, "the frozen subscriber's SUBACK");
      frozen.socket.pause();

      // Publishers pour QoS 0 messages in large chunks until thousands wait in Aedes' queue.
      const one = mqttPacket.generate({
        cmd: "publish",
        topic: "flood/x",
        payload: Buffer.alloc(1000, 65),
        qos: 0,
        retain: false,
        dup: false,
      } as mqttPacket.IPublishPacket);
      const chunk = Buffer.concat(Array.from({ length: 2000 }, () => one));
      const publishers: Socket[] = [];
      for (let i = 0; i < 20; i++) {
        const p = await rawConnection(child.mqttPort);
        p.socket.write(connectPacket(`flooder-${i}`, child.mqttPort));
        publishers.push(p.socket);
      }
      await waitFor(() => (child.output().match(/client connected client=flooder-/g) ?? []).length === 20, 15_000, "publishers");
      for (let round = 0; round < 3; round++) for (const p of publishers) p.write(chunk);
      // The scenario that crashed Aedes is set up once thousands of messages wait
      // (about 4000 overflow the stack without the guard in lib/server/mqtt/broker.ts).
      let longest = 0;
      await waitFor(
        async () => {
          const stats = await (await fetch(`${child.url}/api/v1/stats`)).json();
          longest = Math.max(longest, stats.data.broker.queued_messages);
          return longest > 3000;
        },
        15_000,
        "messages to queue up",
      );

      frozen.socket.destroy(); // every queued message now matches nobody
      // The broker sees the subscriber go, then works through its queue: that is when the stack used to overflow.
      await waitFor(
        async () => {
          if (child.proc.exitCode !== null) return "exited";
          if (!child.output().includes("client disconnected client=frozen")) return false;
          const stats = await (await fetch(`${child.url}/api/v1/stats`, { signal: AbortSignal.timeout(10_000) })).json();
          return stats.data.broker.queued_messages === 0;
        },
        30_000,
        "the broker to drop the frozen subscriber and empty its queue",
      );
      for (const p of publishers) p.destroy();
      expect(child.proc.exitCode).toBeNull();
      expect(child.output()).not.toContain("Maximum call stack size exceeded");

      // Still alive and still routing: a sensor's QoS 1 reading is stored and
      // acknowledged, and a new subscriber receives it (a stack overflow inside
      // mqemitter would leave delivery wedged even if the process lived on).
      const watcher = await connectMqtt(child.mqttPort);
      const received = new Promise<string>((resolve) => watcher.on("message", (topic) => resolve(topic)));
      await withTimeout(watcher.subscribeAsync(readingTopic("aht20-survivor")), 5000, "SUBACK");
      const client = await connectMqtt(child.mqttPort);
      await publishAcked(client, readingTopic("aht20-survivor"), legacyPayload(21, 40, TS), 10_000);
      expect(await withTimeout(received, 5000, "delivery after the storm")).toBe(readingTopic("aht20-survivor"));
      await endMqtt(client);
      await endMqtt(watcher);
      expect(await (await fetch(`${child.url}/health`)).json()).toEqual({ status: "ok" });
    } finally {
      await child.stop("SIGKILL");
      dir.cleanup();
    }
  }, 60_000);
});
