// Backup benchmark: the 10.5 M-reading database of bench/history.ts (10
// devices × 2 years of 1-minute readings, generated once by that benchmark),
// served by a real server process. Measures, in one run:
//   - a backup alone (the paced copy on the server's worker thread, then
//     integrity_check of the copy): duration and size;
//   - ingestion while a backup runs: MQTT clients keep one QoS 1 reading
//     each in flight for the whole run, and every PUBACK's latency is
//     recorded. The run alternates windows without a backup (the reference,
//     as long as the backup before it) and windows with one, `--rounds`
//     times, so both see the same load of the shared machine; each ack
//     counts in the window it was sent in. The p50, p99 and max of each kind;
//   - a page's wait meanwhile: GET /health every 20 ms, by window.
//
//   bun bench/backup.ts [--clients 10] [--rounds 3]
//   (BENCH_HISTORY_DIR=/tmp/techtemp-bench-history; made by bun bench/history.ts when missing)

import { Database } from "bun:sqlite";
import mqtt from "mqtt";
import { copyFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { DB_FILE } from "../lib/server/store/db.ts";
import { run, spawnServer, tempDir } from "../test/helpers.ts";
import { commandLine, parseCommandLine, positiveNumber } from "../scripts/cli.ts";

const options = commandLine("bun bench/backup.ts [--clients N] [--rounds N]", (args) => {
  const { values } = parseCommandLine(args, { clients: { type: "string" }, rounds: { type: "string" } });
  return { clients: positiveNumber("clients", values.clients, 10), rounds: positiveNumber("rounds", values.rounds, 3) };
});

const SOURCE_DIR = process.env.BENCH_HISTORY_DIR ?? "/tmp/techtemp-bench-history";
const SOURCE = join(SOURCE_DIR, DB_FILE);
const root = join(import.meta.dir, "..");

/** Whether bench/history.ts finished generating its database. */
function generated(): boolean {
  if (!existsSync(SOURCE)) return false;
  const db = new Database(SOURCE, { readonly: true });
  try {
    return db.query("SELECT value FROM history_meta WHERE key = 'bench_end'").get() !== null;
  } catch {
    return false;
  } finally {
    db.close();
  }
}

if (!generated()) {
  console.log("the 10.5 M-reading database is missing: running bun bench/history.ts once to make it (several minutes)…");
  const made = Bun.spawn(["bun", join(import.meta.dir, "history.ts")], { stdout: "inherit", stderr: "inherit" });
  if ((await made.exited) !== 0) process.exit(1);
}

// A copy: the server adds its tables and the WAL to it; the generated database stays as it is.
const dir = tempDir("techtemp-bench-backup-");
process.on("exit", () => dir.cleanup());
const source = new Database(SOURCE);
source.exec("PRAGMA wal_checkpoint(TRUNCATE)");
source.close();
copyFileSync(SOURCE, join(dir.path, DB_FILE));
const env = { TECHTEMP_BACKUP_TIME: "off", TECHTEMP_LOG_LEVEL: "info", TECHTEMP_RETENTION_RAW_DAYS: "0" };
const cli = (args: string[]) =>
  run(["bun", "server.ts", ...args], {
    cwd: root,
    env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: dir.path, TECHTEMP_HTTP_PORT: "0", TECHTEMP_MQTT_PORT: "0", ...env },
  });
const token = (await cli(["token", "create", "bench", "--scope", "write"])).stdout.trim();
const server = await spawnServer(dir.path, env);
process.on("exit", () => server.proc.kill("SIGKILL"));
const api = async (path: string, method = "GET") =>
  (await fetch(server.url + path, { method, headers: { authorization: `Bearer ${token}` } })).json() as Promise<{ data: any }>;

/** Starts a backup through the API and resolves when it is recorded: its record and when it started and ended here. */
async function backup(): Promise<{ record: any; from: number; to: number }> {
  const before = (await api("/api/v1/backups")).data.last?.id ?? 0;
  const from = performance.now();
  await api("/api/v1/backups", "POST");
  // Polled: the record appears when the backup ends (bounded: 10 minutes is far beyond any backup here).
  while (performance.now() - from < 600_000) {
    await Bun.sleep(100);
    const last = (await api("/api/v1/backups")).data.last;
    if (last && last.id !== before) return { record: last, from, to: performance.now() };
  }
  throw new Error("no backup recorded after 10 minutes");
}

