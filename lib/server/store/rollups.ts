// Rollups: per device, one row per UTC hour and one per day of the home's
// time zone with the count, the sum (mean = sum / count), and the min and max
// of each value with the time it was first reached. They are what lets a
// year-long chart read 365 rows instead of half a million readings, and keep
// its spikes.
//
// Hours are UTC hours (an hour is an hour everywhere); days are the home's
// days (23 or 25 hours at a DST change), in the zone the database names
// (table rollup_zone). When the server starts with another `home_timezone`,
// `ensureRollupZone` rebuilds the daily rollups in the new zone from the
// hourly ones (exact: hours are kept forever too), before anything reads them.
//
// How they stay right:
// - Readings are added in the same transaction that stores them
//   (`store.insertReadings` → `accumulator()`), so a rollup never disagrees
//   with a commit. Only readings actually inserted are added: a duplicate
//   (same device and ts, ignored by the insert) is not counted twice.
// - A late reading (a sensor replaying its outbox after an outage) is merged
//   into the bucket it belongs to, whatever its age: every field is a merge
//   (count and sum add, min/max compare), so order does not matter.
// - Retention deletes raw readings but never rollups: they are the only record
//   of older data. Deleting raw rows therefore leaves the rollups unchanged,
//   which is what keeps "rollups = aggregate of every reading ever stored".
//   Retention records the cutoff as the raw horizon. A reading older than the
//   horizon that arrives now cannot be told apart from a replay of a reading
//   whose raw row was already deleted, so it is NOT added to the rollups (it
//   would be counted twice); its raw row is removed by the next retention run.
//   (The legacy import keeps its own ledger for that case: importReadings in readings.ts.)

import type { Database } from "bun:sqlite";
import { addReading, copyAgg, floorTo, mergeInto, single, TIER_MS, TIERS, type Agg, type Tier } from "../history/aggregate.ts";
import { createZone, type Zone } from "../history/zone.ts";
import type { Log } from "../../shared/log.ts";

// Merge of a partial aggregate into a stored row. In an UPDATE every
// right-hand side reads the OLD row, so the *_ts columns can compare against
// the old min/max before those are replaced. Ties keep the earlier time.
const upsertSql = (tier: Tier) => `
  INSERT INTO rollup_${tier} (device_id, b, n, t_sum, t_min, t_min_ts, t_max, t_max_ts, h_sum, h_min, h_min_ts, h_max, h_max_ts)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
  ON CONFLICT (device_id, b) DO UPDATE SET
    n = n + excluded.n,
    t_sum = t_sum + excluded.t_sum,
    t_min_ts = CASE WHEN excluded.t_min < t_min OR (excluded.t_min = t_min AND excluded.t_min_ts < t_min_ts) THEN excluded.t_min_ts ELSE t_min_ts END,
    t_min = min(t_min, excluded.t_min),
    t_max_ts = CASE WHEN excluded.t_max > t_max OR (excluded.t_max = t_max AND excluded.t_max_ts < t_max_ts) THEN excluded.t_max_ts ELSE t_max_ts END,
    t_max = max(t_max, excluded.t_max),
    h_sum = h_sum + excluded.h_sum,
    h_min_ts = CASE WHEN excluded.h_min < h_min OR (excluded.h_min = h_min AND excluded.h_min_ts < h_min_ts) THEN excluded.h_min_ts ELSE h_min_ts END,
    h_min = min(h_min, excluded.h_min),
    h_max_ts = CASE WHEN excluded.h_max > h_max OR (excluded.h_max = h_max AND excluded.h_max_ts < h_max_ts) THEN excluded.h_max_ts ELSE h_max_ts END,
    h_max = max(h_max, excluded.h_max)`;

const HOUR_COLS = "b, n, t_sum, t_min, t_min_ts, t_max, t_max_ts, h_sum, h_min, h_min_ts, h_max, h_max_ts";
type BucketRow = Agg & { b: number };

type UpsertArgs = [number, number, number, number, number, number, number, number, number, number, number, number, number];
const args = (deviceId: number, b: number, a: Agg): UpsertArgs => [
  deviceId,
  b,
  a.n,
  a.t_sum,
  a.t_min,
  a.t_min_ts,
  a.t_max,
  a.t_max_ts,
  a.h_sum,
  a.h_min,
  a.h_min_ts,
  a.h_max,
  a.h_max_ts,
];

/** Partial aggregates of a batch, keyed by device and hour, merged into the tables by `write()`. */
export interface Accumulator {
  /** Adds a stored reading (values in hundredths). Returns false when it is older than the raw horizon and was not added. */
  add(deviceId: number, ts: number, t: number, h: number): boolean;
  /** Adds an hour's aggregate (held-rollups.ts writing the held hours). */
  addHour(deviceId: number, b: number, day: number, agg: Agg): void;
  /** Merges what was added into rollup_hour and rollup_day. Call inside the transaction that stored the readings. */
  write(): void;
}

