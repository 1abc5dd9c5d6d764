// Issue 16, the broker under abuse: garbage on 10,000 distinct device topics
// registers no device, costs a few transactions and one log line, and a
// sensor's reading behind it is still acknowledged promptly. Real MQTT.js
// clients over TCP against a real server.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
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
