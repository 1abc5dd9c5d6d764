// The agent's own MQTT client (lib/sensor/mqtt-client.ts): against the real
// server and mosquitto_sub, and against brokers that answer wrong (a TCP
// listener here sends the bytes): every bad answer ends the connection with an
// error that says what was wrong, and nothing throws.

import { describe, expect, test } from "bun:test";
import { connectMqtt, connectPacket, MAX_INCOMING_BYTES, readPackets, type MqttClient } from "../lib/sensor/mqtt-client.ts";
import { deferAfterEach, run, startServer, waitFor, withTimeout, type TestServer } from "./helpers.ts";
import { spawnWithLines, type LineProcess } from "./sensor-helpers.ts";

const defer = deferAfterEach();

/** A client's events, recorded. */
function recorder() {
  const seen = { connected: 0, closed: 0, errors: [] as { message: string; code?: string | number }[], messages: [] as string[] };
  return {
    seen,
    events: {
      connect: () => void seen.connected++,
      close: () => void seen.closed++,
      error: (err: { message: string; code?: string | number }) =>
        void seen.errors.push({ message: err.message, code: err.code }),
      message: (topic: string, payload: Buffer, retained: boolean) =>
        void seen.messages.push(`${topic} ${payload.toString()}${retained ? " (retained)" : ""}`),
    },
  };
}

const base = {
  host: "127.0.0.1",
  tls: null,
  clientId: "techtemp-test-client",
  keepaliveS: 60,
  clean: true,
  connectTimeoutMs: 5000,
};

describe("against the real server", () => {
  let server: TestServer;
  const login = () => ({ username: server.mosquittoLogin[1], password: server.mosquittoLogin[3] });
  const will = { topic: "home/test/status", payload: "offline", qos: 1 as const, retain: false };

  /** mosquitto_sub on home/test/#, once it is subscribed (a probe published by `c` came through). */
  async function watcher(c: MqttClient): Promise<LineProcess> {
    const sub = spawnWithLines([
      "mosquitto_sub",
      "-h",
      "127.0.0.1",
      "-p",
      String(server.mqttPort),
      ...server.mosquittoLogin,
      "-t",
      "home/test/#",
      "-v",
    ]);
    defer(() => sub.kill("SIGTERM"));
    await waitFor(
      () => {
        c.publish("home/test/probe", "p", { qos: 0 });
        return sub.lines.some((l) => l.startsWith("home/test/probe"));
      },
      10_000,
      "mosquitto_sub to subscribe",
    );
    return sub;
  }

  /** mosquitto_pub at QoS 1 to the server; `extra` adds its options (-r). */
  async function mosquittoPub(topic: string, message: string, ...extra: string[]): Promise<void> {
    const args = ["-h", "127.0.0.1", "-p", String(server.mqttPort), ...server.mosquittoLogin, "-q", "1"];
    const pub = await run(["mosquitto_pub", ...args, "-t", topic, "-m", message, ...extra]);
    expect(pub.code).toBe(0);
  }

  /** Publishes a marker from mosquitto_pub and waits for the watcher to see it: what came before it has come. */
  async function marker(sub: LineProcess): Promise<void> {
    await mosquittoPub("home/test/marker", "m");
    await sub.waitForLine(/^home\/test\/marker m$/, 5000);
  }

  test("publishes at QoS 1 (the callback on the PUBACK), gets its retained config, and ends cleanly without its will", async () => {
    server = await startServer();
    defer(() => server.stop());
    await mosquittoPub("home/test/config", '{"interval_s":5}', "-r");
    const r = recorder();
    const c = connectMqtt({ ...base, port: server.mqttPort, ...login(), will }, r.events);
    await waitFor(() => r.seen.connected === 1, 5000, "CONNACK");
    const sub = await watcher(c);
    const acked = new Promise<Error | undefined>((resolve) => c.publish("home/test/reading", "é 21.5", { qos: 1 }, resolve));
    expect(await withTimeout(acked, 5000, "PUBACK")).toBeUndefined();
    await sub.waitForLine(/^home\/test\/reading é 21\.5$/, 5000);
    const subscribed = new Promise<Error | undefined>((resolve) => c.subscribe("home/test/config", { qos: 1 }, resolve));
    expect(await withTimeout(subscribed, 5000, "SUBACK")).toBeUndefined();
    await waitFor(() => r.seen.messages.length === 1, 5000, "the retained config");
    expect(r.seen.messages).toEqual(['home/test/config {"interval_s":5} (retained)']);
    await withTimeout(new Promise<void>((resolve) => c.end(false, resolve)), 5000, "a clean end");
    expect(r.seen).toMatchObject({ connected: 1, closed: 1, errors: [] });
    // A clean DISCONNECT: the broker sends no will (a marker published after the end arrives, the will never did).
    await marker(sub);
    expect(sub.lines.filter((l) => l.startsWith("home/test/status"))).toEqual([]);
  });

  test("a connection dropped without DISCONNECT sends the will; waiting callbacks get an error", async () => {
    server = await startServer();
    defer(() => server.stop());
    const r = recorder();
    const c = connectMqtt({ ...base, port: server.mqttPort, ...login(), will }, r.events);
    await waitFor(() => r.seen.connected === 1, 5000, "CONNACK");
    const sub = await watcher(c);
    let late: Error | undefined;
    c.publish("home/test/reading", "1", { qos: 1 }, (err) => (late = err));
    c.end(true);
    await sub.waitForLine(/^home\/test\/status offline$/, 5000);
    expect(late?.message).toContain("closed before the broker answered");
    // Published after the end: refused at once, not lost silently.
    let refused: Error | undefined;
    c.publish("home/test/reading", "2", { qos: 1 }, (err) => (refused = err));
    expect(refused?.message).toContain("closed");
  });

  test("a wrong password is refused with CONNACK code 5 and MQTT.js's words", async () => {
    server = await startServer();
    defer(() => server.stop());
    const r = recorder();
    connectMqtt({ ...base, port: server.mqttPort, username: login().username, password: "wrong" }, r.events);
    await waitFor(() => r.seen.closed === 1, 5000, "the refusal");
    expect(r.seen.connected).toBe(0);
    expect(r.seen.errors).toEqual([{ message: "Connection refused: Not authorized", code: 5 }]);
  });
});