type Partial = { deviceId: number; b: number; agg: Agg };

/** The zone the database's daily rollups are in (migration 4 names UTC for the rollups written before it). */
export function rollupZoneName(db: Database): string {
  return db.query<{ zone: string }, []>("SELECT zone FROM rollup_zone WHERE id = 1").get()?.zone ?? "UTC";
}

/** Creates the rollup maintenance over an open database (migrations applied); days are in the zone the database names. */
export function createRollups(db: Database) {
  const zone: Zone = createZone(rollupZoneName(db));
  const q = {
    upsert: { hour: db.query<null, UpsertArgs>(upsertSql("hour")), day: db.query<null, UpsertArgs>(upsertSql("day")) },
    getMeta: db.query<{ value: number }, [string]>("SELECT value FROM history_meta WHERE key = ?"),
    setMeta: db.query<null, [string, number]>(
      "INSERT INTO history_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    ),
  };

  /** Raw readings before this time may have been deleted by retention (-Infinity: none were). */
  const horizon = (): number => q.getMeta.get("raw_horizon")?.value ?? -Infinity;

  /** Adds one reading to the partials of its hour and its (local) day. */
  function addTo(hours: Map<string, Partial>, days: Map<string, Partial>, deviceId: number, ts: number, t: number, h: number) {
    for (const [map, b] of [
      [hours, floorTo(ts, TIER_MS.hour)],
      [days, zone.startOfDay(ts)],
    ] as const) {
      const key = `${deviceId}:${b}`;
      const entry = map.get(key);
      if (entry) addReading(entry.agg, ts, t, h);
      else map.set(key, { deviceId, b, agg: single(ts, t, h) });
    }
  }

  /** Merges partials into both tiers. */
  function writePartials(hours: Map<string, Partial>, days: Map<string, Partial>): void {
    for (const { deviceId, b, agg } of hours.values()) q.upsert.hour.run(...args(deviceId, b, agg));
    for (const { deviceId, b, agg } of days.values()) q.upsert.day.run(...args(deviceId, b, agg));
  }

  /**
   * A fresh accumulator for one transaction. With `keepOld`, readings older
   * than the raw horizon are added too (the legacy import, which has its own
   * ledger against double counting); otherwise they are skipped (see top).
   */
  function accumulator(options: { keepOld?: boolean } = {}): Accumulator {
    const hours = new Map<string, Partial>();
    const days = new Map<string, Partial>();
    let limit: number | null = null;
    return {
      add(deviceId, ts, t, h) {
        if (!options.keepOld) {
          // Read once per transaction, on first use: one indexed lookup per batch.
          limit ??= horizon();
          if (ts < limit) return false;
        }
        addTo(hours, days, deviceId, ts, t, h);
        return true;
      },
      addHour(deviceId, b, day, agg) {
        // Into its hour and into the (local) day it was held for (held-rollups.ts).
        for (const [map, at] of [
          [hours, b],
          [days, day],
        ] as const) {
          const key = `${deviceId}:${at}`;
          const entry = map.get(key);
          if (entry) mergeInto(entry.agg, agg);
          else map.set(key, { deviceId, b: at, agg: copyAgg(agg) });
        }
      },
      write() {
        if (hours.size > 0) writePartials(hours, days);
        hours.clear();
        days.clear();
      },
    };
  }

  /**
   * Recomputes the rollups from the raw readings from `from` on (all by
   * default): the benchmark uses it after generating readings with plain
   * INSERTs, and an operator can use it after editing raw rows by hand.
   * Buckets before the raw horizon are kept as they are: their raw readings
   * are (partly) gone and the rollups are their only record. Runs in
   * transactions of `chunkHours` hourly rows (not one: run it with the server
   * stopped, as a partial rebuild leaves partial rollups); returns the readings read.
   * Readings from `rollup_held_from` on are left out: the server holds their
   * rollups in memory and recomputes them at start (held-rollups.ts).
   */
  function rebuild(options: { from?: number; deviceId?: number; chunkHours?: number } = {}): number {
    const h = horizon();
    const heldFrom = q.getMeta.get("rollup_held_from")?.value ?? 8.64e15;
    const from = Math.max(options.from ?? -Infinity, h);
    const start = from === -Infinity ? -8.64e15 : zone.ceilDay(from);
    const only = options.deviceId ?? null;
    db.transaction(() => {
      for (const tier of TIERS) {
        db.query(`DELETE FROM rollup_${tier} WHERE b >= ?1 AND (?2 IS NULL OR device_id = ?2)`).run(start, only);
      }
    })();
    // Streamed in primary-key order (no sort, constant memory), written in chunks.
    const rows = db
      .prepare<{ device_id: number; ts: number; t: number; h: number }, [number, number | null, number]>(
        "SELECT device_id, ts, t, h FROM readings WHERE ts >= ?1 AND ts < ?3 AND (?2 IS NULL OR device_id = ?2) ORDER BY device_id, ts",
      )
      .iterate(start, only, heldFrom);
    const chunk = options.chunkHours ?? 20_000;
    const hours = new Map<string, Partial>();
    const days = new Map<string, Partial>();
    // A chunk's last day may go on in the next chunk: the upsert merges the two parts.
    const flush = db.transaction(() => writePartials(hours, days));
    let count = 0;
    for (const r of rows) {
      count++;
      if (hours.size >= chunk && !hours.has(`${r.device_id}:${floorTo(r.ts, TIER_MS.hour)}`)) {
        flush();
        hours.clear();
        days.clear();
      }
      addTo(hours, days, r.device_id, r.ts, r.t, r.h);
    }
    flush();
    return count;
  }

  return { zone, accumulator, horizon, rebuild, setHorizon: (ts: number) => q.setMeta.run("raw_horizon", ts) };
}

/**
 * Makes the daily rollups be days of `zoneName`: when the database holds them
 * in another zone, they are rebuilt, in one transaction (a crash leaves the
 * old ones), from the hourly rollups. An hour that lies in one local day goes
 * to it whole, so days before the raw horizon stay exact; an hour that a
 * local midnight cuts (zones whose offset is not whole hours, like
 * Asia/Kolkata) is split exactly from its raw readings, or, once those are
 * gone, goes whole to the day holding its middle. Returns what it did.
 */
export function ensureRollupZone(
  db: Database,
  zoneName: string,
  log?: Log,
): { rebuilt: boolean; from: string; days: number; ms: number } {
  const from = rollupZoneName(db);
  const to = createZone(zoneName);
  if (from === to.name) return { rebuilt: false, from, days: 0, ms: 0 };
  const started = performance.now();
  const horizon =
    db.query<{ value: number }, []>("SELECT value FROM history_meta WHERE key = 'raw_horizon'").get()?.value ?? -Infinity;
  const upsert = db.query<null, UpsertArgs>(upsertSql("day"));
  const raw = db.query<{ ts: number; t: number; h: number }, [number, number, number]>(
    "SELECT ts, t, h FROM readings WHERE device_id = ?1 AND ts >= ?2 AND ts < ?3",
  );
  let written = 0;
  db.transaction(() => {
    db.exec("DELETE FROM rollup_day");
    const rows = db
      .prepare<{ device_id: number } & BucketRow, []>(`SELECT device_id, ${HOUR_COLS} FROM rollup_hour ORDER BY device_id, b`)
      .iterate();
    let day: Partial | null = null;
    const put = (deviceId: number, b: number, agg: Agg) => {
      if (day && day.deviceId === deviceId && day.b === b) return mergeInto(day.agg, agg);
      if (day) (upsert.run(...args(day.deviceId, day.b, day.agg)), written++);
      day = { deviceId, b, agg: copyAgg(agg) };
    };
    for (const row of rows) {
      const { device_id: id, b } = row;
      const d0 = to.startOfDay(b);
      const d1 = to.startOfDay(b + TIER_MS.hour - 1);
      if (d0 === d1) put(id, d0, row);
      else if (b >= horizon) {
        // A midnight inside this hour: each side from the raw readings.
        for (const [x, y, d] of [
          [b, d1, d0],
          [d1, b + TIER_MS.hour, d1],
        ] as const) {
          let agg: Agg | null = null;
          for (const r of raw.all(id, x, y)) {
            if (agg) addReading(agg, r.ts, r.t, r.h);
            else agg = single(r.ts, r.t, r.h);
          }
          if (agg) put(id, d, agg);
        }
      } else put(id, to.startOfDay(b + TIER_MS.hour / 2), row);
    }
    const last = day as Partial | null;
    if (last) (upsert.run(...args(last.deviceId, last.b, last.agg)), written++);
    db.query("INSERT INTO rollup_zone (id, zone) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET zone = excluded.zone").run(
      to.name,
    );
  })();
  const ms = Math.round(performance.now() - started);
  log?.info("daily rollups rebuilt for the home time zone", { from, to: to.name, days: written, ms });
  return { rebuilt: true, from, days: written, ms };
}

/** The rollup maintenance interface. */
export type Rollups = ReturnType<typeof createRollups>;
