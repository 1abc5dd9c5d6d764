// Legacy import benchmark: `import-legacy` of an earlier TechTemp database
// the size of the test fixture (~1,800 readings) and of a real home's
// (10 devices, 1-minute readings for 180 days: 2.6 M readings), first into an
// empty database and then a second time (everything already here).
//
//   bun bench/legacy-import.ts     (BENCH_LEGACY_READINGS=2600000; BENCH_LEGACY_DIR=/tmp/techtemp-bench-legacy)
//
// The generated earlier databases are kept in BENCH_LEGACY_DIR and reused:
// generating the big one takes longer than importing it. Delete the folder to regenerate.

import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { runImportLegacy } from "../lib/server/ops/legacy-import.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";

// No options: its sizes come from the environment (above), so any argument is a mistake.
commandLine("bun bench/legacy-import.ts (sizes: BENCH_LEGACY_READINGS, BENCH_LEGACY_DIR)", (args) => parseCommandLine(args, {}));

const DIR = process.env.BENCH_LEGACY_DIR ?? "/tmp/techtemp-bench-legacy";
const BIG = Number(process.env.BENCH_LEGACY_READINGS ?? 2_600_000);
const SMALL = 1_800;
const DEVICES = 10;
const MIN = 60_000;
const START = Date.UTC(2025, 0, 1);

/** The earlier server's schema (its backend/db/index.js), with the indexes that make its file big. */
const LEGACY_SCHEMA = `
  CREATE TABLE rooms (id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT UNIQUE NOT NULL, name TEXT NOT NULL, floor TEXT, side TEXT);
  CREATE TABLE devices (id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT UNIQUE NOT NULL, label TEXT, model TEXT,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, last_seen_at DATETIME,
    offset_temperature REAL DEFAULT 0, offset_humidity REAL DEFAULT 0);
  CREATE TABLE device_room_placements (device_id INTEGER NOT NULL REFERENCES devices(id), room_id INTEGER NOT NULL REFERENCES rooms(id),
    from_ts DATETIME NOT NULL, to_ts DATETIME, PRIMARY KEY (device_id, from_ts));
  CREATE TABLE readings_raw (device_id INTEGER NOT NULL REFERENCES devices(id), room_id INTEGER, ts DATETIME NOT NULL,
    temperature REAL, humidity REAL, source TEXT, msg_id TEXT, PRIMARY KEY (device_id, ts));
  CREATE INDEX idx_raw_room_ts ON readings_raw(room_id, ts);
  CREATE UNIQUE INDEX idx_raw_msg ON readings_raw(msg_id) WHERE msg_id IS NOT NULL;`;

/**
 * Writes an earlier database of `n` readings (10 devices in 10 rooms, each
 * reporting every `n / 10` minutes in turn; each device moved once, halfway),
 * unless it exists already. Returns its path.
 */
function legacyDatabase(n: number): string {
  const path = join(DIR, `legacy-${n}.db`);
  if (existsSync(path)) return path;
  const db = new Database(path, { create: true });
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;");
  db.exec(LEGACY_SCHEMA);
  const perDevice = Math.ceil(n / DEVICES);
  const end = START + perDevice * MIN;
  const middle = new Date(START + Math.floor(perDevice / 2) * MIN).toISOString();
  db.transaction(() => {
    for (let d = 1; d <= DEVICES; d++) {
      db.query("INSERT INTO rooms (id, uid, name) VALUES (?, ?, ?)").run(d, `room-${d}`, `Room ${d}`);
      db.query("INSERT INTO devices (id, uid, label, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)").run(
        d,
        `aht20-${String(d).padStart(6, "0")}`,
        `sensor ${d}`,
        "2025-01-01 00:00:00",
        new Date(end).toISOString(),
      );
    }
    const place = db.query("INSERT INTO device_room_placements (device_id, room_id, from_ts, to_ts) VALUES (?, ?, ?, ?)");
    for (let d = 1; d <= DEVICES; d++) {
      place.run(d, d, new Date(START).toISOString(), middle);
      place.run(d, (d % DEVICES) + 1, middle, null);
    }
  })();
  const insert = db.prepare("INSERT INTO readings_raw VALUES (?, ?, ?, ?, ?, 'mqtt', ?)");
  const fill = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const device = (i % DEVICES) + 1;
      const ts = new Date(START + Math.floor(i / DEVICES) * MIN).toISOString();
      const t = 18 + ((i * 7) % 800) / 100;
      const h = 40 + ((i * 13) % 2000) / 100;
      const msgId = createHash("md5").update(`${device}${ts}${t}${h}`).digest("hex");
      insert.run(device, ts < middle ? device : (device % DEVICES) + 1, ts, t, h, msgId);
    }
  });
  for (let i = 0; i < n; i += 10_000) fill(i, Math.min(n, i + 10_000));
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return path;
}

/** Seconds of wall-clock and of CPU (user + system: less disturbed by other work on the machine) one run took. */
interface Took {
  wall: number;
  cpu: number;
}

/** Runs the import command once, its summary silenced. */
async function timeImport(legacy: string, into: string): Promise<Took> {
  const log = console.log;
  console.log = () => {};
  const started = performance.now();
  const cpu = process.cpuUsage();
  try {
    const code = await runImportLegacy(into, [legacy]);
    if (code !== 0) throw new Error(`import-legacy exited with ${code}`);
  } finally {
    console.log = log;
  }
  const used = process.cpuUsage(cpu);
  return { wall: (performance.now() - started) / 1000, cpu: (used.user + used.system) / 1e6 };
}

const mb = (path: string) => (statSync(path).size / 1e6).toFixed(0);

mkdirSync(DIR, { recursive: true });
console.log(`Legacy import (earlier databases in ${DIR}, kept)`);
for (const n of [SMALL, BIG]) {
  const legacy = legacyDatabase(n);
  const rounds = n === SMALL ? 5 : 1;
  const first: Took[] = [];
  const second: Took[] = [];
  for (let i = 0; i < rounds; i++) {
    const into = join(DIR, `ours-${n}.db`);
    for (const suffix of ["", "-wal", "-shm"]) rmSync(into + suffix, { force: true });
    first.push(await timeImport(legacy, into));
    second.push(await timeImport(legacy, into));
    if (i === rounds - 1)
      console.log(`  ${n.toLocaleString("en-US")} readings: earlier file ${mb(legacy)} MB, ours ${mb(into)} MB`);
  }
  const best = (xs: Took[]) => xs.reduce((a, b) => (b.wall < a.wall ? b : a));
  const [a, b] = [best(first), best(second)];
  console.log(
    `    first import  ${a.wall.toFixed(3)} s, CPU ${a.cpu.toFixed(3)} s (${Math.round(n / a.wall).toLocaleString("en-US")} readings/s)` +
      `; second (adds nothing) ${b.wall.toFixed(3)} s, CPU ${b.cpu.toFixed(3)} s${rounds > 1 ? ` (best of ${rounds})` : ""}`,
  );
}
