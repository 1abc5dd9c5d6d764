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
// - `--lean`: the sensor agent's own MQTT client (lib/sensor/mqtt-client.ts,
//   over Bun.connect), one write per PUBLISH as MQTT.js does, so a broker
//   reads the same packets either way. A fraction of MQTT.js's CPU per
//   reading: it leaves the CPU to the broker under test.
//
//   bun bench/ingest-load.ts [--lean] PORT SECONDS CLIENTS WINDOW [LOGINS]

import mqtt from "mqtt";
import { readFileSync } from "node:fs";
import { connectMqtt as connectLean } from "../lib/sensor/mqtt-client.ts";
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
/** Every acknowledged reading, the warm-up's and the last in flight too: what the broker handled in all. */
let total = 0;
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
  total++;
  if (!running) return;
  acked++;
  latencies.push(performance.now() - sent);
}

/** What the load needs of a client: QoS 1 publishes with a callback on the PUBACK, and a clean end. */
interface Publisher {
  publish(topic: string, payload: string, options: { qos: 1 }, cb: (err?: Error) => void): void;
  end(): Promise<void>;
}

/** Client `i` connected with MQTT.js. */
async function mqttJs(i: number): Promise<Publisher> {
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
  return {
    publish: (topic, message, options, cb) => c.publish(topic, message, options, (err) => cb(err ?? undefined)),
    end: () => new Promise<void>((r) => c.end(false, {}, () => r())),
  };
}

/** Client `i` connected with the agent's own client (--lean). */
async function agentClient(i: number): Promise<Publisher> {
  const { login, uid } = device(i);
  let c!: ReturnType<typeof connectLean>;
  await new Promise<void>((resolve, reject) => {
    c = connectLean(
      {
        host: "127.0.0.1",
        port,
        tls: null,
        clientId: `techtemp-${uid}`,
        username: login?.username,
        password: login?.password,
        keepaliveS: 60,
        clean: true,
        connectTimeoutMs: 10_000,
      },
      { connect: resolve, message() {}, error: reject, close() {} },
    );
  });
  return {
    publish: (topic, message, options, cb) => c.publish(topic, message, options, cb),
    end: () => new Promise((r) => c.end(false, r)),
  };
}

/** One client keeping `window` readings in flight until the run ends. */
async function client(i: number): Promise<void> {
  const c = await (lean ? agentClient(i) : mqttJs(i));
  const topic = `home/bench/sensors/${device(i).uid}/reading`;
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
  await c.end();
}

const all = Array.from({ length: clients }, (_, i) => client(i));
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
console.log(JSON.stringify({ acked: counted, failed, rate: counted / elapsed, p50: pct(50), p99: pct(99), elapsed, cpu, total }));
process.exit(0);
