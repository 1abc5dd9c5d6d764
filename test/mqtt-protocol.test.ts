// Issue 16, the broker behaving like Mosquitto where clients can tell: bytes
// that are not UTF-8 (or carry NUL) in a topic or a client id are a
// malformed packet, an empty client id without a clean session is CONNACK 2,
// MQTT 3.1 ids may be longer than 23 characters, and every connection error
// is logged with the client id and address, once per cause and minute.
// Raw sockets with packets built by mqtt-packet, so the bytes are exactly
// the ones under test.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import mqttPacket from "mqtt-packet";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  mqttLogin,
  publishAcked,
  rawConnection,
  readingTopic,
  startServer,
  withTimeout,
  type TestServer,
} from "./helpers.ts";

const TS = 1_725_427_200_000;
let server: TestServer;

beforeAll(async () => {
  server = await startServer({ mqtt_max_packet_bytes: 2048 });
});
afterAll(async () => {
  await server.stop();
});

/** A raw TCP connection to the test server's broker. */
const raw = () => rawConnection(server.mqttPort);

/** A CONNECT with the test server's login. */
function connectBytes(clientId: string, extra: Partial<mqttPacket.IConnectPacket> = {}): Buffer {
  return mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: true,
    clientId,
    keepalive: 0,
    username: mqttLogin(server.mqttPort)?.username,
    password: Buffer.from(mqttLogin(server.mqttPort)?.password ?? ""),
    ...extra,
  } as mqttPacket.IConnectPacket);
}

/** `bytes` with the first occurrence of `marker` (ASCII) replaced by `replacement`, same length. */
function patch(bytes: Buffer, marker: string, replacement: number[]): Buffer {
  const at = bytes.indexOf(Buffer.from(marker));
  expect(at).toBeGreaterThan(0);
  expect(replacement.length).toBe(marker.length);
  const out = Buffer.from(bytes);
  out.set(replacement, at);
  return out;
}

/** Waits (at most 5 s) until a connection has received its CONNACK. */
const connackArrived = (received: () => Buffer) =>
  withTimeout(
    (async () => {
      while (connackCode(received()) === null) await Bun.sleep(10);
    })(),
    5000,
    "CONNACK",
  );

/** The CONNACK return code in what a connection received, or null without one. */
function connackCode(bytes: Buffer): number | null {
  return bytes.length >= 4 && bytes[0] === 0x20 ? bytes[3]! : null;
}

const publishBytes = (topic: string, payload: string, messageId = 1) =>
  mqttPacket.generate({
    cmd: "publish",
    topic,
    payload,
    qos: 1,
    messageId,
    retain: false,
    dup: false,
  } as mqttPacket.IPublishPacket);

const logsWith = (...parts: string[]) => server.logs.filter((l) => parts.every((p) => l.includes(p)));

describe("UTF-8", () => {
  for (const [what, bytes] of [
    ["bytes that are not UTF-8", [0xff, 0xfe]],
    ["a NUL", [0x41, 0x00]],
    ["an overlong encoding", [0xc0, 0xaf]],
  ] as [string, number[]][]) {
    test(`a PUBLISH whose topic has ${what} is not acknowledged, not stored, and its connection is closed`, async () => {
      const before = server.logs.length;
      const uid = `aht20-utf${bytes[0]!.toString(16)}`;
      const { socket, received, closed } = await raw();
      socket.write(connectBytes(`utf8-${bytes[0]}`));
      await connackArrived(received);
      expect(connackCode(received())).toBe(0);
      socket.write(patch(publishBytes(readingTopic(uid) + "/XX", legacyPayload(21, 40, TS)), "XX", bytes));
      const all = await withTimeout(closed, 5000, "connection closed");
      // Only the CONNACK came back: no PUBACK (0x40).
      expect(all.length).toBe(4);
      expect((await server.api(`/api/v1/devices/${uid}`)).status).toBe(404);
      // Logged with its reason (once per cause, address and minute: the same cause in an earlier test may have said it).
      const line =
        /refused packet client=utf8-\d+ address=127\.0\.0\.1:\d+ reason="malformed publish: its topic (is not valid UTF-8|contains NUL)/;
      expect(server.logs.some((l) => line.test(l))).toBe(true);
      for (const l of server.logs.slice(before)) expect(l).not.toContain("\u0000");
    });
  }

  test("a CONNECT whose client id is not UTF-8 is closed without CONNACK, logged with its address", async () => {
    const before = server.logs.length;
    const { socket, closed } = await raw();
    socket.write(patch(connectBytes("bad-id-XX"), "XX", [0x00, 0xff]));
    const all = await withTimeout(closed, 5000, "connection closed");
    expect(connackCode(all)).toBeNull();
    const lines = server.logs.slice(before);
    expect(lines.some((l) => l.includes("client id") && l.includes("UTF-8") && l.includes("address=127.0.0.1:"))).toBe(true);
    for (const l of lines) expect(l).not.toContain("\u0000");
    // Valid UTF-8 beyond ASCII is fine.
    const client = await connectMqtt(server.mqttPort, { clientId: "capteur-salle-à-manger-☃" });
    await publishAcked(client, "outside/the/contract/é", "x");
    await endMqtt(client);
  });
});

