// The rollups of the open hour, held in memory: written to rollup_hour and
// rollup_day once the hour is over, not in every commit. Each commit of
// readings would otherwise rewrite the pages holding each device's hourly and
// daily rows (4 KiB each, whatever changed in them) many times an hour: on an
// SD card that is most of what ingestion writes besides the readings
// themselves (bench/writes.ts).
//
// The rule that keeps them exact, through crashes too:
//   the rollup tables hold exactly the readings with ts < T (`rollup_held_from`
//   in history_meta, a whole hour); the readings with ts >= T are held here.
// - A commit of readings adds those with ts < T to the tables in the same
//   transaction, as before (late replays of past hours), and holds the others.
// - Once the clock has passed into a later hour, the next commit writes the
//   held hours before it to the tables and moves T up, in one transaction.
// - At start (after a clean stop or a SIGKILL alike), what is held is
//   recomputed from the raw readings with ts >= T, which are committed and
//   were never added to the tables: nothing is counted twice or missed.
// - Readers (lib/server/history through history-queries.ts) see the tables
//   and the held hours merged, so a chart is the same as before.
// Bound: one aggregate per device and hour at or after T; readings are at most
// 24 h in the future (contract), so at most ~26 hours per device.

import type { Database } from "bun:sqlite";
import {
  addReading,
  ceilTo,
  copyAgg,
  floorTo,
  mergeInto,
  single,
  TIER_MS,
  type Agg,
  type BucketAgg,
  type Tier,
} from "../history/aggregate.ts";

const KEY = "rollup_held_from";
const HOUR = TIER_MS.hour;

/**
 * Hourly aggregates by device, hour start and (local) day start. The day is
 * part of the key because a local midnight can fall inside a UTC hour (zones
 * whose offset is not whole hours, like Asia/Kolkata): each side of it then
 * goes to its own day, exactly as rollups.ts adds a reading.
 */
export type HourAggs = Map<string, { deviceId: number; b: number; day: number; agg: Agg }>;

/** The start of the home's day holding `ts` (the zone the daily rollups are in). */
export type DayOf = (ts: number) => number;

/** Adds a reading to a map of hourly aggregates. */
export function addToHours(hours: HourAggs, dayOf: DayOf, deviceId: number, ts: number, t: number, h: number): void {
  const b = floorTo(ts, HOUR);
  const day = dayOf(ts);
  const key = `${deviceId}:${b}:${day}`;
  const entry = hours.get(key);
  if (entry) addReading(entry.agg, ts, t, h);
  else hours.set(key, { deviceId, b, day, agg: single(ts, t, h) });
}

/** Creates the held rollups over an open database (migration 2 applied), recomputing them from the raw readings. */
export function createHeldRollups(db: Database, options: { now: () => number; dayOf: DayOf }) {
  const { dayOf } = options;
  const q = {
    get: db.query<{ value: number }, [string]>("SELECT value FROM history_meta WHERE key = ?"),
    set: db.query<null, [string, number]>(
      "INSERT INTO history_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    ),
    devices: db.query<{ id: number }, []>("SELECT id FROM devices"),
    newest: db.query<{ ts: number | null }, [number]>("SELECT max(ts) AS ts FROM readings WHERE device_id = ?"),
    since: db.query<[number, number, number], [number, number]>(
      "SELECT ts, t, h FROM readings WHERE device_id = ?1 AND ts >= ?2 ORDER BY ts",
    ),
  };
  const held: HourAggs = new Map();
  let from: number;

  const stored = q.get.get(KEY)?.value;
  if (stored === undefined) {
    // First start with held rollups: every reading so far is in the tables, so T
    // starts at the hour under way, or after the newest reading when it is later.
    from = floorTo(options.now(), HOUR);
    for (const { id } of q.devices.all()) {
      const ts = q.newest.get(id)!.ts;
      if (ts !== null) from = Math.max(from, ceilTo(ts + 1, HOUR));
    }
    q.set.run(KEY, from);
  } else {
    from = stored;
    // Recompute what was held when the process ended: one indexed range per device.
    for (const { id } of q.devices.all())
      for (const [ts, t, h] of q.since.values(id, from) as [number, number, number][]) addToHours(held, dayOf, id, ts, t, h);
  }

  return {
    /** The start of the home's day holding a time (the daily rollups' zone). */
    dayOf,
    /** T: readings before it are in the tables, readings from it on are held. */
    get from() {
      return from;
    },
    /** Where T should be now: the start of the current hour (never back). */
    due: (): number => Math.max(from, floorTo(options.now(), HOUR)),
    /**
     * Inside the transaction that moves T to `to`: the held hours before it,
     * for the caller to write to the tables, and T stored. Call `moved(to)`
     * after the commit.
     */
    takeBefore(to: number): HourAggs {
      const out: HourAggs = new Map();
      for (const [key, e] of held) if (e.b < to) out.set(key, { deviceId: e.deviceId, b: e.b, day: e.day, agg: copyAgg(e.agg) });
      q.set.run(KEY, to);
      return out;
    },
    /** After the commit: T is `to`, the hours before it are in the tables, and `added` (committed readings at or after T) is held. */
    committed(to: number, added: HourAggs): void {
      if (to > from) {
        for (const [key, e] of held) if (e.b < to) held.delete(key);
        from = to;
      }
      for (const [key, e] of added) {
        const mine = held.get(key);
        if (mine) mergeInto(mine.agg, e.agg);
        else held.set(key, e);
      }
    },
    /** A device's held buckets of `tier` starting in [start, end), oldest first (days merged from the held hours). */
    rows(tier: Tier, deviceId: number, start: number, end: number): BucketAgg[] {
      const out = new Map<number, BucketAgg>();
      for (const e of held.values()) {
        if (e.deviceId !== deviceId) continue;
        const b = tier === "day" ? e.day : floorTo(e.b, TIER_MS[tier]);
        if (b < start || b >= end) continue;
        const mine = out.get(b);
        if (mine) mergeInto(mine, e.agg);
        else out.set(b, { b, ...copyAgg(e.agg) });
      }
      return [...out.values()].sort((x, y) => x.b - y.b);
    },
    /** The device was deleted (its readings and rollups went with it): its held hours go too, as its id may be reused. */
    forgetDevice(deviceId: number): void {
      for (const [key, e] of held) if (e.deviceId === deviceId) held.delete(key);
    },
    /** Aggregates held now (for /health-style counters and tests). */
    get size() {
      return held.size;
    },
  };
}

/** The held rollups' interface. */
export type HeldRollups = ReturnType<typeof createHeldRollups>;

/**
 * Nothing held: every commit writes its rollups, as before held rollups
 * (bench/writes.ts's reference, on a fresh database only: a database where
 * rollups were held needs them recomputed, which only createHeldRollups does).
 */
export const holdNothing: HeldRollups = {
  dayOf: (ts) => floorTo(ts, TIER_MS.day),
  from: Infinity,
  due: () => Infinity,
  takeBefore: () => new Map(),
  committed: () => {},
  rows: () => [],
  forgetDevice: () => {},
  size: 0,
};

/** `rows` (from the tables) with `extra` (held) merged in, ordered by bucket. */
export function withHeld(rows: BucketAgg[], extra: BucketAgg[]): BucketAgg[] {
  if (extra.length === 0) return rows;
  const byB = new Map(rows.map((r) => [r.b, r]));
  for (const e of extra) {
    const row = byB.get(e.b);
    if (row) mergeInto(row, e);
    else byB.set(e.b, e);
  }
  return [...byB.values()].sort((x, y) => x.b - y.b);
}
