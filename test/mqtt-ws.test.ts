// Issue 16, MQTT over WebSockets on the HTTP port (the earlier system's
// Mosquitto served it on 9001): MQTT.js over ws:// to /mqtt, with the same
// login, ACL and limits as over TCP. Real server, real clients.

import { afterAll, beforeAll, expect, test } from "bun:test";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultNames, ensureCertificates } from "../lib/server/tls/local-ca.ts";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  startServer,
  tempDir,
  withTimeout,
  type TestServer,
} from "./helpers.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ mqtt_max_packet_bytes: 4096 });
});
afterAll(async () => {
  await server.stop();
});

/** Connects MQTT.js over WebSockets to the server's /mqtt; rejects with the client's error. */
async function connectWs(options: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(`ws://127.0.0.1:${new URL(server.url).port}/mqtt`, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        client.once("connect", () => resolve());
        client.once("error", reject);
      }),
      6000,
      "MQTT over WebSockets connect",
    );
  } catch (err) {
    client.end(true);
    throw err;
  }
  return client;
}

test("a tool over ws://…/mqtt logs in with its token, publishes a reading (stored before its PUBACK) and receives one sent over TCP", async () => {
  const ws = await connectWs({ clientId: "ws-tool", ...server.mqttLogin! });
  const got: string[] = [];
  ws.on("message", (topic) => got.push(topic));
  await new Promise<void>((resolve, reject) => ws.subscribe("home/#", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
  const ts = Date.now() - 5000;
  await publishAcked(ws, readingTopic("aht20-wsdev1"), legacyPayload(22.5, 45, ts));
  const stored = (await server.api("/api/v1/devices/aht20-wsdev1/readings")).body.data;
  expect(stored).toEqual([{ ts: new Date(ts).toISOString(), temperature: 22.5, humidity: 45, source: "mqtt" }]);
  const tcp = await connectMqtt(server.mqttPort, { clientId: "tcp-sensor" });
  await publishAcked(tcp, readingTopic("aht20-wsdev2"), legacyPayload(20, 40, ts));
  await withTimeout(
    (async () => {
      while (!got.includes(readingTopic("aht20-wsdev2"))) await Bun.sleep(10);
    })(),
    5000,
    "the TCP reading over WebSockets",
  );
  await endMqtt(tcp);
  await endMqtt(ws);
});

test("over WebSockets the same rules hold: anonymous and a wrong token refused (CONNACK 5), an oversized packet closes the connection", async () => {
  const anonymous = await connectWs({ clientId: "ws-anon" }).catch((e: Error) => e);
  expect((anonymous as Error).message).toContain("Not authorized");
  const wrong = await connectWs({ clientId: "ws-wrong", username: server.mqttLogin!.username, password: "tt_wrong" }).catch(
    (e: Error) => e,
  );
  expect((wrong as Error).message).toContain("Not authorized");
  expect(server.logs.some((l) => l.includes("refused connection") && l.includes("address=127.0.0.1"))).toBe(true);
  const big = await connectWs({ clientId: "ws-big", ...server.mqttLogin! });
  const closed = new Promise<void>((resolve) => big.once("close", () => resolve()));
  big.publish("tools/big", "x".repeat(10_000), { qos: 1 });
  await withTimeout(closed, 5000, "the oversized connection closed");
  big.end(true);
  expect(server.logs.some((l) => l.includes("refused packet") && l.includes("mqtt_max_packet_bytes"))).toBe(true);
  expect((await server.api("/health")).body).toEqual({ status: "ok" });
});

test("while accept_anonymous_sensors is on (an upgraded install), anonymous clients still may not use WebSockets: a web page could", async () => {
  server.auth.switches.set("accept_anonymous_sensors", true);
  try {
    // Over TCP an earlier sensor still connects anonymously…
    const tcp = await connectMqtt(server.mqttPort, { clientId: "tcp-anon", username: undefined });
    await endMqtt(tcp);
    // …over WebSockets nobody does.
    const ws = await connectWs({ clientId: "ws-anon-upgraded" }).catch((e: Error) => e);
    expect((ws as Error).message).toContain("Not authorized");
    expect(
      server.logs.some(
        (l) => l.includes("refused connection") && l.includes("anonymous clients may not use MQTT over WebSockets"),
      ),
    ).toBe(true);
  } finally {
    server.auth.switches.set("accept_anonymous_sensors", false);
  }
});

test("over wss:// on the HTTPS port beside plain HTTP, with the local CA", async () => {
  const dir = tempDir();
  try {
    ensureCertificates(join(dir.path, "tls"), defaultNames());
    const tls = await startServer({ https_port: 0, mqtts_port: 0 }, { dataDir: dir.path });
    try {
      const client = mqtt.connect(`wss://127.0.0.1:${tls.httpsPort}/mqtt`, {
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        clientId: "wss-tool",
        ca: readFileSync(join(dir.path, "tls/ca.crt")),
        ...tls.mqttLogin!,
      });
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          client.once("connect", () => resolve());
          client.once("error", reject);
        }),
        6000,
        "MQTT over wss connect",
      );
      await publishAcked(client, readingTopic("aht20-wssdev"), legacyPayload(21, 40, Date.now() - 1000));
      expect((await tls.api("/api/v1/devices/aht20-wssdev/readings")).body.data).toHaveLength(1);
      await endMqtt(client);
    } finally {
      await tls.stop({ keepData: true });
    }
  } finally {
    dir.cleanup();
  }
});
