// Load generator for bench/ingest.ts, run as its own process so it does not
// share a CPU budget with the broker under test. Many clients publish QoS 1
// readings on the contract topic, each keeping `window` in flight, for a
// fixed time; prints one JSON line with the acknowledged rate, latencies and
// its own CPU time. Each client is a sensor: with LOGINS (a JSON file of
// {username, password}, one per client) it connects as that device and
// publishes on its own topic.
//
// Two clients, the same load:
// - MQTT.js (default), what makers' programs use. On the 2-core machine it
//   takes most of a core itself, so with a fast broker it is the generator
//   that sets the pace (bench/ingest.ts prints its CPU beside the broker's).
// - `--lean`: MQTT 3.1.1 written by hand over Bun.connect (CONNECT, PUBLISH
//   QoS 1, PUBACK, DISCONNECT; nothing else is sent or expected), one write
//   per PUBLISH as MQTT.js does, so a broker reads the same packets either
//   way. A fraction of MQTT.js's CPU per reading: it leaves the CPU to the
//   broker under test.
//
//   bun bench/ingest-load.ts [--lean] PORT SECONDS CLIENTS WINDOW [LOGINS]

import mqtt from "mqtt";
import { readFileSync } from "node:fs";
import { commandLine, parseCommandLine, UsageError } from "../scripts/cli.ts";

const [port, seconds, clients, window, logins, lean] = commandLine(
  "bun bench/ingest-load.ts [--lean] PORT SECONDS CLIENTS WINDOW [LOGINS]",
  (args) => {
    const { values, positionals } = parseCommandLine(args, { lean: { type: "boolean" } }, true);
    const numbers = positionals.slice(0, 4).map(Number);
    if (numbers.length !== 4 || !numbers.every((n) => n > 0) || positionals.length > 5)
      throw new UsageError("four positive numbers are needed, then optionally the logins file");
    const file = positionals[4];
    const list = file ? (JSON.parse(readFileSync(file, "utf8")) as { username: string; password: string }[]) : null;
    if (list && list.length < numbers[2]!) throw new UsageError(`${file} has ${list.length} logins for ${numbers[2]} clients`);
    return [...(numbers as [number, number, number, number]), list, values.lean === true] as const;
  },
);

const latencies: number[] = [];
let acked = 0;
let failed = 0;
let running = true;
const base = Date.now() - 86_400_000;

/** Client `i`'s device and login. */
function device(i: number) {
  const login = logins?.[i];
  return { login, uid: login?.username ?? `bench-${String(i).padStart(4, "0")}` };
}

/** The `seq`th reading's payload: distinct timestamps, so every reading is new and must be stored. */
const payload = (seq: number) =>
  `{"temperature_c":${(20 + (seq % 100) / 10).toFixed(2)},"humidity_pct":45.50,"ts":${base + seq * 10}}`;

/** Counts an acknowledged reading sent at `sent` (performance.now()). */
function acknowledged(sent: number): void {
  if (!running) return;
  acked++;
  latencies.push(performance.now() - sent);
}

/** One MQTT.js client. */
async function mqttJsClient(i: number): Promise<void> {
  const { login, uid } = device(i);
  const c = mqtt.connect({
    host: "127.0.0.1",
    port,
    clientId: `techtemp-${uid}`,
    username: login?.username,
    password: login?.password,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
  });
  const topic = `home/bench/sensors/${uid}/reading`;
  let seq = 0;
  await new Promise<void>((done) => {
    let inflight = 0;
    const pump = () => {
      while (running && inflight < window) {
        inflight++;
        const sent = performance.now();
        c.publish(topic, payload(seq++), { qos: 1 }, (err) => {
          inflight--;
          if (err) failed++;
          else acknowledged(sent);
          if (!running && inflight === 0) done();
          else pump();
        });
      }
    };
    pump();
  });
  await new Promise<void>((r) => c.end(false, {}, () => r()));
}

