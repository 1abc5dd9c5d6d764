// Ingest benchmark: TechTemp (storing every QoS 1 reading durably before its
// PUBACK) with MQTT authentication and the ACL on, as it runs, beside the
// same server with them off (the cost of checking who may publish what), and
// beside Mosquitto (broker only, storing nothing), in alternating rounds,
// each driven by the same load generator, whose clients log in as sensors
// with their own secrets. Two generators (bench/ingest-load.ts): MQTT.js,
// which on a 2-core machine takes most of a core itself, and a lean
// client (the sensor agent's own) that leaves the CPU to the broker; the generator's own
// CPU is printed beside the rates, so it shows which side set the pace. Then
// bytes per stored reading at 1 M readings, beside the earlier server's
// schema holding the same readings.
//
// Then the same load on a slow card (every -wal sync made BENCH_SLOW_CARD_MS
// longer below the server): syncing inside COMMIT as before issue 17 beside
// syncing off the event loop.
//
//   bun bench/ingest.ts   (BENCH_SECONDS=10 BENCH_CLIENTS=20 BENCH_WINDOW=10 BENCH_ROUNDS=2 BENCH_SLOW_CARD_MS=10)

import { freePort, waitFor, withTimeout } from "../test/helpers.ts";
import { enrollSensors, writeLogins } from "./enroll.ts";
import { cpuSeconds, memory } from "./proc.ts";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB_FILE, openDatabase } from "../lib/server/store/db.ts";
import { createStore, openStore, type IncomingReading } from "../lib/server/store/store.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";
import { buildSlowFsync } from "../test/fixtures/slow-fsync/build.ts";

// Settings come from the environment; the command line takes nothing.
commandLine(
  "bun bench/ingest.ts   (BENCH_SECONDS=10 BENCH_CLIENTS=20 BENCH_WINDOW=10 BENCH_ROUNDS=2 BENCH_SLOW_CARD_MS=10)",
  (args) => parseCommandLine(args, {}),
);

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 20);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 10);
const STORAGE_READINGS = Number(process.env.BENCH_STORAGE_READINGS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
/** How much longer each -wal sync takes in the slow-card runs (ms): an SD card's sync. */
const SLOW_CARD_MS = Number(process.env.BENCH_SLOW_CARD_MS ?? 10);

/** Samples a process's RSS every 100 ms until stopped; returns the peak. */
function samplePeak(pid: number) {
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, memory(pid).rss || 0)), 100);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

interface LoadResult {
  acked: number;
  failed: number;
  rate: number;
  p50: number;
  p99: number;
  /** The generator's own CPU per second (1 = a whole core). */
  cpu: number;
  /** Every reading acknowledged, the warm-up's and the last in flight too. */
  total: number;
}

/** Which load generator drives a run (bench/ingest-load.ts): MQTT.js, or the lean one (the sensor agent's own client). */
type Generator = "mqtt.js" | "lean";

async function load(port: number, logins: string, generator: Generator): Promise<LoadResult> {
  const proc = Bun.spawn(
    [
      "bun",
      join(import.meta.dir, "ingest-load.ts"),
      ...(generator === "lean" ? ["--lean"] : []),
      String(port),
      String(SECONDS),
      String(CLIENTS),
      String(WINDOW),
      logins,
    ],
    {
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  return JSON.parse(out.trim().split("\n").pop()!);
}

/**
 * Enrolls the load generator's clients in the database of `dir` (each a device
 * with its own secret, as install.sh sensor --enroll does) and writes their
 * logins to a file for it.
 */
function enrollClients(dir: string): string {
  const store = openStore(join(dir, DB_FILE));
  const logins = enrollSensors(store, CLIENTS);
  store.close();
  return writeLogins(join(dir, "logins.json"), logins);
}

/** How a bench server runs besides `open`: extra environment (a slow card below it), `before` (ingest-server.ts --before), the generator (MQTT.js by default). */
interface Variant {
  env?: Record<string, string>;
  before?: boolean;
  generator?: Generator;
}

/** bench/ingest-server.ts on `dir` (MQTT authentication and ACL off with `open`), started like `bun server.ts`. */
async function spawnBenchServer(dir: string, open: boolean, variant: Variant = {}) {
  const flags = [...(open ? ["--open"] : []), ...(variant.before ? ["--before"] : [])];
  const proc = Bun.spawn(["bun", join(import.meta.dir, "ingest-server.ts"), ...flags], {
    env: {
      ...process.env,
      TECHTEMP_CONFIG: "/dev/null",
      TECHTEMP_DATA_DIR: dir,
      TECHTEMP_HOST: "127.0.0.1",
      TECHTEMP_HTTP_PORT: "0",
      TECHTEMP_MQTT_PORT: "0",
      TECHTEMP_LOG_LEVEL: "info",
      ...variant.env,
    },
    stdout: "pipe",
    stderr: "inherit",
  });
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
  })();
  const match = (await waitFor(() => /server running http=(\d+) mqtt=(\d+)/.exec(out), 60_000, "the bench server to start"))!;
  return {
    proc,
    url: `http://127.0.0.1:${match[1]}`,
    mqttPort: Number(match[2]),
    async stop() {
      proc.kill("SIGTERM");
      await withTimeout(proc.exited, 15_000, "the bench server to stop");
    },
  };
}

