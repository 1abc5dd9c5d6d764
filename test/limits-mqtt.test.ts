// Issue 16, the broker under abuse: garbage on 10,000 distinct device topics
// registers no device, costs a few transactions and one log line, and a
// sensor's reading behind it is still acknowledged promptly. Real MQTT.js
// clients over TCP against a real server.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import mqttPacket from "mqtt-packet";
import { Database } from "bun:sqlite";
import { connect } from "node:net";
import { join } from "node:path";
import { DB_FILE } from "../lib/server/store/db.ts";
import { MAX_SUBSCRIPTION_BYTES } from "../lib/server/mqtt/bounds.ts";
import { sensorLogin } from "./sensor-helpers.ts";
import {
  connectMqtt,
  createToken,
  endMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  startServer,
  withTimeout,
  waitFor,
  type TestServer,
} from "./helpers.ts";

let server: TestServer;

beforeEach(async () => {
  server = await startServer({}, { logLevel: "info" });
});
afterEach(async () => {
  await server.stop();
});

describe("garbage on many device topics", () => {
  test("10,000 garbage readings on 10,000 made-up devices: none registered, one log line, a sensor's PUBACK still prompt", async () => {
    await server.api("/api/v1/devices", { body: { device_uid: "aht20-known1", room_name: "Lab" } });
    const flood = await connectMqtt(server.mqttPort, { clientId: "garbage-flood" });
    const sensor = await connectMqtt(server.mqttPort, { clientId: "probe-sensor" });
    const N = 10_000;
    let acked = 0;
    const all = new Promise<void>((resolve) => {
      for (let i = 0; i < N; i++) {
        const uid = `junk-${i.toString(36)}`;
        flood.publish(readingTopic(uid), `garbage ${i}`, { qos: 1 }, () => {
          if (++acked === N) resolve();
        });
      }
      // A refusal on a device the server knows is still counted on it.
      flood.publish(readingTopic("aht20-known1"), "garbage", { qos: 1 });
    });
    // While the flood is being refused, a sensor's readings are acknowledged promptly.
    const waits: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await withTimeout(
        new Promise<void>((resolve, reject) =>
          sensor.publish(readingTopic("aht20-probe1"), legacyPayload(21, 40, Date.now() - 60_000 + i), { qos: 1 }, (err) =>
            err ? reject(err) : resolve(),
          ),
        ),
        20_000,
        "the probe's PUBACK",
      );
      waits.push(performance.now() - started);
    }
    await withTimeout(all, 60_000, "every garbage message acknowledged");
    waits.sort((a, b) => a - b);
    const p99 = waits[Math.ceil(waits.length * 0.99) - 1]!;
    console.log(`probe PUBACK under a 10,000-topic garbage flood: median ${waits[10]!.toFixed(0)} ms, max ${p99.toFixed(0)} ms`);
    // It waited over 20 s here before (3.9 s to 30 s in the issue); 3 s leaves room for a loaded machine.
    expect(p99).toBeLessThan(3000);

    const devices = (await server.api("/api/v1/devices")).body.data.map((d: { uid: string }) => d.uid).sort();
    expect(devices).toEqual(["aht20-known1", "aht20-probe1"]);
    const stats = (await server.api("/api/v1/stats")).body.data.broker;
    expect(stats.readingsRefused).toBe(N + 1);
    expect(stats.refusalsNotCounted).toBe(N);
    await withTimeout(
      (async () => {
        while ((await server.api("/api/v1/devices/aht20-known1")).body.data.refused_count !== 1) await Bun.sleep(20);
      })(),
      5000,
      "the known device's refusal counted",
    );
    // One line for the flooding client in this minute (the next one would carry the count it left out).
    expect(server.logs.filter((l) => l.includes("refused message")).length).toBe(1);
    expect(server.logs.filter((l) => l.includes("refused message"))[0]).toContain("client=garbage-flood");
    await endMqtt(flood);
    await endMqtt(sensor);
  }, 90_000);
});