const encoder = new TextEncoder();
/** An MQTT string: 2-byte length, UTF-8 bytes. */
const mqttString = (s: string) => {
  const b = encoder.encode(s);
  return [b.length >> 8, b.length & 255, ...b];
};
/** An MQTT remaining length. */
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    const digit = n % 128;
    n = Math.floor(n / 128);
    out.push(n > 0 ? digit | 128 : digit);
  } while (n > 0);
  return out;
}
/** A whole packet: type and flags byte, remaining length, body. */
const packet = (first: number, body: number[]) => new Uint8Array([first, ...varint(body.length), ...body]);

/** One hand-written MQTT 3.1.1 client (--lean): keeps its window of PUBLISHes in flight, counts PUBACKs by packet id. */
async function leanClient(i: number): Promise<void> {
  const { login, uid } = device(i);
  const topic = mqttString(`home/bench/sensors/${uid}/reading`);
  /** When each packet id in flight was sent. */
  const sentAt = new Float64Array(65536);
  let seq = 0;
  let nextId = 1;
  let inflight = 0;
  let pending: Uint8Array = new Uint8Array(0);
  let connected!: () => void;
  let refused!: (err: Error) => void;
  let ended!: () => void;
  const ready = new Promise<void>((resolve, reject) => ((connected = resolve), (refused = reject)));
  const done = new Promise<void>((resolve) => (ended = resolve));
  const pump = (socket: { write(data: Uint8Array): number }) => {
    const packets: Uint8Array[] = [];
    while (running && inflight < window) {
      inflight++;
      const id = nextId;
      nextId = nextId === 65535 ? 1 : nextId + 1;
      const message = encoder.encode(payload(seq++));
      const head = [0x32, ...varint(topic.length + 2 + message.length), ...topic, id >> 8, id & 255];
      const publish = new Uint8Array(head.length + message.length);
      publish.set(head);
      publish.set(message, head.length);
      packets.push(publish);
      sentAt[id] = performance.now();
    }
    // One write per PUBLISH, as MQTT.js sends them: a broker reads the same packets per read from either generator.
    for (const p of packets) socket.write(p);
    if (!running && inflight === 0) ended();
  };
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(s, chunk) {
        const b = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
        let at = 0;
        // Every packet a broker sends this client (CONNACK, PUBACK) has a one-byte remaining length.
        while (b.length - at >= 2 && b.length - at >= 2 + b[at + 1]!) {
          const type = b[at]! >> 4;
          if (type === 2) {
            if (b[at + 3] === 0) connected();
            else refused(new Error(`${uid}: CONNACK return code ${b[at + 3]}`));
          } else if (type === 4) {
            inflight--;
            acknowledged(sentAt[(b[at + 2]! << 8) | b[at + 3]!]!);
          }
          at += 2 + b[at + 1]!;
        }
        pending = b.subarray(at);
        pump(s);
      },
      close() {
        if (running) failed += inflight;
        refused(new Error(`${uid}: connection closed`));
        ended();
      },
      error() {},
    },
  });
  const flags = 0x02 | (login ? 0xc0 : 0); // clean session, username and password
  socket.write(
    packet(0x10, [
      ...mqttString("MQTT"),
      4,
      flags,
      0,
      60,
      ...mqttString(`techtemp-${uid}`),
      ...(login ? [...mqttString(login.username), ...mqttString(login.password)] : []),
    ]),
  );
  await ready;
  pump(socket);
  await done;
  socket.write(packet(0xe0, []));
  socket.end();
}

const all = Array.from({ length: clients }, (_, i) => (lean ? leanClient(i) : mqttJsClient(i)));
// Warm up for a second before counting.
await Bun.sleep(1000);
acked = 0;
latencies.length = 0;
const started = performance.now();
const cpuBefore = process.cpuUsage();
await Bun.sleep(seconds * 1000);
running = false;
const elapsed = (performance.now() - started) / 1000;
const counted = acked;
const used = process.cpuUsage(cpuBefore);
/** The generator's own CPU per second of the measured window (1 = a whole core). */
const cpu = (used.user + used.system) / 1e6 / elapsed;
await Promise.race([Promise.all(all), Bun.sleep(10_000)]);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
console.log(JSON.stringify({ acked: counted, failed, rate: counted / elapsed, p50: pct(50), p99: pct(99), elapsed, cpu }));
process.exit(0);