/** A TCP listener that answers a client's first bytes with `reply`, then does what `after` says. */
function fakeBroker(reply: (written: (bytes: number[] | Buffer) => void) => void): { port: number; got: Buffer[] } {
  const got: Buffer[] = [];
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, data) {
        const first = got.length === 0;
        got.push(Buffer.from(data));
        if (first) reply((bytes) => s.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)));
      },
    },
  });
  defer(() => listener.stop(true));
  return { port: listener.port, got };
}

describe("a broker that answers wrong", () => {
  async function outcome(reply: Parameters<typeof fakeBroker>[0], options: Partial<typeof base> = {}) {
    const broker = fakeBroker(reply);
    const r = recorder();
    connectMqtt({ ...base, ...options, port: broker.port }, r.events);
    await waitFor(() => r.seen.closed === 1, 10_000, "the connection to end");
    return { ...r.seen, got: Buffer.concat(broker.got) };
  }

  test("it receives a well-formed CONNECT: client id, clean session, keepalive, will, login", async () => {
    const o = {
      ...base,
      port: 1,
      username: "pi",
      password: "pw",
      will: { topic: "s", payload: "off", qos: 1 as const, retain: true },
    };
    const p = connectPacket(o);
    // Fixed header, "MQTT" level 4, flags: username, password, will retain, will QoS 1, will, clean session.
    expect([...p.subarray(0, 12)]).toEqual([
      0x10,
      p.length - 2,
      0,
      4,
      77,
      81,
      84,
      84,
      4,
      0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02,
      0,
      60,
    ]);
    expect(p.subarray(12).toString("latin1")).toBe("\x00\x14techtemp-test-client\x00\x01s\x00\x03off\x00\x02pi\x00\x02pw");
  });

  test("a refusal code MQTT does not define", async () => {
    const seen = await outcome((write) => write([0x20, 2, 0, 9]));
    expect(seen.errors).toEqual([{ message: "Connection refused: code 9", code: 9 }]);
  });

  test("a remaining length longer than 4 bytes", async () => {
    const seen = await outcome((write) => write([0x20, 2, 0, 0, 0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(seen.connected).toBe(1);
    expect(seen.errors[0]!.message).toBe("malformed packet from the broker: its remaining length runs past 4 bytes");
  });

  test("a packet larger than the agent accepts", async () => {
    const seen = await outcome((write) => write([0x20, 2, 0, 0, 0x30, 0x80, 0x80, 0x08]));
    expect(seen.errors[0]!.message).toBe(
      `a packet of 131076 bytes from the broker is larger than the agent accepts (${MAX_INCOMING_BYTES})`,
    );
  });

  test("a packet type a client never receives, a QoS 2 message, a short PUBLISH", async () => {
    expect((await outcome((write) => write([0x20, 2, 0, 0, 0x10, 0]))).errors[0]!.message).toBe(
      "unexpected packet type 1 from the broker",
    );
    expect((await outcome((write) => write([0x20, 2, 0, 0, 0x34, 5, 0, 1, 116, 0, 1]))).errors[0]!.message).toContain("QoS 2");
    expect((await outcome((write) => write([0x20, 2, 0, 0, 0x30, 3, 0, 9, 116]))).errors[0]!.message).toBe(
      "malformed PUBLISH from the broker",
    );
  });

  test("no CONNACK in time, and no answer to a ping", async () => {
    expect((await outcome(() => {}, { connectTimeoutMs: 300 })).errors[0]!.message).toContain("connect timeout");
    const silent = await outcome((write) => write([0x20, 2, 0, 0]), { keepaliveS: 1 });
    expect(silent.connected).toBe(1);
    expect(silent.errors[0]!.message).toContain("Keepalive timeout");
    // It did ping (PINGREQ after the CONNECT) before giving up.
    expect([...silent.got.subarray(-2)]).toEqual([0xc0, 0]);
  });

  test("nothing listening: the socket's error, then close", async () => {
    const none = recorder();
    const c: MqttClient = connectMqtt({ ...base, port: 1 }, none.events);
    await waitFor(() => none.seen.closed === 1, 5000, "the refused connection");
    expect(none.seen.errors).toEqual([{ message: "connect ECONNREFUSED 127.0.0.1:1", code: "ECONNREFUSED" }]);
    c.end(true); // ending a closed client does nothing
    expect(none.seen.closed).toBe(1);
  });
});

test("packets split anywhere across reads come out whole", () => {
  const publish = Buffer.from([0x31, 10, 0, 3, 97, 47, 98, 104, 101, 108, 108, 111]); // retained "a/b" "hello"
  const stream = Buffer.concat([Buffer.from([0x20, 2, 0, 0]), publish, Buffer.from([0xd0, 0])]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const first = readPackets(stream.subarray(0, cut));
    const second = readPackets(Buffer.concat([first.rest, stream.subarray(cut)]));
    const all = [...first.packets, ...second.packets];
    expect(all.map((p) => p.type)).toEqual([2, 3, 13]);
    expect(all[1]!.body.subarray(5).toString()).toBe("hello");
    expect(second.rest.length).toBe(0);
    expect(first.error ?? second.error).toBeUndefined();
  }
});
