// Queries over stored readings: the latest per device, a device's readings
// over a range, and a room's readings over a range following placements
// (a device moved at 12:00 counts for room A before and room B after).

import type { Database } from "bun:sqlite";
import { fromCenti } from "./store.ts";

/** Aggregation of a series: raw readings, or hourly/daily buckets (UTC). */
export type Bucket = "raw" | "hour" | "day";

/** Bucket widths in ms. Days are UTC days: epoch ms are UTC, and a UTC day is 86 400 000 ms. */
export const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

/**
 * Chooses the tier for a chart over [from, to] with at most `points` points:
 * raw while the raw readings fit (at the given typical interval), else hourly,
 * else daily buckets.
 */
export function chooseBucket(from: number, to: number, points: number, intervalMs = 60_000): Bucket {
  const span = Math.max(0, to - from);
  if (span / intervalMs <= points) return "raw";
  if (span / BUCKET_MS.hour <= points) return "hour";
  return "day";
}

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

const round2 = (v: number) => Math.round(v * 100) / 100;

interface RawRow {
  device_uid: string;
  ts: number;
  t: number;
  h: number;
}
interface AggRow {
  b: number;
  t: number;
  t_min: number;
  t_max: number;
  h: number;
  h_min: number;
  h_max: number;
  n: number;
}

const toRaw = (r: RawRow): RawPoint => ({
  device_uid: r.device_uid,
  ts: r.ts,
  temperature: fromCenti(r.t),
  humidity: fromCenti(r.h),
});
const toBucket = (r: AggRow): BucketPoint => ({
  ts: r.b,
  temperature: round2(fromCenti(r.t)),
  temperature_min: fromCenti(r.t_min),
  temperature_max: fromCenti(r.t_max),
  humidity: round2(fromCenti(r.h)),
  humidity_min: fromCenti(r.h_min),
  humidity_max: fromCenti(r.h_max),
  count: r.n,
});

// The readings of the devices placed in room ?1 over [from ?2, to ?3], each
// over its placement interval [from_ts, to_ts).
const ROOM_READINGS = `
  FROM placements p
  JOIN devices d ON d.id = p.device_id
  JOIN readings r ON r.device_id = p.device_id
   AND r.ts >= max(p.from_ts, ?2) AND r.ts <= ?3 AND (p.to_ts IS NULL OR r.ts < p.to_ts)
  WHERE p.room_id = ?1 AND p.from_ts <= ?3 AND (p.to_ts IS NULL OR p.to_ts > ?2)`;

// Mean, min and max per bucket of width ?W (integer division floors epoch ms to the bucket start).
const aggColumns = (w: string) => `(r.ts / ${w}) * ${w} AS b, avg(r.t) AS t, min(r.t) AS t_min, max(r.t) AS t_max,
  avg(r.h) AS h, min(r.h) AS h_min, max(r.h) AS h_max, count(*) AS n`;

/** Creates the reading queries over an open database. */
export function createReadings(db: Database) {
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
    deviceAgg: db.query<AggRow, [number, number, number, number, number]>(
      `SELECT ${aggColumns("?5")} FROM readings r
       WHERE r.device_id = ?1 AND r.ts >= ?2 AND r.ts <= ?3
       GROUP BY b ORDER BY b DESC LIMIT ?4`,
    ),
    roomRaw: db.query<RawRow, [number, number, number, number]>(
      `SELECT d.uid AS device_uid, r.ts, r.t, r.h ${ROOM_READINGS} ORDER BY r.ts DESC, d.uid LIMIT ?4`,
    ),
    roomAgg: db.query<AggRow, [number, number, number, number, number]>(
      `SELECT ${aggColumns("?4")} ${ROOM_READINGS} GROUP BY b ORDER BY b DESC LIMIT ?5`,
    ),
  };

  return {
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
      return q.deviceAgg.all(deviceId, query.from, query.to, query.limit, BUCKET_MS[query.bucket]).map(toBucket);
    },
    /** A room's readings or buckets over a range, following placements, newest first. */
    room(roomId: number, query: RangeQuery): RawPoint[] | BucketPoint[] {
      if (query.bucket === "raw") {
        return q.roomRaw.all(roomId, query.from, query.to, query.limit).map(toRaw);
      }
      return q.roomAgg.all(roomId, query.from, query.to, BUCKET_MS[query.bucket], query.limit).map(toBucket);
    },
  };
}

/** The reading queries' interface. */
export type Readings = ReturnType<typeof createReadings>;
