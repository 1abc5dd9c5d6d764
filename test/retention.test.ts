// Retention deletes exactly the raw readings older than the retention age,
// in small batches while ingestion keeps acknowledging, keeps the rollups,
// returns freed pages to the file system, and runs on the server's clock.

import { afterEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { openDatabase } from "../lib/server/store/db.ts";
import { createLog } from "../lib/shared/log.ts";
import { createRetention, ensureIncrementalVacuum, RETENTION_FIRST_RUN_MS } from "../lib/server/store/retention.ts";
import { createStore, type IncomingReading } from "../lib/server/store/store.ts";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  startServer,
  tempDir,
  waitFor,
  type TestServer,
} from "./helpers.ts";
import { reading } from "./history-helpers.ts";

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 5, 1);

let cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const pragma = (db: Database, name: string) => Object.values(db.query(`PRAGMA ${name}`).get() as object)[0] as number;
const count = (db: Database, where = "1", ...args: number[]) =>
  db.query<{ n: number }, number[]>(`SELECT count(*) AS n FROM readings WHERE ${where}`).get(...args)!.n;

/** Fills a new database with one reading a minute per device (plain INSERTs: only raw rows matter here). */
function fill(path: string, devices: number, from: number, to: number): void {
  const db = openDatabase(path);
  ensureIncrementalVacuum(db);
  const insertDevice = db.query("INSERT INTO devices (uid, created_at) VALUES (?, ?)");
  const insert = db.query("INSERT INTO readings (device_id, ts, t, h) VALUES (?, ?, ?, ?)");
  db.transaction(() => {
    for (let d = 1; d <= devices; d++) {
      insertDevice.run(`aht20-${String(d).padStart(6, "0")}`, from);
      for (let ts = from; ts < to; ts += MIN) insert.run(d, ts, 2000 + (ts % 500), 4500);
    }
  })();
  db.close();
}