describe("how many devices readings may register", () => {
  test("beyond max_devices a new device's reading or status is not acknowledged (its sensor keeps it), logged once per client; known devices go on; deleting one makes room", async () => {
    await server.stop();
    server = await startServer({ max_devices: 3 }, { logLevel: "info" });
    const tool = await connectMqtt(server.mqttPort, { clientId: "cap-tool" });
    const ts = Date.now() - 5000;
    for (const uid of ["aht20-cap001", "aht20-cap002", "aht20-cap003"])
      await publishAcked(tool, readingTopic(uid), legacyPayload(21, 40, ts));
    // The fourth device: no PUBACK; the broker closes the connection (MQTT 3.1.1 has no way to refuse a PUBLISH).
    const closed = new Promise<void>((resolve) => tool.once("close", () => resolve()));
    tool.publish(readingTopic("aht20-cap004"), legacyPayload(22, 41, ts), { qos: 1 });
    await withTimeout(closed, 5000, "the connection closed");
    await endMqtt(tool, true);
    // A new device's retained status is refused too: it would register the device.
    const status = await connectMqtt(server.mqttPort, { clientId: "cap-status" });
    const statusClosed = new Promise<void>((resolve) => status.once("close", () => resolve()));
    status.publish("home/home-001/sensors/aht20-cap005/status", JSON.stringify({ state: "online" }), { qos: 1, retain: true });
    await withTimeout(statusClosed, 5000, "the status connection closed");
    await endMqtt(status, true);
    // One line per client and minute.
    const lines = server.logs.filter((l) => l.includes("refused a new device"));
    expect(lines.length).toBe(2);
    expect(lines[0]).toContain("device=aht20-cap004 client=cap-tool");
    expect(lines[1]).toContain("device=aht20-cap005 client=cap-status");
    expect(lines[0]).toContain("3 devices are registered (max_devices); delete devices no longer used, or raise max_devices");
    const devices = (await server.api("/api/v1/devices")).body.data.map((d: { uid: string }) => d.uid).sort();
    expect(devices).toEqual(["aht20-cap001", "aht20-cap002", "aht20-cap003"]);
    expect((await server.api("/api/v1/stats")).body.data.broker.devicesRefused).toBe(2);
    // A known device's readings are stored as before.
    const again = await connectMqtt(server.mqttPort, { clientId: "cap-tool-2" });
    await publishAcked(again, readingTopic("aht20-cap002"), legacyPayload(23, 42, ts + 1000));
    expect((await server.api("/api/v1/devices/aht20-cap002/readings")).body.data).toHaveLength(2);
    // Deleting a device makes room: the fourth one is stored now.
    expect((await server.api("/api/v1/devices/aht20-cap001", { method: "DELETE" })).status).toBe(200);
    await publishAcked(again, readingTopic("aht20-cap004"), legacyPayload(22, 41, ts));
    expect((await server.api("/api/v1/devices/aht20-cap004/readings")).body.data).toHaveLength(1);
    await endMqtt(again);
    expect((await server.api("/health")).body).toEqual({ status: "ok" });
  }, 30_000);
});

