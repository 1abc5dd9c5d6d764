// Load generator for bench/ingest.ts, run as its own process so it does not
// share a CPU budget with the broker under test. Many clients publish QoS 1
// readings on the contract topic, each keeping `window` in flight, for a
// fixed time; prints one JSON line with the acknowledged rate and latencies.
// Each client is a sensor: with LOGINS (a JSON file of {username, password},
// one per client) it connects as that device and publishes on its own topic.
//
//   bun bench/ingest-load.ts PORT SECONDS CLIENTS WINDOW [LOGINS]

import mqtt from "mqtt";
import { readFileSync } from "node:fs";
import { commandLine, parseCommandLine, UsageError } from "../scripts/cli.ts";

const [port, seconds, clients, window, logins] = commandLine(
  "bun bench/ingest-load.ts PORT SECONDS CLIENTS WINDOW [LOGINS]",
  (args) => {
    const positionals = parseCommandLine(args, {}, true).positionals;
    const numbers = positionals.slice(0, 4).map(Number);
    if (numbers.length !== 4 || !numbers.every((n) => n > 0) || positionals.length > 5)
      throw new UsageError("four positive numbers are needed, then optionally the logins file");
    const file = positionals[4];
    const list = file ? (JSON.parse(readFileSync(file, "utf8")) as { username: string; password: string }[]) : null;
    if (list && list.length < numbers[2]!) throw new UsageError(`${file} has ${list.length} logins for ${numbers[2]} clients`);
    return [...(numbers as [number, number, number, number]), list] as const;
  },
);

const latencies: number[] = [];
let acked = 0;
let failed = 0;
let running = true;
const base = Date.now() - 86_400_000;

async function client(i: number): Promise<void> {
  const login = logins?.[i];
  const uid = login?.username ?? `bench-${String(i).padStart(4, "0")}`;
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
        // Distinct timestamps: every reading is new and must be stored.
        const payload = `{"temperature_c":${(20 + (seq % 100) / 10).toFixed(2)},"humidity_pct":45.50,"ts":${base + seq++ * 10}}`;
        const sent = performance.now();
        c.publish(topic, payload, { qos: 1 }, (err) => {
          inflight--;
          if (err) failed++;
          else if (running) {
            acked++;
            latencies.push(performance.now() - sent);
          }
          if (!running && inflight === 0) done();
          else pump();
        });
      }
    };
    pump();
  });
  await new Promise<void>((r) => c.end(false, {}, () => r()));
}

const all = Array.from({ length: clients }, (_, i) => client(i));
// Warm up for a second before counting.
await Bun.sleep(1000);
acked = 0;
latencies.length = 0;
const started = performance.now();
await Bun.sleep(seconds * 1000);
running = false;
const elapsed = (performance.now() - started) / 1000;
const counted = acked;
await Promise.race([Promise.all(all), Bun.sleep(10_000)]);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
console.log(JSON.stringify({ acked: counted, failed, rate: counted / elapsed, p50: pct(50), p99: pct(99), elapsed }));
process.exit(0);