test("retention deletes exactly the raw readings older than the age, keeps the rollups and frees pages", async () => {
  const dir = tempDir();
  const db = openDatabase(join(dir.path, "techtemp.db"));
  cleanup.push(() => {
    db.close();
    dir.cleanup();
  });
  expect(ensureIncrementalVacuum(db)).toBe(true);
  const now = T0 + 10 * DAY + 12_345;
  const store = createStore(db, { now: () => now });
  for (const uid of ["aht20-aaaaaa", "aht20-bbbbbb"]) {
    const batch: IncomingReading[] = [];
    for (let ts = T0; ts < T0 + 10 * DAY; ts += MIN) batch.push(reading(uid, ts, 20 + (ts % 7), 45, ts % 11 !== 0));
    store.insertReadings(batch);
  }
  const cutoff = now - 3 * DAY;
  const rollups = () => db.query("SELECT * FROM rollup_hour ORDER BY device_id, b").all();
  const before = {
    rollups: rollups(),
    kept: count(db, "ts >= ?", cutoff),
    old: count(db, "ts < ?", cutoff),
    pages: pragma(db, "page_count"),
  };
  expect(before.old).toBeGreaterThan(10_000);

  const retention = createRetention({ db, days: 3, log: createLog({ level: "error" }), now: () => now });
  const result = await retention.runOnce();
  expect(result.cutoff).toBe(cutoff);
  expect(result.deleted).toBe(before.old);
  expect(result.batches).toBeGreaterThan(1);
  expect(count(db, "ts < ?", cutoff)).toBe(0);
  expect(count(db)).toBe(before.kept);
  expect(db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM reading_flags WHERE ts < ?").get(cutoff)!.n).toBe(0);
  expect(
    db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM reading_flags WHERE ts >= ?").get(cutoff)!.n,
  ).toBeGreaterThan(0);
  // Rollups are kept forever: retention does not touch them.
  expect(rollups()).toEqual(before.rollups);
  expect(result.freedPages).toBeGreaterThan(0);
  expect(pragma(db, "page_count")).toBeLessThan(before.pages);
  expect(pragma(db, "freelist_count")).toBe(0);
  // A second run has nothing left to do.
  expect(await retention.runOnce()).toMatchObject({ deleted: 0, batches: 0 });
});

test("retention_raw_days = 0 keeps every raw reading", async () => {
  const dir = tempDir();
  const path = join(dir.path, "techtemp.db");
  fill(path, 1, T0, T0 + 2 * DAY);
  const db = openDatabase(path);
  cleanup.push(() => {
    db.close();
    dir.cleanup();
  });
  const result = await createRetention({ db, days: 0, log: createLog({ level: "error" }), now: () => T0 + 1000 * DAY }).runOnce();
  expect(result).toMatchObject({ cutoff: null, deleted: 0 });
  expect(count(db)).toBe(2 * 1440);
});

test("a database made without incremental vacuum is switched once", () => {
  const dir = tempDir();
  const path = join(dir.path, "techtemp.db");
  const db = openDatabase(path);
  cleanup.push(() => {
    db.close();
    dir.cleanup();
  });
  expect(pragma(db, "auto_vacuum")).toBe(0);
  expect(ensureIncrementalVacuum(db)).toBe(true);
  expect(pragma(db, "auto_vacuum")).toBe(2);
  expect(ensureIncrementalVacuum(db)).toBe(false);
});

test("ingestion keeps acknowledging while retention deletes in many small batches", async () => {
  const dir = tempDir();
  fill(join(dir.path, "techtemp.db"), 4, T0, T0 + 60 * DAY);
  const now = T0 + 61 * DAY;
  const server: TestServer = await startServer(
    { retention_raw_days: 30 },
    { dataDir: dir.path, now: () => now, logLevel: "info" },
  );
  cleanup.push(async () => {
    await server.stop();
    dir.cleanup();
  });
  const db = server.db;
  const cutoff = now - 30 * DAY;
  const old = count(db, "ts < ?", cutoff);
  const kept = count(db, "ts >= ?", cutoff);
  expect(old).toBeGreaterThan(100_000);
  const client = await connectMqtt(server.mqttPort);
  cleanup.push(() => endMqtt(client, true));

  let seq = 0;
  const publish = async () => {
    const started = performance.now();
    await publishAcked(client, readingTopic("aht20-ffffff"), legacyPayload(21, 40, now - 1000 * ++seq), 30_000);
    return performance.now() - started;
  };
  const baseline: number[] = [];
  for (let i = 0; i < 50; i++) baseline.push(await publish());

  const during: number[] = [];
  let done = false;
  const run = server.retention.runOnce().finally(() => {
    done = true;
  });
  while (!done) during.push(await publish());
  const result = await run;

  const pct = (list: number[], p: number) =>
    [...list].sort((a, b) => a - b)[Math.min(list.length - 1, Math.floor((list.length * p) / 100))]!.toFixed(1);
  console.log(
    `retention: ${result.deleted} readings in ${result.batches} batches, ${result.ms} ms, ${result.freedPages} pages freed; ` +
      `publish→ack ms p50/p99/max: before ${pct(baseline, 50)}/${pct(baseline, 99)}/${pct(baseline, 100)}, ` +
      `during ${pct(during, 50)}/${pct(during, 99)}/${pct(during, 100)} (${during.length} publishes)`,
  );
  expect(result.deleted).toBe(old);
  expect(result.batches).toBeGreaterThan(10);
  expect(during.length).toBeGreaterThan(0);
  expect(count(db, "ts < ?", cutoff)).toBe(0);
  // Every acknowledged reading is stored, and nothing newer than the cutoff was touched.
  expect(count(db, "device_id = (SELECT id FROM devices WHERE uid = 'aht20-ffffff')")).toBe(seq);
  expect(count(db)).toBe(kept + seq);
});

test("the server runs retention by itself on its (injected) clock", async () => {
  let now = T0 + 800 * DAY;
  const server = await startServer({ retention_raw_days: 730 }, { now: () => now, logLevel: "info" });
  cleanup.push(() => server.stop());
  const old: IncomingReading[] = [];
  for (let ts = T0; ts < T0 + 2 * DAY; ts += MIN) old.push(reading("aht20-cccccc", ts, 19));
  server.store.insertReadings([...old, reading("aht20-cccccc", now - DAY, 22)]);
  // Nothing happens until the first run is due on the server's clock...
  expect(count(server.db)).toBe(2 * 1440 + 1);
  now += RETENTION_FIRST_RUN_MS;
  await waitFor(
    () => server.logs.some((l) => l.includes("retention: deleted old raw readings")),
    10_000,
    "the scheduled retention run",
  );
  expect(count(server.db)).toBe(1);
  expect(server.logs.find((l) => l.includes("retention: deleted"))).toContain("deleted=2880");
});