describe("a reserve of connections for sensors", () => {
  test("tools beyond mqtt_max_tool_clients and anonymous clients beyond mqtt_max_anonymous_per_address get CONNACK 3; sensors still connect", async () => {
    await server.stop();
    server = await startServer({ mqtt_max_clients: 40, mqtt_max_tool_clients: 5, mqtt_max_anonymous_per_address: 2 });
    const open: MqttClient[] = [];
    try {
      for (let i = 0; i < 5; i++)
        open.push(await connectMqtt(server.mqttPort, { clientId: `tool-${i}`, ...createToken(server.store) }));
      // 20 more tools (each with a token of its own) hammer: every one refused, one log line.
      for (let i = 0; i < 20; i++) {
        const err = await connectMqtt(server.mqttPort, { clientId: `tool-extra-${i}`, ...createToken(server.store) }).then(
          (c) => (open.push(c), null),
          (e: Error) => e,
        );
        expect(err?.message).toContain("Server unavailable");
      }
      const lines = server.logs.filter((l) => l.includes("refused connection") && l.includes("mqtt_max_tool_clients"));
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain("client=tool-extra-0");
      expect(lines[0]).toMatch(/address=127\.0\.0\.1:\d+/);
      // Sensors log in with their own credentials: all of them get in, and their readings are stored.
      for (let i = 0; i < 10; i++) {
        const uid = `aht20-rsv00${i}`;
        const login = sensorLogin(server, uid);
        const sensor = await connectMqtt(server.mqttPort, {
          clientId: `techtemp-${uid}`,
          username: login.TECHTEMP_MQTT_USERNAME,
          password: login.TECHTEMP_MQTT_PASSWORD,
        });
        open.push(sensor);
        await publishAcked(sensor, readingTopic(uid), legacyPayload(21, 40, Date.now() - 1000));
      }
      // Anonymous clients (an upgraded install's earlier sensors): at most 2 from one address.
      expect((await server.api("/api/v1/settings", { method: "PUT", body: { accept_anonymous_sensors: true } })).status).toBe(
        200,
      );
      for (let i = 0; i < 2; i++) open.push(await connectMqtt(server.mqttPort, { clientId: `anon-${i}`, username: undefined }));
      const third = await connectMqtt(server.mqttPort, { clientId: "anon-2", username: undefined }).catch((e: Error) => e);
      expect((third as Error).message).toContain("Server unavailable");
      expect(server.logs.some((l) => l.includes("mqtt_max_anonymous_per_address"))).toBe(true);
    } finally {
      for (const c of open) await endMqtt(c, true);
    }
  }, 60_000);
});