async function benchTechTemp(dir: string, open: boolean, variant: Variant = {}) {
  mkdirSync(dir, { recursive: true });
  const logins = enrollClients(dir);
  const server = await spawnBenchServer(dir, open, variant);
  const proc = server.proc;
  await Bun.sleep(2000);
  const idle = memory(proc.pid).rss;
  const stop = samplePeak(proc.pid);
  const cpuBefore = cpuSeconds(proc.pid);
  // A page's view of the event loop meanwhile: GET /health every 20 ms, each answer's time.
  const http: number[] = [];
  let loading = true;
  const probe = (async () => {
    while (loading) {
      const t = performance.now();
      await fetch(`${server.url}/health`).then((r) => r.arrayBuffer());
      http.push(performance.now() - t);
      await Bun.sleep(20);
    }
  })();
  const result = await load(server.mqttPort, logins, variant.generator ?? "mqtt.js");
  loading = false;
  await probe;
  const cpu = cpuSeconds(proc.pid) - cpuBefore;
  const peak = stop();
  const stats = await (await fetch(`${server.url}/api/v1/stats`)).json();
  await server.stop();
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  const stored = (db.query("SELECT count(*) AS n FROM readings").get() as { n: number }).n;
  db.close();
  return {
    ...result,
    idle,
    peak,
    stored,
    // The server's CPU per stored reading: what checking costs, much less swayed by other load than the rate.
    cpuUs: (cpu / stored) * 1e6,
    batches: stats.data.ingest.batches,
    httpP50: quantile(http, 0.5),
    httpP99: quantile(http, 0.99),
    largestBatch: stats.data.ingest.largestBatch,
    refused: stats.data.broker.publishRefused + stats.data.broker.connectionsRefused,
  };
}

