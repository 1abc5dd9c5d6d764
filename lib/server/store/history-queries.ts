// Reading history back: rollup rows, raw readings over a span, the placements
// that make a room's history, what statistics need to know of a device, and
// raw rows streamed for an export. The logic that combines them (tier choice,
// exact partial buckets, statistics, CSV) is lib/server/history/; here are only
// the prepared statements it runs.

import { Database } from "bun:sqlite";
import type { BucketAgg, Tier } from "../history/aggregate.ts";
import { withHeld, type HeldRollups } from "./held-rollups.ts";
import { createRollups } from "./rollups.ts";

/** A raw reading, values in hundredths. */
export interface RawRow {
  ts: number;
  t: number;
  h: number;
}

/** One placement of a device in a room, as a room's history reads it. */
export interface RoomPlacement {
  device_id: number;
  uid: string;
  from_ts: number;
  to_ts: number | null;
}

/** What statistics need of a device: the interval it reports at, and since when it exists. */
export interface DeviceInfo {
  interval_s: number | null;
  config_interval_s: number | null;
  created_at: number;
}

/** Raw rows read on one consistent snapshot of the database; `close()` when done. */
export interface RawReader {
  /** A device's raw readings in [from, to), oldest first, read as the iterator is advanced. */
  rows(deviceId: number, from: number, to: number): IterableIterator<RawRow>;
  close(): void;
}

const COLS = "b, n, t_sum, t_min, t_min_ts, t_max, t_max_ts, h_sum, h_min, h_min_ts, h_max, h_max_ts";

/**
 * Creates the history queries over an open database; rollup rows include the
 * open hour's, held in memory by the store (`held`, held-rollups.ts).
 */
