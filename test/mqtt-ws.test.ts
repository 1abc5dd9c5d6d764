// Issue 16, MQTT over WebSockets on the HTTP port (the earlier system's
// Mosquitto served it on 9001): MQTT.js over ws:// to /mqtt, with the same
// login, ACL and limits as over TCP. Real server, real clients.

import { afterAll, beforeAll, expect, test } from "bun:test";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import mqttPacket from "mqtt-packet";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
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
  waitFor,
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

/** A masked binary WebSocket frame (a client's), for a raw socket. */
function wsFrame(payload: Uint8Array): Buffer {
  const mask = [0x12, 0x34, 0x56, 0x78];
  const length = payload.length > 125 ? [0x80 | 126, payload.length >> 8, payload.length & 255] : [0x80 | payload.length];
  return Buffer.from([0x82, ...length, ...mask, ...payload.map((b, i) => b ^ mask[i % 4]!)]);
}

/**
 * A WebSocket MQTT client over a raw TCP socket, written by hand so that the
 * test can stop reading (a browser tab in the background, a frozen tool):
 * logs in with the server's token and subscribes to `filter`.
 */
async function rawWsSubscriber(filter: string): Promise<Socket> {
  const socket = connect(Number(new URL(server.url).port), "127.0.0.1");
  await withTimeout(new Promise((resolve) => socket.once("connect", resolve)), 5000, "TCP connect");
  let received = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  /** The MQTT bytes the server sent so far: the payloads of its (unmasked) frames after the HTTP answer. */
  const mqttBytes = () => {
    const end = received.indexOf("\r\n\r\n");
    const out: number[] = [];
    for (let at = end + 4; end >= 0 && at + 2 <= received.length;) {
      let length = received[at + 1]! & 127;
      let start = at + 2;
      if (length === 126) ((length = received.readUInt16BE(at + 2)), (start = at + 4));
      if (start + length > received.length) break;
      out.push(...received.subarray(start, start + length));
      at = start + length;
    }
    return Buffer.from(out);
  };
  socket.write(
    "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
  );
  await waitFor(() => received.includes("101 Switching Protocols"), 5000, "the WebSocket upgrade");
  const { username, password } = server.mqttLogin!;
  socket.write(
    wsFrame(
      mqttPacket.generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: true,
        clientId: "raw-ws",
        keepalive: 0,
        username,
        password: Buffer.from(password! as string),
      } as mqttPacket.IConnectPacket),
    ),
  );
  await waitFor(() => mqttBytes().includes(Buffer.from([0x20, 2, 0, 0])), 5000, "CONNACK 0");
  socket.write(
    wsFrame(
      mqttPacket.generate({
        cmd: "subscribe",
        messageId: 1,
        subscriptions: [{ topic: filter, qos: 0 }],
      } as mqttPacket.ISubscribePacket),
    ),
  );
  // SUBACK for packet id 1, QoS 0 granted.
  await waitFor(() => mqttBytes().includes(Buffer.from([0x90, 3, 0, 1, 0])), 5000, "SUBACK");
  return socket;
}

test("over WebSockets what one connection may hold is bounded: a frame over the largest packet is refused unread, a tool that stops reading is closed", async () => {
  // A 5,000-byte frame with mqtt_max_packet_bytes 4096: refused by the WebSocket layer, before it is buffered.
  const big = new WebSocket(`ws://127.0.0.1:${new URL(server.url).port}/mqtt`, ["mqtt"]);
  await withTimeout(new Promise((resolve) => (big.onopen = resolve)), 5000, "WebSocket open");
  const bigClosed = new Promise<number>((resolve) => (big.onclose = (event) => resolve(event.code)));
  big.send(new Uint8Array(5000));
  expect(await withTimeout(bigClosed, 5000, "the oversized frame's close")).toBe(1009);
  await waitFor(
    () => server.logs.some((l) => l.includes("refused WebSocket frame: longer than mqtt_max_packet_bytes (4096) + 5 bytes")),
    5000,
    "the refused frame's log line",
  );

  // A subscriber that stops reading while messages keep coming for it: closed once 1 MiB waits for it.
  const slow = await rawWsSubscriber("flood/#");
  const slowClosed = new Promise<void>((resolve) => slow.once("close", () => resolve()));
  slow.pause();
  const flooder = await connectMqtt(server.mqttPort, { clientId: "flooder" });
  const payload = "x".repeat(4000);
  const cut = () =>
    server.logs.some((l) => l.includes("stopped reading: 1048576 bytes were waiting for it (mqtt_max_outgoing_bytes)"));
  // 2 MB at a time until the bound is hit: the kernel's socket buffers take several MB first, as many as they are sized for.
  await waitFor(
    async () => {
      for (let i = 0; i < 499 && !cut(); i++) flooder.publish("flood/a", payload, { qos: 0 });
      // The batch's last message: its callback runs once the batch is on the flooder's socket.
      await new Promise<void>((resolve) => flooder.publish("flood/a", payload, { qos: 0 }, () => resolve()));
      return cut();
    },
    30_000,
    "the slow reader's log line",
  );
  slow.resume(); // reads what the kernel holds, then sees the end
  await withTimeout(slowClosed, 10_000, "the slow reader's connection closed");
  await endMqtt(flooder);
  // Logged once, however many messages were dropped; the server goes on serving everyone else.
  expect(server.logs.filter((l) => l.includes("that stopped reading")).length).toBe(1);
  const ws = await connectWs({ clientId: "ws-after", ...server.mqttLogin! });
  await publishAcked(ws, readingTopic("aht20-wsafter"), legacyPayload(21.5, 40, Date.now() - 1000));
  await endMqtt(ws);
  expect((await server.api("/health")).body).toEqual({ status: "ok" });
}, 60_000);

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
