// Rollups stay equal to a from-scratch computation over every reading
// stored, through random inserts, late replays, duplicates and retention.

import { afterEach, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { openDatabase } from "../lib/server/store/db.ts";
import { createLog } from "../lib/shared/log.ts";
import { createRetention } from "../lib/server/store/retention.ts";
import type { BucketAgg } from "../lib/server/history/aggregate.ts";
import { createRollups } from "../lib/server/store/rollups.ts";
import { createStore, type IncomingReading } from "../lib/server/store/store.ts";
import { tempDir } from "./helpers.ts";
import { prng, reading } from "./history-helpers.ts";

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

/** A stored rollup row. */
type Row = BucketAgg & { device_id: number };

/** The rollup rows computed from scratch (independently of lib/server/store/rollups.ts): earliest time wins ties. */
function fromScratch(readings: { device: number; ts: number; t: number; h: number }[], width: number): Row[] {
  const groups = new Map<string, typeof readings>();
  for (const r of readings) {
    const key = `${r.device}:${Math.floor(r.ts / width) * width}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const rows: Row[] = [];
  for (const [key, list] of groups) {
    const [device, b] = key.split(":").map(Number) as [number, number];
    const byTs = [...list].sort((x, y) => x.ts - y.ts);
    const t = byTs.map((r) => r.t);
    const h = byTs.map((r) => r.h);
    const at = (values: number[], v: number) => byTs[values.indexOf(v)]!.ts;
    const sum = (values: number[]) => values.reduce((s, v) => s + v, 0);
    rows.push({
      device_id: device,
      b,
      n: list.length,
      t_sum: sum(t),
      t_min: Math.min(...t),
      t_min_ts: at(t, Math.min(...t)),
      t_max: Math.max(...t),
      t_max_ts: at(t, Math.max(...t)),
      h_sum: sum(h),
      h_min: Math.min(...h),
      h_min_ts: at(h, Math.min(...h)),
      h_max: Math.max(...h),
      h_max_ts: at(h, Math.max(...h)),
    });
  }
  return rows.sort((x, y) => x.device_id - y.device_id || x.b - y.b);
}

const stored = (db: Database, tier: "hour" | "day") =>
  db.query<Row, []>(`SELECT * FROM rollup_${tier} ORDER BY device_id, b`).all();

/** The rollup rows as the store answers them: the tables with the open hour's held rollups merged (held-rollups.ts). */
function answered(db: Database, store: ReturnType<typeof createStore>, tier: "hour" | "day"): Row[] {
  const ids = db.query<{ id: number }, []>("SELECT id FROM devices ORDER BY id").all();
  return ids.flatMap(({ id }) => store.history.rollupRange(tier, id, -8.64e15, 8.64e15).map((r) => ({ device_id: id, ...r })));
}

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.reverse()) c();
  cleanup = [];
});

function open() {
  const dir = tempDir();
  const db = openDatabase(join(dir.path, "techtemp.db"));
  cleanup.push(() => {
    db.close();
    dir.cleanup();
  });
  return db;
}

for (const seed of [1, 2, 3]) {
  test(`rollups equal a from-scratch computation after random, late and duplicate inserts and retention (seed ${seed})`, async () => {
    const db = open();
    let clock = T0 + 10 * DAY;
    const store = createStore(db, { now: () => clock });
    const retention = createRetention({ db, days: 3, log: createLog({ level: "error" }), now: () => clock, batchRows: 50 });
    const random = prng(seed);
    const uids = ["aht20-000001", "aht20-000002", "aht20-000003"];
    // The model: what raw holds now, and what the rollups must count.
    const raw = new Map<string, { device: number; ts: number; t: number; h: number }>();
    const counted: { device: number; ts: number; t: number; h: number }[] = [];
    let horizon = -Infinity;
    const sent: IncomingReading[] = [];

    for (let step = 0; step < 60; step++) {
      const batch: IncomingReading[] = [];
      const size = 1 + Math.floor(random() * 40);
      for (let i = 0; i < size; i++) {
        const kind = random();
        let r: IncomingReading;
        if (kind < 0.1 && sent.length > 0) {
          // A duplicate of something sent before (maybe with other values: the first one stays).
          const old = sent[Math.floor(random() * sent.length)]!;
          r = reading(old.deviceUid, old.reading.ts, Math.round(random() * 3000) / 100, 50);
        } else {
          // Mostly recent; some late (a replayed outbox), some older than the retention age.
          const age = kind < 0.7 ? random() * 6 * HOUR : kind < 0.9 ? random() * 3 * DAY : random() * 8 * DAY;
          const ts = Math.round(clock - age);
          // Few distinct values so that ties of min and max (and their times) happen.
          r = reading(
            uids[Math.floor(random() * uids.length)]!,
            ts,
            15 + Math.floor(random() * 10) / 2,
            40 + Math.floor(random() * 8),
          );
        }
        batch.push(r);
      }
      store.insertReadings(batch);
      for (const r of batch) {
        const device = store.findDevice(r.deviceUid)!.id;
        const key = `${device}:${r.reading.ts}`;
        if (raw.has(key)) continue;
        const row = {
          device,
          ts: r.reading.ts,
          t: Math.round(r.reading.temperature_c * 100),
          h: Math.round(r.reading.humidity_pct * 100),
        };
        raw.set(key, row);
        sent.push(r);
        if (row.ts >= horizon) counted.push(row);
      }
      clock += Math.floor(random() * 4 * HOUR);
      if (step % 10 === 9) {
        const result = await retention.runOnce();
        horizon = Math.max(horizon, result.cutoff!);
        for (const [key, r] of raw) if (r.ts < result.cutoff!) raw.delete(key);
        const left = db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM readings WHERE ts < ?").get(result.cutoff!)!.n;
        expect(left).toBe(0);
      }
      expect(answered(db, store, "hour")).toEqual(fromScratch(counted, HOUR));
      expect(answered(db, store, "day")).toEqual(fromScratch(counted, DAY));
      // A new process (a restart, or a SIGKILL) recomputes what was held from the raw readings.
      const again = createStore(db, { now: () => clock });
      expect(answered(db, again, "hour")).toEqual(fromScratch(counted, HOUR));
      expect(answered(db, again, "day")).toEqual(fromScratch(counted, DAY));
    }
    // Once the hours are over, the next commit writes them to the tables themselves.
    clock += 2 * DAY;
    store.insertReadings([reading(uids[0]!, clock - 3 * HOUR, 20, 50)]);
    counted.push({ device: store.findDevice(uids[0]!)!.id, ts: clock - 3 * HOUR, t: 2000, h: 5000 });
    expect(stored(db, "hour")).toEqual(fromScratch(counted, HOUR));
    expect(stored(db, "day")).toEqual(fromScratch(counted, DAY));
    // Where the raw readings are all still there, the rollups also equal a GROUP BY over them.
    expect(horizon).toBeGreaterThan(T0);
    const start = Math.ceil(horizon / HOUR) * HOUR;
    const sql = db
      .query<Record<string, number>, [number]>(
        `SELECT device_id, (ts / 3600000) * 3600000 AS b, count(*) AS n, sum(t) AS t_sum, min(t) AS t_min, max(t) AS t_max,
           sum(h) AS h_sum, min(h) AS h_min, max(h) AS h_max
         FROM readings WHERE ts >= ? GROUP BY device_id, b ORDER BY device_id, b`,
      )
      .all(start);
    const rolled = db
      .query<Record<string, number>, [number]>(
        "SELECT device_id, b, n, t_sum, t_min, t_max, h_sum, h_min, h_max FROM rollup_hour WHERE b >= ? ORDER BY device_id, b",
      )
      .all(start);
    expect(sql.length).toBeGreaterThan(10);
    expect(rolled).toEqual(sql);
  });
}

test("a late reading corrects the hour and day it belongs to, and a duplicate is counted once", () => {
  const db = open();
  const store = createStore(db, { now: () => T0 + DAY });
  store.insertReadings([
    reading("aht20-aaaaaa", T0 + 10 * HOUR, 20, 50),
    reading("aht20-aaaaaa", T0 + 10 * HOUR + 60_000, 22, 52),
  ]);
  store.insertReadings([reading("aht20-aaaaaa", T0 + 20 * HOUR, 21, 51)]);
  // Replayed after an outage: older than what came since, and once more as a duplicate.
  store.insertReadings([reading("aht20-aaaaaa", T0 + 10 * HOUR + 30_000, 30.5, 45)]);
  store.insertReadings([reading("aht20-aaaaaa", T0 + 10 * HOUR + 30_000, 30.5, 45)]);
  const hour = db.query<Row, [number]>("SELECT * FROM rollup_hour WHERE b = ?").get(T0 + 10 * HOUR)!;
  expect(hour).toMatchObject({ n: 3, t_sum: 7250, t_max: 3050, t_max_ts: T0 + 10 * HOUR + 30_000, h_min: 4500, t_min: 2000 });
  const day = db.query<Row, [number]>("SELECT * FROM rollup_day WHERE b = ?").get(T0)!;
  expect(day).toMatchObject({ n: 4, t_sum: 9350, t_max: 3050, h_max: 5200, h_max_ts: T0 + 10 * HOUR + 60_000 });
});

test("rebuilding the rollups from raw readings gives the rows ingestion kept", () => {
  const db = open();
  const store = createStore(db, { now: () => T0 + 5 * DAY });
  const random = prng(7);
  for (let i = 0; i < 20; i++) {
    store.insertReadings(
      Array.from({ length: 50 }, () =>
        reading(
          `aht20-00000${1 + Math.floor(random() * 3)}`,
          T0 + Math.floor(random() * 4 * DAY),
          10 + random() * 20,
          random() * 100,
        ),
      ),
    );
  }
  const hours = stored(db, "hour");
  const days = stored(db, "day");
  const rollups = createRollups(db);
  expect(rollups.rebuild({ chunkHours: 7 })).toBe(db.query<{ n: number }, []>("SELECT count(*) AS n FROM readings").get()!.n);
  expect(stored(db, "hour")).toEqual(hours);
  expect(stored(db, "day")).toEqual(days);
});

test("a deleted device's held hour goes with it, so a new device given its id starts from nothing", () => {
  const db = open();
  const now = T0 + 5 * DAY + 30 * 60_000;
  const store = createStore(db, { now: () => now });
  store.insertReadings([reading("aht20-gone01", now - 60_000, 20, 50), reading("aht20-gone01", now - 30_000, 21, 51)]);
  const gone = store.findDevice("aht20-gone01")!.id;
  expect(store.history.rollupRange("hour", gone, T0, now + DAY)).toMatchObject([{ n: 2 }]);
  store.deleteDevice("aht20-gone01");
  store.insertReadings([reading("aht20-new001", now - 10_000, 22, 52)]);
  const fresh = store.findDevice("aht20-new001")!.id;
  expect(fresh).toBe(gone); // SQLite gives the highest id again once it is free
  expect(store.history.rollupRange("hour", fresh, T0, now + DAY)).toMatchObject([{ n: 1, t_sum: 2200 }]);
  expect(store.history.rollupRange("day", fresh, T0, now + DAY)).toMatchObject([{ n: 1 }]);
});