/** Keeps `clients` readings in flight (one per client) until `stop()`; records each ack's latency and when it was sent. */
async function load(clients: number) {
  const acks: { at: number; ms: number }[] = [];
  let running = true;
  const done = Array.from({ length: clients }, async (_, i) => {
    const uid = `bench-backup-${String(i).padStart(3, "0")}`;
    const c = mqtt.connect({
      host: "127.0.0.1",
      port: server.mqttPort,
      clientId: `techtemp-${uid}`,
      // The server's write token (spawnServer made it): it may publish any device's readings.
      ...server.token,
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    await new Promise<void>((resolve, reject) => (c.once("connect", () => resolve()), c.once("error", reject)));
    let seq = 0;
    const base = Date.now() - 86_400_000;
    while (running) {
      const sent = performance.now();
      await c.publishAsync(
        `home/bench/sensors/${uid}/reading`,
        `{"temperature_c":21.50,"humidity_pct":45.50,"ts":${base + seq++ * 10}}`,
        {
          qos: 1,
        },
      );
      acks.push({ at: sent, ms: performance.now() - sent });
    }
    await c.endAsync();
  });
  return {
    acks,
    async stop() {
      running = false;
      await Promise.all(done);
    },
  };
}

const stats = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  const pct = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
  return { n: s.length, p50: pct(50), p99: pct(99), max: s[s.length - 1] ?? NaN };
};
const f = (v: number) => v.toFixed(2);

const size = statSync(join(dir.path, DB_FILE)).size;
console.log(`database: ${(size / 1e6).toFixed(0)} MB; load: ${options.clients} MQTT clients, one QoS 1 reading each in flight`);

// 1. A backup alone.
const alone = await backup();
console.log(
  `backup alone: ${(alone.record.duration_ms / 1000).toFixed(1)} s (copy and integrity_check), ${(alone.record.size_bytes / 1e6).toFixed(0)} MB, ${alone.record.error ?? alone.record.integrity}`,
);

/** GET /health every 20 ms until `stop()`: how long a page waits for the server (its event loop) meanwhile. */
function probeHttp() {
  const answers: { at: number; ms: number }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const at = performance.now();
      await fetch(`${server.url}/health`).then((r) => r.arrayBuffer());
      answers.push({ at, ms: performance.now() - at });
      await Bun.sleep(20);
    }
  })();
  return {
    answers,
    async stop() {
      running = false;
      await done;
    },
  };
}

// 2. One load for the rest of the run; reference windows and backup windows alternate.
const busy = await load(options.clients);
const pages = probeHttp();
await Bun.sleep(1000);
const refWindows: [number, number][] = [];
const backupWindows: [number, number][] = [];
const durations: number[] = [];
let last = alone.record.duration_ms as number;
for (let round = 0; round < options.rounds; round++) {
  const from = performance.now();
  await Bun.sleep(Math.max(2000, last));
  refWindows.push([from, performance.now()]);
  const during = await backup();
  if (during.record.error) throw new Error(`the backup failed: ${during.record.error}`);
  backupWindows.push([during.from, during.to]);
  durations.push(during.record.duration_ms);
  last = during.record.duration_ms;
}
await busy.stop();
await pages.stop();
const inside = (windows: [number, number][], samples = busy.acks) =>
  samples.filter((a) => windows.some(([from, to]) => a.at >= from && a.at < to)).map((a) => a.ms);
const seconds = (windows: [number, number][]) => windows.reduce((t, [from, to]) => t + (to - from), 0) / 1000;
const withBackup = stats(inside(backupWindows));
const without = stats(inside(refWindows));

console.log(
  `backups under load: ${durations.map((d) => (d / 1000).toFixed(1)).join(", ")} s; ${options.rounds} windows of each kind, alternating`,
);
console.log("\n| ingest ack latency (ms) | acks | acks/s | p50 | p99 | max |");
console.log("|---|---|---|---|---|---|");
console.log(
  `| during a backup (${seconds(backupWindows).toFixed(1)} s in all) | ${withBackup.n} | ${(withBackup.n / seconds(backupWindows)).toFixed(0)} | ${f(withBackup.p50)} | ${f(withBackup.p99)} | ${f(withBackup.max)} |`,
);
console.log(
  `| same load, no backup (reference, ${seconds(refWindows).toFixed(1)} s in all) | ${without.n} | ${(without.n / seconds(refWindows)).toFixed(0)} | ${f(without.p50)} | ${f(without.p99)} | ${f(without.max)} |`,
);
console.log(`\np99 ratio ${(withBackup.p99 / without.p99).toFixed(2)}×, p50 ratio ${(withBackup.p50 / without.p50).toFixed(2)}×`);
const httpWith = stats(inside(backupWindows, pages.answers));
const httpWithout = stats(inside(refWindows, pages.answers));
console.log("\n| GET /health every 20 ms (ms) | answers | p50 | p99 | max |");
console.log("|---|---|---|---|---|");
console.log(`| during a backup | ${httpWith.n} | ${f(httpWith.p50)} | ${f(httpWith.p99)} | ${f(httpWith.max)} |`);
console.log(`| no backup | ${httpWithout.n} | ${f(httpWithout.p50)} | ${f(httpWithout.p99)} | ${f(httpWithout.max)} |`);
await server.stop();
process.exit(0);