export function createHistoryQueries(db: Database, held?: Pick<HeldRollups, "rows">) {
  const rollups = createRollups(db);
  const q = {
    range: {
      hour: db.query<BucketAgg, [number, number, number]>(
        `SELECT ${COLS} FROM rollup_hour WHERE device_id = ?1 AND b >= ?2 AND b < ?3 ORDER BY b`,
      ),
      day: db.query<BucketAgg, [number, number, number]>(
        `SELECT ${COLS} FROM rollup_day WHERE device_id = ?1 AND b >= ?2 AND b < ?3 ORDER BY b`,
      ),
    },
    hourRow: db.query<BucketAgg, [number, number]>(`SELECT ${COLS} FROM rollup_hour WHERE device_id = ?1 AND b = ?2`),
    rawSpan: db.query<[number, number, number], [number, number, number]>(
      "SELECT ts, t, h FROM readings WHERE device_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
    ),
    rawNewest: db.query<RawRow, [number, number, number, number]>(
      "SELECT ts, t, h FROM readings WHERE device_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts DESC LIMIT ?4",
    ),
    roomPlacements: db.query<RoomPlacement, [number, number, number]>(
      `SELECT p.device_id, d.uid, p.from_ts, p.to_ts FROM placements p JOIN devices d ON d.id = p.device_id
       WHERE p.room_id = ?1 AND p.from_ts < ?3 AND (p.to_ts IS NULL OR p.to_ts > ?2)
       ORDER BY p.from_ts, p.id`,
    ),
    firstRaw: db.query<{ ts: number }, [number, number, number]>(
      "SELECT ts FROM readings WHERE device_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts LIMIT 1",
    ),
    firstHour: db.query<{ b: number }, [number, number, number]>(
      "SELECT b FROM rollup_hour WHERE device_id = ?1 AND b >= ?2 AND b < ?3 ORDER BY b LIMIT 1",
    ),
    deviceInfo: db.query<DeviceInfo, [number]>("SELECT interval_s, config_interval_s, created_at FROM devices WHERE id = ?"),
    // Two seeks on the primary key (device_id, b): the first and the last day with readings.
    daySpan: db.query<{ first: number | null; last: number | null }, [number]>(
      "SELECT (SELECT min(b) FROM rollup_day WHERE device_id = ?1) AS first, (SELECT max(b) FROM rollup_day WHERE device_id = ?1) AS last",
    ),
  };

  return {
    /** The zone whose days the daily rollups hold (the home's, once the server has started). */
    zone: rollups.zone,
    /** Raw readings before this time may have been deleted by retention (-Infinity: none were). */
    horizon: rollups.horizon,
    /** A device's rollup rows of `tier` with a bucket start in [from, to), oldest first. */
    rollupRange: (tier: Tier, deviceId: number, from: number, to: number): BucketAgg[] => {
      const rows = q.range[tier].all(deviceId, from, to);
      return held ? withHeld(rows, held.rows(tier, deviceId, from, to)) : rows;
    },
    /** The time of a device's first reading in [from, to): the first raw one, else (before the raw horizon) the start of its first hourly rollup row there; null when it has none. */
    firstReading(deviceId: number, from: number, to: number): number | null {
      const raw = q.firstRaw.get(deviceId, from, to)?.ts ?? null;
      if (from >= rollups.horizon()) return raw;
      const hour = q.firstHour.get(deviceId, Math.floor(from / 3_600_000) * 3_600_000, to)?.b ?? null;
      if (hour === null) return raw;
      const first = Math.max(hour, from);
      return raw === null ? first : Math.min(raw, first);
    },
    /** A device's hourly rollup row of the hour starting at `b`, or null. */
    rollupHour: (deviceId: number, b: number): BucketAgg | null => {
      const row = q.hourRow.get(deviceId, b);
      const extra = held?.rows("hour", deviceId, b, b + 1) ?? [];
      return extra.length ? withHeld(row ? [row] : [], extra)[0]! : row;
    },
    /** A device's raw readings in [from, to), oldest first, as [ts, t, h] (no object per row). */
    rawSpan: (deviceId: number, from: number, to: number) => q.rawSpan.values(deviceId, from, to) as [number, number, number][],
    /** A device's newest `limit` raw readings in [from, to), newest first. */
    rawNewest: (deviceId: number, from: number, to: number, limit: number): RawRow[] =>
      q.rawNewest.all(deviceId, from, to, limit),
    /** The placements in a room that overlap [from, to), oldest first. */
    roomPlacements: (roomId: number, from: number, to: number): RoomPlacement[] => q.roomPlacements.all(roomId, from, to),
    /**
     * The start of the first and of the last day (home time zone) a device has
     * readings in, or null when it has none: what an export of an unbounded
     * range actually covers.
     */
    daySpan: (deviceId: number): { first: number; last: number } | null => {
      const row = q.daySpan.get(deviceId);
      return row?.first == null || row.last == null ? null : { first: row.first, last: row.last };
    },
    /** What statistics need of a device, or null when it is gone. */
    deviceInfo: (deviceId: number): DeviceInfo | null => q.deviceInfo.get(deviceId),

    /**
     * Opens a reader for one export. A file database gets a read-only
     * connection of its own: an export can take minutes on a Pi, and a
     * long-running SELECT on the server's connection would see (or trip over)
     * the rows ingestion inserts meanwhile; its own connection reads one
     * consistent WAL snapshot without blocking the writer.
     */
    openRawReader(): RawReader {
      const file = db.filename;
      const own = file && file !== ":memory:" ? new Database(file, { readonly: true, strict: true }) : null;
      own?.exec("PRAGMA busy_timeout = 5000");
      const conn = own ?? db;
      return {
        rows(deviceId, from, to) {
          // prepare, not query: each cursor needs its own statement to iterate side by side.
          return conn
            .prepare<RawRow, [number, number, number]>(
              "SELECT ts, t, h FROM readings WHERE device_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
            )
            .iterate(deviceId, from, to);
        },
        close: () => own?.close(),
      };
    },
  };
}

/** The history queries' interface. */
export type HistoryQueries = ReturnType<typeof createHistoryQueries>;
