// Queries over stored readings: the latest per device, a device's readings
// over a range, and a room's readings over a range following placements
// (a device moved at 12:00 counts for room A before and room B after).

import type { Database } from "bun:sqlite";
import { createHistory } from "./history.ts";
import { createStats } from "./stats.ts";
import { fromCenti } from "../store/store.ts";

/** Aggregation of a series: raw readings, or hourly/daily buckets (UTC). */
export type Bucket = "raw" | "hour" | "day";

/** Bucket widths in ms. Days are UTC days: epoch ms are UTC, and a UTC day is 86 400 000 ms. */
export const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

/** A range query: inclusive bounds in epoch ms, most `limit` points, newest first. */
export interface RangeQuery {
  from: number;
  to: number;
  limit: number;
  bucket: Bucket;
}

/** A raw point. */
export interface RawPoint {
  device_uid: string;
  ts: number;
  temperature: number;
  humidity: number;
}

/** An aggregated point: `ts` is the bucket start; mean, min and max of each value. */
export interface BucketPoint {
  ts: number;
  temperature: number;
  temperature_min: number;
  temperature_max: number;
  humidity: number;
  humidity_min: number;
  humidity_max: number;
  count: number;
}

/** The latest reading of one device, with the room it was in at that moment. */
export interface LatestReading {
  device_uid: string;
  room_uid: string | null;
  ts: number;
  temperature: number;
  humidity: number;
}

interface RawRow {
  device_uid: string;
  ts: number;
  t: number;
  h: number;
}

const toRaw = (r: RawRow): RawPoint => ({
  device_uid: r.device_uid,
  ts: r.ts,
  temperature: fromCenti(r.t),
  humidity: fromCenti(r.h),
});
/**
 * Creates the reading queries over an open database. Buckets and room series
 * come from the rollups (lib/server/history/history.ts); `history` (charts that choose their
 * tier) and `stats` (per day/week/month, e.g. `stats.room(roomId, { from, to,
 * period })`) are exposed for the API and the pages.
 */
export function createReadings(db: Database) {
  const history = createHistory(db);
  const stats = createStats(db, history);
  const q = {
    latestOfDevice: db.query<{ ts: number; t: number; h: number }, [number]>(
      "SELECT ts, t, h FROM readings WHERE device_id = ? ORDER BY ts DESC LIMIT 1",
    ),
    roomAt: db.query<{ uid: string }, [number, number]>(
      `SELECT r.uid FROM placements p JOIN rooms r ON r.id = p.room_id
       WHERE p.device_id = ?1 AND p.from_ts <= ?2 AND (p.to_ts IS NULL OR p.to_ts > ?2)`,
    ),
    deviceRaw: db.query<RawRow, [number, number, number, number]>(
      `SELECT d.uid AS device_uid, r.ts, r.t, r.h FROM readings r JOIN devices d ON d.id = r.device_id
       WHERE r.device_id = ?1 AND r.ts >= ?2 AND r.ts <= ?3 ORDER BY r.ts DESC LIMIT ?4`,
    ),
  };

  return {
    history,
    stats,
    /** The latest reading of a device, or null when it has none. */
    latest(deviceId: number, deviceUid: string): LatestReading | null {
      const row = q.latestOfDevice.get(deviceId);
      if (!row) return null;
      return {
        device_uid: deviceUid,
        room_uid: q.roomAt.get(deviceId, row.ts)?.uid ?? null,
        ts: row.ts,
        temperature: fromCenti(row.t),
        humidity: fromCenti(row.h),
      };
    },
    /** A device's readings or buckets over a range, newest first. */
    device(deviceId: number, query: RangeQuery): RawPoint[] | BucketPoint[] {
      if (query.bucket === "raw") return q.deviceRaw.all(deviceId, query.from, query.to, query.limit).map(toRaw);
      return history.series({ kind: "device", id: deviceId, uid: "" }, query);
    },
    /** A room's readings or buckets over a range, following placements, newest first. */
    room: (roomId: number, query: RangeQuery): RawPoint[] | BucketPoint[] => history.series({ kind: "room", id: roomId }, query),
  };
}

/** The reading queries' interface. */
export type Readings = ReturnType<typeof createReadings>;

// ---- Recent readings for the dashboard (lib/server/live/live.ts, web pages) ----
// Kept apart from the chart queries above: the dashboard fills an in-memory
// summary per device once from these, then keeps it current from each commit.

/** One device's readings over one slot, values in hundredths. */
export interface RecentSlot {
  /** Slot start (epoch ms, a multiple of the slot width). */
  b: number;
  n: number;
  t_sum: number;
  t_min: number;
  t_max: number;
  h_sum: number;
  h_min: number;
  h_max: number;
}

/** Queries for a device's last readings and recent slots. */
export function createRecentQueries(db: Database) {
  const q = {
    lastTwo: db.query<{ ts: number; t: number; h: number }, [number]>(
      "SELECT ts, t, h FROM readings WHERE device_id = ? ORDER BY ts DESC LIMIT 2",
    ),
    // Integer division floors epoch ms to the slot start (ts ≥ 0 here).
    slots: db.query<RecentSlot, [number, number, number]>(
      `SELECT (ts / ?3) * ?3 AS b, count(*) AS n, sum(t) AS t_sum, min(t) AS t_min, max(t) AS t_max,
         sum(h) AS h_sum, min(h) AS h_min, max(h) AS h_max
       FROM readings WHERE device_id = ?1 AND ts >= ?2 GROUP BY b ORDER BY b`,
    ),
  };
  return {
    /** The device's two newest readings, newest first (values in hundredths). */
    lastTwo: (deviceId: number) => q.lastTwo.all(deviceId),
    /** The device's readings since `from`, per slot of `widthMs`, oldest first. */
    slots: (deviceId: number, from: number, widthMs: number): RecentSlot[] => q.slots.all(deviceId, Math.max(0, from), widthMs),
  };
}

/** The recent-readings queries' interface. */
export type RecentQueries = ReturnType<typeof createRecentQueries>;