describe("client ids", () => {
  test("an empty client id without a clean session gets CONNACK 2 (MQTT-3.1.3-8), with a clean session CONNACK 0", async () => {
    const a = await raw();
    // mqtt-packet will not build it: the clean-session bit (0x02 of the connect flags, after "MQTT" and the level) cleared by hand.
    const bytes = connectBytes("", { clean: true });
    const flags = bytes.indexOf(Buffer.from("MQTT")) + 5;
    bytes[flags] = bytes[flags]! & ~0x02;
    a.socket.write(bytes);
    expect(connackCode(await withTimeout(a.closed, 5000, "refused connection closed"))).toBe(2);
    const b = await raw();
    b.socket.write(connectBytes("", { clean: true }));
    await connackArrived(b.received);
    expect(connackCode(b.received())).toBe(0);
    b.socket.destroy();
    expect(logsWith("refused connection", "clean session").length).toBeGreaterThan(0);
  });

  test("an MQTT 3.1 client (MQIsdp) with a 40-character id is accepted, as Mosquitto does", async () => {
    const id = "legacy-31-client-" + "x".repeat(23);
    const { socket, received } = await raw();
    socket.write(connectBytes(id, { protocolId: "MQIsdp", protocolVersion: 3 }));
    await connackArrived(received);
    expect(connackCode(received())).toBe(0);
    socket.destroy();
  });
});

describe("connection errors are logged with client id and address, once per cause and minute", () => {
  test("20 MQTT 5 CONNECTs from one address: each refused, one log line naming the client and the address", async () => {
    const before = server.logs.length;
    for (let i = 0; i < 20; i++) {
      const { socket, closed } = await raw();
      socket.write(connectBytes(`mqtt5-client-${i}`, { protocolVersion: 5 }));
      await withTimeout(closed, 5000, "MQTT 5 connection closed");
    }
    const lines = server.logs.slice(before).filter((l) => l.includes("WARN") || l.includes("ERROR"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("client=mqtt5-client-0");
    expect(lines[0]).toMatch(/address=127\.0\.0\.1:\d+/);
    expect(lines[0]).toContain("protocol version");
  });

  test("a message over mqtt_max_packet_bytes: the reason, client id and address logged once a minute however often it is resent", async () => {
    const before = server.logs.length;
    for (let i = 0; i < 5; i++) {
      const { socket, received, closed } = await raw();
      socket.write(connectBytes("big-resender"));
      await connackArrived(received);
      socket.write(publishBytes("tools/blob", "x".repeat(3000)));
      await withTimeout(closed, 5000, "oversized connection closed");
    }
    const lines = server.logs.slice(before).filter((l) => l.includes("refused packet"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("client=big-resender");
    expect(lines[0]).toMatch(/address=127\.0\.0\.1:\d+/);
    expect(lines[0]).toContain("larger than the limit of 2048 (mqtt_max_packet_bytes)");
    // A reading still goes through.
    const good = await connectMqtt(server.mqttPort);
    await publishAcked(good, readingTopic("aht20-after5"), legacyPayload(21, 40, TS));
    await endMqtt(good);
  });
});