describe("what the broker keeps for clients is bounded", () => {
  test("retained messages outside the contract: at most mqtt_max_retained and mqtt_max_retained_bytes; a device's status is always kept", async () => {
    await server.stop();
    server = await startServer({ mqtt_max_retained: 10, mqtt_max_retained_bytes: 20_000 });
    const tool = await connectMqtt(server.mqttPort, { clientId: "retain-filler" });
    const kb = "r".repeat(1000);
    for (let i = 0; i < 20; i++) await publishAcked(tool, `tools/filler/${i}`, kb, 5000, true);
    let kept = (await server.api("/api/v1/stats")).body.data.broker.kept;
    expect(kept).toMatchObject({ retainedMessages: 10, retainedRefused: 10 });
    // A replacement that does not fit in the bytes is not kept, and the value it replaced goes too (never stale).
    await publishAcked(tool, "tools/filler/0", "x".repeat(15_000), 5000, true);
    kept = (await server.api("/api/v1/stats")).body.data.broker.kept;
    expect(kept.retainedMessages).toBe(9);
    expect(kept.retainedBytes).toBeLessThanOrEqual(20_000);
    // A sensor's retained status (a contract topic) is kept whatever the others take.
    const uid = "aht20-keep01";
    const login = sensorLogin(server, uid);
    const sensor = await connectMqtt(server.mqttPort, {
      clientId: `techtemp-${uid}`,
      username: login.TECHTEMP_MQTT_USERNAME,
      password: login.TECHTEMP_MQTT_PASSWORD,
    });
    await publishAcked(sensor, `home/home-001/sensors/${uid}/status`, '{"state":"online","interval_s":60}', 5000, true);
    // A new subscriber gets exactly what was kept.
    const reader = await connectMqtt(server.mqttPort, { clientId: "retain-reader" });
    const got = new Set<string>();
    reader.on("message", (topic) => got.add(topic));
    reader.subscribe(["tools/#", `home/+/sensors/${uid}/status`]);
    await withTimeout(
      (async () => {
        while (got.size < 10) await Bun.sleep(20);
      })(),
      5000,
      "the retained messages",
    );
    await Bun.sleep(200); // nothing more arrives (there is no event for "no more")
    expect(got.size).toBe(10);
    expect(got.has(`home/home-001/sensors/${uid}/status`)).toBe(true);
    expect(got.has("tools/filler/0")).toBe(false);
    const lines = server.logs.filter((l) => l.includes("retained message not kept"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("client=retain-filler");
    expect(lines[0]).toContain("mqtt_max_retained");
    for (const c of [tool, sensor, reader]) await endMqtt(c);
  });

  test("at most mqtt_max_sessions persistent sessions are kept: a new one's SUBSCRIBE gets 0x80, logged once; kept ones, clean sessions and a freed place go on", async () => {
    await server.stop();
    server = await startServer({ mqtt_max_sessions: 2 });
    /** Subscribes and returns the granted QoS (128: refused). */
    const subscribe = (c: MqttClient, topic: string) =>
      withTimeout(
        new Promise<number>((resolve, reject) =>
          c.subscribe(topic, { qos: 1 }, (err, granted) =>
            // MQTT.js turns a SUBACK of 0x80 into this error.
            err ? (err.message.startsWith("Subscribe error") ? resolve(128) : reject(err)) : resolve(granted![0]!.qos),
          ),
        ),
        5000,
        `SUBACK for ${topic}`,
      );
    const open: MqttClient[] = [];
    try {
      for (const id of ["keeper-1", "keeper-2"]) {
        const c = await connectMqtt(server.mqttPort, { clientId: id, clean: false });
        open.push(c);
        expect(await subscribe(c, "home/#")).toBe(1);
      }
      // Two more client ids with clean session off: refused, the connections stay; one log line for both.
      for (const id of ["extra-1", "extra-2"]) {
        const c = await connectMqtt(server.mqttPort, { clientId: id, clean: false });
        open.push(c);
        expect(await subscribe(c, "home/#")).toBe(128);
        expect(c.connected).toBe(true);
      }
      const lines = server.logs.filter((l) => l.includes("refused subscription") && l.includes("mqtt_max_sessions"));
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain("client=extra-1");
      expect(lines[0]).toContain("already 2 persistent sessions are kept, the limit (mqtt_max_sessions)");
      // A session already kept subscribes to more; a clean session subscribes as before.
      expect(await subscribe(open[0]!, "tools/#")).toBe(1);
      const clean = await connectMqtt(server.mqttPort, { clientId: "clean-tool" });
      open.push(clean);
      expect(await subscribe(clean, "home/#")).toBe(1);
      expect((await server.api("/api/v1/stats")).body.data.broker.kept).toMatchObject({ sessions: 2, sessionsRefused: 2 });
      // keeper-2 comes back with a clean session: its session ends, and extra-1 takes its place.
      await endMqtt(open[1]!);
      open.push(await connectMqtt(server.mqttPort, { clientId: "keeper-2" }));
      expect(await subscribe(open[2]!, "home/#")).toBe(1);
      expect((await server.api("/api/v1/stats")).body.data.broker.kept.sessions).toBe(2);
    } finally {
      for (const c of open) await endMqtt(c, true);
    }
  });

  test("a client holds at most mqtt_max_subscriptions topic filters (64 KiB together): a new one beyond gets 0x80, logged once per client; held ones and freed places go on", async () => {
    await server.stop();
    server = await startServer({ mqtt_max_subscriptions: 3 }, { logLevel: "info" });
    /** Sends one SUBSCRIBE of `topics` and returns its SUBACK's codes (128: refused). */
    const subscribe = (c: MqttClient, topics: string[]) =>
      withTimeout(
        new Promise<number[]>((resolve) => {
          const onPacket = (packet: mqttPacket.Packet) => {
            if (packet.cmd !== "suback") return;
            c.off("packetreceive", onPacket);
            resolve(packet.granted as number[]);
          };
          c.on("packetreceive", onPacket);
          // MQTT.js turns any 0x80 into an error; the SUBACK's codes are what is checked.
          c.subscribe(topics, { qos: 1 }, () => {});
        }),
        5000,
        `SUBACK for ${topics.join(", ")}`,
      );
    const unsubscribe = (c: MqttClient, topic: string) => withTimeout(c.unsubscribeAsync(topic), 5000, `UNSUBACK for ${topic}`);
    const open: MqttClient[] = [];
    try {
      const tool = await connectMqtt(server.mqttPort, { clientId: "many-filters" });
      open.push(tool);
      expect(await subscribe(tool, ["home/a/#", "home/b/#", "home/c/#"])).toEqual([1, 1, 1]);
      expect(await subscribe(tool, ["home/d/#"])).toEqual([128]);
      expect(await subscribe(tool, ["home/e/#"])).toEqual([128]);
      expect(tool.connected).toBe(true);
      // A filter held already is granted again; a freed place is taken.
      expect(await subscribe(tool, ["home/a/#"])).toEqual([1]);
      await unsubscribe(tool, "home/b/#");
      expect(await subscribe(tool, ["home/d/#"])).toEqual([1]);
      const lines = server.logs.filter((l) => l.includes("refused subscription"));
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain("client=many-filters");
      expect(lines[0]).toContain("this client holds 3 topic filters already, the limit (mqtt_max_subscriptions)");
      // Another client has places of its own, and its own log line.
      const other = await connectMqtt(server.mqttPort, { clientId: "other-tool" });
      open.push(other);
      expect(await subscribe(other, ["home/a/#", "home/b/#", "home/c/#", "home/d/#"])).toEqual([1, 1, 1, 128]);
      expect(server.logs.filter((l) => l.includes("refused subscription")).length).toBe(2);
      // What a filter is for: a message on a held one arrives.
      const got = new Promise<string>((resolve) => other.once("message", (topic) => resolve(topic)));
      await tool.publishAsync("home/c/x", "1", { qos: 1 });
      expect(await withTimeout(got, 5000, "message on home/c/x")).toBe("home/c/x");

      // The bytes: two filters of 40,000 bytes are more than 64 KiB together.
      expect(MAX_SUBSCRIPTION_BYTES).toBe(65_536);
      const wide = await connectMqtt(server.mqttPort, { clientId: "long-filters" });
      open.push(wide);
      expect(await subscribe(wide, [`tools/${"x".repeat(40_000)}`])).toEqual([1]);
      expect(await subscribe(wide, [`tools/${"y".repeat(40_000)}`])).toEqual([128]);
      expect(server.logs.some((l) => l.includes("client=long-filters") && l.includes("more than 65536 bytes together"))).toBe(
        true,
      );

      // A persistent session keeps only what was granted (Aedes would store the whole SUBSCRIBE's list).
      const keeper = await connectMqtt(server.mqttPort, { clientId: "keeper", clean: false });
      open.push(keeper);
      expect(await subscribe(keeper, ["home/a/#", "home/b/#", "home/c/#", "home/d/#", "home/e/#"])).toEqual([1, 1, 1, 128, 128]);
      const db = new Database(join(server.dataDir, DB_FILE), { readonly: true });
      try {
        const kept = () =>
          db
            .query<{ topic: string }, [string]>("SELECT topic FROM mqtt_subscriptions WHERE client_id = ? ORDER BY topic")
            .all("keeper");
        await waitFor(() => kept().length === 3, 5000, "the session's filters in the database");
        // Written after the SUBACK: any late write of the refused ones would have come with the granted ones.
        expect(kept().map((r) => r.topic)).toEqual(["home/a/#", "home/b/#", "home/c/#"]);
      } finally {
        db.close();
      }
      expect((await server.api("/api/v1/stats")).body.data.broker.kept.subscriptionsRefused).toBe(6);
      expect((await server.api("/health")).status).toBe(200);
    } finally {
      for (const c of open) await endMqtt(c, true);
    }
  });

  test("an offline persistent session queues at most mqtt_max_queued_messages; it gets those when it comes back", async () => {
    await server.stop();
    server = await startServer({ mqtt_max_queued_messages: 100 });
    const away = await connectMqtt(server.mqttPort, { clientId: "ha-persistent", clean: false });
    await new Promise<void>((resolve, reject) => away.subscribe("home/#", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    await endMqtt(away);
    const sensor = await connectMqtt(server.mqttPort, { clientId: "queue-filler" });
    const t0 = Date.now() - 3_600_000;
    for (let i = 0; i < 300; i++) await publishAcked(sensor, readingTopic("aht20-queue1"), legacyPayload(21, 40, t0 + i * 1000));
    await endMqtt(sensor);
    const kept = (await server.api("/api/v1/stats")).body.data.broker.kept;
    expect(kept).toMatchObject({ queuedMessages: 100, queueDropped: 200 });
    const lines = server.logs.filter((l) => l.includes("dropped a message for a persistent session"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("client=ha-persistent");
    expect(lines[0]).toContain("mqtt_max_queued_messages");
    // Back: the 100 queued messages arrive (the oldest ones: later ones were dropped, as Mosquitto does).
    const received: number[] = [];
    const back = await connectMqtt(server.mqttPort, { clientId: "ha-persistent", clean: false });
    back.on("message", (_topic, payload) => received.push(JSON.parse(payload.toString()).ts));
    await withTimeout(
      (async () => {
        while (received.length < 100) await Bun.sleep(20);
      })(),
      10_000,
      "the queued messages",
    );
    await Bun.sleep(200);
    expect(received.length).toBe(100);
    expect(received[0]).toBe(t0);
    await endMqtt(back);
    expect((await server.api("/api/v1/stats")).body.data.broker.kept.queuedMessages).toBe(0);
  });
});

describe("a subscriber that stops reading", () => {
  test("does not hold up publishers: every PUBACK prompt, its messages dropped beyond mqtt_max_outgoing_bytes, one log line", async () => {
    await server.stop();
    // A small bound, so it is reached with 12 MB (the kernel's socket buffers take a few MB first).
    server = await startServer({ mqtt_max_outgoing_bytes: 65_536 });
    const login = server.mqttLogin!;
    const frozen = connect(server.mqttPort, "127.0.0.1");
    frozen.on("error", () => {});
    let received = 0;
    frozen.on("data", (d: Buffer) => (received += d.length));
    await withTimeout(new Promise((r) => frozen.once("connect", r)), 5000, "TCP connect");
    frozen.write(
      mqttPacket.generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: true,
        clientId: "frozen-reader",
        keepalive: 0,
        username: login.username,
        password: Buffer.from(login.password),
      } as mqttPacket.IConnectPacket),
    );
    frozen.write(
      mqttPacket.generate({
        cmd: "subscribe",
        messageId: 1,
        subscriptions: [{ topic: "bulk/#", qos: 0 }],
      } as mqttPacket.ISubscribePacket),
    );
    await withTimeout(
      (async () => {
        while (received < 9) await Bun.sleep(10); // CONNACK (4) + SUBACK (5)
      })(),
      5000,
      "CONNACK and SUBACK",
    );
    frozen.pause(); // stops reading from now on
    const publisher = await connectMqtt(server.mqttPort, { clientId: "bulk-publisher" });
    const payload = "p".repeat(10_000);
    // Pipelined, as a busy publisher sends: 1200 messages in flight at once.
    const started = performance.now();
    let longest = 0;
    await withTimeout(
      Promise.all(
        Array.from(
          { length: 1200 },
          (_, i) =>
            new Promise<void>((resolve, reject) =>
              publisher.publish(`bulk/${i % 10}`, payload, { qos: 1 }, (err) => {
                longest = Math.max(longest, performance.now() - started);
                return err ? reject(err) : resolve();
              }),
            ),
        ),
      ),
      30_000,
      "every PUBACK",
    );
    console.log(`12 MB published past a subscriber that does not read: all 1200 PUBACKs within ${longest.toFixed(0)} ms`);
    // They waited ~11 s before: until the reader was cut by the drain timeout (10 s).
    expect(longest).toBeLessThan(8000);
    const stats = (await server.api("/api/v1/stats")).body.data.broker;
    expect(stats.slowSubscriberDropped).toBeGreaterThan(0);
    const lines = server.logs.filter((l) => l.includes("a subscriber that does not read"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("client=frozen-reader");
    expect(lines[0]).toMatch(/address=127\.0\.0\.1:\d+/);
    frozen.destroy();
    await endMqtt(publisher);
  }, 90_000);
});
