// Ingest benchmark: TechTemp (storing every QoS 1 reading durably before its
// PUBACK) beside Mosquitto (broker only, storing nothing), driven by the same
// load generator in the same run; then bytes per stored reading at 1 M
// readings, beside the earlier server's schema holding the same readings.
//
//   bun bench/ingest.ts            (BENCH_SECONDS=10 BENCH_CLIENTS=20 BENCH_WINDOW=10)

import { freePort, spawnServer } from "../test/helpers.ts";
import { memory } from "./proc.ts";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB_FILE, openDatabase } from "../lib/server/store/db.ts";
import { createStore, type IncomingReading } from "../lib/server/store/store.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";

// Settings come from the environment; the command line takes nothing.
commandLine("bun bench/ingest.ts   (BENCH_SECONDS=10 BENCH_CLIENTS=20 BENCH_WINDOW=10)", (args) => parseCommandLine(args, {}));

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 20);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 10);
const STORAGE_READINGS = Number(process.env.BENCH_STORAGE_READINGS ?? 1_000_000);

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
}

async function load(port: number): Promise<LoadResult> {
  const proc = Bun.spawn(
    ["bun", join(import.meta.dir, "ingest-load.ts"), String(port), String(SECONDS), String(CLIENTS), String(WINDOW)],
    {
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  return JSON.parse(out.trim().split("\n").pop()!);
}

async function benchTechTemp(dir: string) {
  const server = await spawnServer(dir, { TECHTEMP_LOG_LEVEL: "info" });
  const proc = server.proc;
  await Bun.sleep(2000);
  const idle = memory(proc.pid).rss;
  const stop = samplePeak(proc.pid);
  const result = await load(server.mqttPort);
  const peak = stop();
  const stats = await (await fetch(`${server.url}/api/v1/stats`)).json();
  await server.stop();
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  const stored = (db.query("SELECT count(*) AS n FROM readings").get() as { n: number }).n;
  db.close();
  return { ...result, idle, peak, stored, batches: stats.data.ingest.batches, largestBatch: stats.data.ingest.largestBatch };
}

async function benchMosquitto(dir: string) {
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
  const result = await load(port);
  const peak = stop();
  proc.kill("SIGTERM");
  await proc.exited;
  return { ...result, idle, peak };
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

const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : "-");

const dir = mkdtempSync(join(tmpdir(), "techtemp-bench-ingest-"));
try {
  console.log(`Ingest: ${CLIENTS} clients × ${WINDOW} QoS 1 readings in flight each, ${SECONDS} s, same load generator for both`);
  const ours = await benchTechTemp(join(dir, "server"));
  const mosq = await benchMosquitto(dir);
  const rows = [
    ["", "readings/s", "p50 ms", "p99 ms", "idle RSS MB", "peak RSS MB"],
    ["TechTemp (stored, fsync)", fmt(ours.rate), fmt(ours.p50, 2), fmt(ours.p99, 2), fmt(ours.idle, 1), fmt(ours.peak, 1)],
    ["Mosquitto (stores nothing)", fmt(mosq.rate), fmt(mosq.p50, 2), fmt(mosq.p99, 2), fmt(mosq.idle, 1), fmt(mosq.peak, 1)],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log("  " + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
  console.log(`  TechTemp / Mosquitto rate: ${(ours.rate / mosq.rate).toFixed(2)}× (goal ≥ 0.7×)`);
  console.log(
    `  stored ${ours.stored} readings (acknowledged during the measured window: ${ours.acked}); ${ours.batches} commits, largest batch ${ours.largestBatch}`,
  );

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