async function benchMosquitto(dir: string, logins: string, generator: Generator) {
  const port = freePort();
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n`);
  const proc = Bun.spawn(["mosquitto", "-c", conf], { stdout: "ignore", stderr: "inherit" });
  // Wait until it accepts connections.
  for (let i = 0; i < 100; i++) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
      (s) => (s.end(), true),
      () => false,
    );
    if (ok) break;
    await Bun.sleep(50);
  }
  const idle = memory(proc.pid).rss;
  const stop = samplePeak(proc.pid);
  const cpuBefore = cpuSeconds(proc.pid);
  const result = await load(port, logins, generator);
  const cpu = cpuSeconds(proc.pid) - cpuBefore;
  const peak = stop();
  proc.kill("SIGTERM");
  await proc.exited;
  // Its CPU per reading it acknowledged in all, warm-up included (as TechTemp's is per stored reading).
  return { ...result, idle, peak, cpuUs: (cpu / result.total) * 1e6 };
}

/** Bytes per reading at `n` readings: ours, and the earlier server's schema with the same data. */
function benchStorage(dir: string, n: number) {
  const devices = 10;
  const start = Date.parse("2025-01-01T00:00:00Z");
  const reading = (i: number) => ({
    device: `aht20-${String((i % devices) + 1).padStart(6, "0")}`,
    ts: start + Math.floor(i / devices) * 60_000 + (i % devices) * 137,
    t: 18 + ((i * 7) % 800) / 100,
    h: 40 + ((i * 13) % 2000) / 100,
  });

  // Ours, through the same store function ingestion uses, in group-commit sized batches.
  const oursPath = join(dir, "ours.db");
  const db = openDatabase(oursPath);
  db.exec("PRAGMA synchronous = OFF"); // generation speed only; the layout is the same
  const store = createStore(db);
  let batch: IncomingReading[] = [];
  for (let i = 0; i < n; i++) {
    const r = reading(i);
    batch.push({
      homeId: "home-001",
      deviceUid: r.device,
      reading: { temperature_c: r.t, humidity_pct: r.h, ts: r.ts },
      receivedAt: r.ts,
    });
    if (batch.length === 200) {
      store.insertReadings(batch);
      batch = [];
    }
  }
  if (batch.length) store.insertReadings(batch);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const tables = db
    .query<{ name: string; bytes: number }, []>("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC")
    .all();
  db.close();
  const ours = statSync(oursPath).size;

  // The earlier server: ISO text timestamps, REAL values, room_id, source, md5 msg_id and its indexes.
  const legacyPath = join(dir, "legacy.db");
  const legacy = new Database(legacyPath, { create: true });
  legacy.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;");
  legacy.exec(`
    CREATE TABLE readings_raw (device_id INTEGER NOT NULL, room_id INTEGER, ts DATETIME NOT NULL, temperature REAL, humidity REAL,
      source TEXT, msg_id TEXT, PRIMARY KEY (device_id, ts));
    CREATE INDEX idx_raw_room_ts ON readings_raw(room_id, ts);
    CREATE UNIQUE INDEX idx_raw_msg ON readings_raw(msg_id) WHERE msg_id IS NOT NULL;`);
  const insert = legacy.prepare("INSERT INTO readings_raw VALUES (?, ?, ?, ?, ?, 'mqtt', ?)");
  const fill = legacy.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const r = reading(i);
      const ts = new Date(r.ts).toISOString();
      const msgId = createHash("md5")
        .update(JSON.stringify({ deviceId: r.device, temperature: r.t, humidity: r.h, ts }))
        .digest("hex");
      insert.run((i % devices) + 1, (i % devices) + 1, ts, r.t, r.h, msgId);
    }
  });
  for (let i = 0; i < n; i += 10_000) fill(i, Math.min(n, i + 10_000));
  legacy.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  legacy.close();
  const earlier = statSync(legacyPath).size;
  return { ours: ours / n, earlier: earlier / n, tables };
}

function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : "-");

const dir = mkdtempSync(join(tmpdir(), "techtemp-bench-ingest-"));
try {
  console.log(
    `Ingest: ${CLIENTS} clients (each a sensor with its own secret) × ${WINDOW} QoS 1 readings in flight each, ${SECONDS} s, same load generator for all`,
  );
  type TechTempRun = Awaited<ReturnType<typeof benchTechTemp>>;
  type MosquittoRun = Awaited<ReturnType<typeof benchMosquitto>>;
  const on: TechTempRun[] = [];
  const off: TechTempRun[] = [];
  const mosq: MosquittoRun[] = [];
  const onLean: TechTempRun[] = [];
  const mosqLean: MosquittoRun[] = [];
  // Alternating rounds, each on a fresh database: the machine's load drifts, the pairs much less.
  for (let round = 0; round < ROUNDS; round++) {
    const logins = join(dir, `on-${round}`, "logins.json");
    const runs: (() => Promise<unknown>)[] = [
      async () => on.push(await benchTechTemp(join(dir, `on-${round}`), false)),
      async () => off.push(await benchTechTemp(join(dir, `off-${round}`), true)),
      async () => mosq.push(await benchMosquitto(dir, logins, "mqtt.js")),
      async () => onLean.push(await benchTechTemp(join(dir, `lean-${round}`), false, { generator: "lean" })),
      async () => mosqLean.push(await benchMosquitto(dir, logins, "lean")),
    ];
    // TechTemp on runs first (it enrolls the logins); then the order alternates, so no run always gets the quieter moment.
    await runs[0]!();
    for (const run of round % 2 === 0 ? runs.slice(1) : runs.slice(1).reverse()) await run();
    const [a, b, m, al, ml] = [on.at(-1)!, off.at(-1)!, mosq.at(-1)!, onLean.at(-1)!, mosqLean.at(-1)!];
    console.log(
      `  round ${round + 1}: MQTT.js: on ${fmt(a.rate)}/s (${a.cpuUs.toFixed(1)} µs CPU per reading), off ${fmt(b.rate)}/s (${b.cpuUs.toFixed(1)} µs), ` +
        `Mosquitto ${fmt(m.rate)}/s; lean: on ${fmt(al.rate)}/s, Mosquitto ${fmt(ml.rate)}/s`,
    );
  }
  const mean = (rs: Record<string, number>[], k: string = "rate") => rs.reduce((a, r) => a + r[k]!, 0) / rs.length;
  const row = (name: string, rs: (TechTempRun | MosquittoRun)[]) => {
    const runs = rs as unknown as Record<string, number>[];
    return [
      name,
      fmt(mean(runs)),
      fmt(mean(runs, "p50"), 2),
      fmt(mean(runs, "p99"), 2),
      fmt(mean(runs, "cpuUs"), 1),
      fmt(mean(runs, "cpu"), 2),
      fmt(mean(runs, "idle"), 1),
      fmt(mean(runs, "peak"), 1),
    ];
  };
  const table = (rows: string[][]) => {
    const all = [
      ["", "readings/s", "p50 ms", "p99 ms", "broker µs CPU/reading", "generator CPU (cores)", "idle RSS MB", "peak RSS MB"],
      ...rows,
    ];
    const widths = all[0]!.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
    for (const r of all)
      console.log("  " + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
  };
  /** TechTemp's rate over Mosquitto's, round by round (each pair ran minutes apart at most): the mean and the range. */
  const ratio = (ours: { rate: number }[], theirs: { rate: number }[]) => {
    const rs = ours.map((r, i) => r.rate / theirs[i]!.rate);
    return `${(rs.reduce((a, b) => a + b, 0) / rs.length).toFixed(2)}× (rounds: ${rs.map((r) => r.toFixed(2)).join(", ")})`;
  };
  console.log(`\n  Generator MQTT.js:`);
  table([
    row("TechTemp, auth + ACL on (stored, fsync)", on),
    row("TechTemp, auth + ACL off (reference)", off),
    row("Mosquitto (stores nothing)", mosq),
  ]);
  console.log(`\n  Generator lean (the sensor agent's own MQTT client, over Bun.connect):`);
  table([row("TechTemp, auth + ACL on (stored, fsync)", onLean), row("Mosquitto (stores nothing)", mosqLean)]);
  const best = (rs: { rate: number }[]) => Math.max(...rs.map((r) => r.rate));
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  console.log(
    `\n  auth + ACL on / off: ${(mean(on) / mean(off)).toFixed(2)}× mean rate, ${(best(on) / best(off)).toFixed(2)}× best rate (goal ≥ 0.9×), over ${ROUNDS} rounds each`,
  );
  const cpuOn = median(on.map((r) => r.cpuUs));
  const cpuOff = median(off.map((r) => r.cpuUs));
  console.log(
    `  server CPU per stored reading (median): on ${cpuOn.toFixed(1)} µs, off ${cpuOff.toFixed(1)} µs: the rate it allows, on / off ${(cpuOff / cpuOn).toFixed(2)}×`,
  );
  console.log(`  TechTemp (on) / Mosquitto rate, generator MQTT.js: ${ratio(on, mosq)}`);
  console.log(`  TechTemp (on) / Mosquitto rate, generator lean:    ${ratio(onLean, mosqLean)} (goal ≥ 0.9×)`);
  const last = on.at(-1)!;
  console.log(
    `  last round on: stored ${last.stored} readings (acknowledged during the measured window: ${last.acked}); ${last.batches} commits, largest batch ${last.largestBatch}; refused ${last.refused}`,
  );

  // A slow card (an SD card's sync takes milliseconds, this machine's ~0.2 ms): the same load with every
  // fsync of the -wal file made SLOW_CARD_MS longer below the server (test/fixtures/slow-fsync, preloaded),
  // syncing inside COMMIT on the event loop as before issue 17 (--before) beside syncing off the loop (now).
  const slowLib = await buildSlowFsync(dir).catch((err: Error) => {
    console.log(`\nSlow card: skipped, ${err.message} (install gcc)`);
    return null;
  });
  if (slowLib) {
    const env = { LD_PRELOAD: slowLib, SLOW_FSYNC_MS: String(SLOW_CARD_MS) };
    const slowBefore = await benchTechTemp(join(dir, "slow-before"), false, { env, before: true });
    const slowNow = await benchTechTemp(join(dir, "slow-now"), false, { env });
    console.log(`\nSlow card (each -wal sync ${SLOW_CARD_MS} ms longer), auth + ACL on, same load:`);
    const slowRows = [
      ["", "readings/s", "p50 ms", "p99 ms", "commits", "GET /health p50 ms", "p99 ms"],
      ...(
        [
          ["sync inside COMMIT, on the event loop (before)", slowBefore],
          ["sync off the event loop (now)", slowNow],
        ] as const
      ).map(([name, r]) => [
        name,
        fmt(r.rate),
        fmt(r.p50, 2),
        fmt(r.p99, 2),
        String(r.batches),
        fmt(r.httpP50, 2),
        fmt(r.httpP99, 2),
      ]),
    ];
    const w = slowRows[0]!.map((_, i) => Math.max(...slowRows.map((r) => r[i]!.length)));
    for (const r of slowRows) console.log("  " + r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  "));
    console.log(`  now / before: ${(slowNow.rate / slowBefore.rate).toFixed(2)}× the rate`);
  }

  console.log(`\nStorage at ${STORAGE_READINGS.toLocaleString("en")} readings (10 devices, 1-minute interval):`);
  const s = benchStorage(dir, STORAGE_READINGS);
  console.log(`  TechTemp        ${s.ours.toFixed(1)} bytes/reading (goal ≤ 24)`);
  console.log(`  earlier schema  ${s.earlier.toFixed(1)} bytes/reading (${(s.earlier / s.ours).toFixed(1)}× ours)`);
  console.log(
    `  ours by table: ${s.tables
      .filter((t) => t.bytes > 100_000)
      .map((t) => `${t.name} ${(t.bytes / 1e6).toFixed(1)} MB`)
      .join(", ")}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
