// History over the rollups: aggregates of any interval, buckets of a tier,
// and chart series that choose their tier from a point budget. Pure logic
// over the store's history queries (lib/server/store/history-queries.ts).
//
// A device's history is its rollups. A room's history follows placements: it
// is the union of segments (device, [from, to)) where each segment is one
// placement of one device clipped to the asked range. Rollups are kept per
// device only, so moving a device (even back-dated) never rewrites them.
// A bucket that a segment covers entirely comes from the rollup row; a bucket
// it covers partly (a move at 10:20, or a range starting at 10:20) is computed
// exactly from smaller pieces: whole days from rollup_day, whole hours from
// rollup_hour, the partial hours at the ends from the raw readings. The result
// is the same as a GROUP BY over the raw readings of the room, at a fraction
// of the cost (test/history-*.test.ts checks both).
//
// When retention has deleted the raw readings of a partial hour (its start is
// before the raw horizon), that hour's rollup goes as a whole to the segment
// holding the middle of the hour: each old hour then counts for exactly one
// room, the one the device was in for most of it.

import type { HistoryQueries } from "../store/store.ts";
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
} from "./aggregate.ts";

/** Aggregation of a series: raw readings, or buckets of UTC hours / the home's days. */
export type Bucket = "raw" | Tier;

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

/** A series query (the earlier server's /readings): inclusive bounds in epoch ms, most `limit` points, newest first. */
export interface RangeQuery {
  from: number;
  to: number;
  limit: number;
  bucket: Bucket;
}

/** A chart query: inclusive bounds, a point budget, and a tier or "auto" (chosen from the budget). */
export interface ChartQuery {
  from: number;
  to: number;
  points: number;
  bucket: Bucket | "auto";
}

/** One device over a half-open interval [from, to). */
export interface Segment {
  deviceId: number;
  deviceUid: string;
  from: number;
  to: number;
  /** Where its placement began, before clipping to the range (the device's own history: the beginning of time). */
  placedFrom?: number;
}

/** What a history query is about. */
export type Target = { kind: "device"; id: number; uid: string } | { kind: "room"; id: number };

/** Most points a series returns (explicit tiers keep the newest). */
export const MAX_POINTS = 10_000;

const HOUR = TIER_MS.hour;

const round2 = (v: number) => Math.round(v * 100) / 100;

/** An aggregate in the API's units: a chart bucket point (`ts` = bucket start). */
export const bucketPoint = (r: BucketAgg): BucketPoint => ({
  ts: r.b,
  temperature: round2(r.t_sum / r.n / 100),
  temperature_min: r.t_min / 100,
  temperature_max: r.t_max / 100,
  humidity: round2(r.h_sum / r.n / 100),
  humidity_min: r.h_min / 100,
  humidity_max: r.h_max / 100,
  count: r.n,
});

/** Merges `b` into `a`, either may be null; `a` is modified when not null. */
function merge(a: Agg | null, b: Agg | null): Agg | null {
  if (!b) return a;
  if (!a) return copyAgg(b);
  mergeInto(a, b);
  return a;
}

/** Creates the history over the store's history queries. */
export function createHistory(queries: HistoryQueries) {
  const zone = queries.zone;
  /** The exact aggregate of a device's raw readings in [x, y) (both inside one hour whose raw rows are complete). */
  function rawAggregate(deviceId: number, x: number, y: number): Agg | null {
    let agg: Agg | null = null;
    for (const [ts, t, h] of queries.rawSpan(deviceId, x, y)) {
      if (agg) addReading(agg, ts, t, h);
      else agg = single(ts, t, h);
    }
    return agg;
  }

  /** A piece [x, y) of one hour: exact from raw readings, or the whole hour by the midpoint rule when they are gone. */
  function partialHour(deviceId: number, x: number, y: number, horizon: number): Agg | null {
    const hour = floorTo(x, HOUR);
    if (hour >= horizon) return rawAggregate(deviceId, x, y);
    const middle = hour + HOUR / 2;
    return x <= middle && middle < y ? queries.rollupHour(deviceId, hour) : null;
  }

  /** Merges the rollup rows of `tier` with b in [x, y) (both aligned to the tier). */
  function rollupRange(acc: Agg | null, deviceId: number, tier: Tier, x: number, y: number): Agg | null {
    if (x >= y) return acc;
    for (const row of queries.rollupRange(tier, deviceId, x, y)) acc = merge(acc, row);
    return acc;
  }

  /** The aggregate of [a, b) from hours only: whole hours from rollup_hour, the partial ones from the raw readings. */
  function hoursAggregate(acc: Agg | null, deviceId: number, a: number, b: number, horizon: number): Agg | null {
    if (a >= b) return acc;
    const ha = ceilTo(a, HOUR);
    const hb = floorTo(b, HOUR);
    if (ha > hb) return merge(acc, partialHour(deviceId, a, b, horizon));
    if (a < ha) acc = merge(acc, partialHour(deviceId, a, ha, horizon));
    acc = rollupRange(acc, deviceId, "hour", ha, hb);
    if (hb < b) acc = merge(acc, partialHour(deviceId, hb, b, horizon));
    return acc;
  }

  /**
   * The aggregate of a device's readings in [a, b), exactly: whole (local)
   * days from rollup_day, whole hours from rollup_hour, the partial hours at
   * the ends from the raw readings. Null when it has none there.
   */
  function aggregate(deviceId: number, a: number, b: number, horizon = queries.horizon()): Agg | null {
    if (a >= b) return null;
    const da = zone.ceilDay(a);
    const dz = zone.startOfDay(b);
    if (da >= dz) return hoursAggregate(null, deviceId, a, b, horizon);
    let acc = hoursAggregate(null, deviceId, a, da, horizon);
    acc = rollupRange(acc, deviceId, "day", da, dz);
    return hoursAggregate(acc, deviceId, dz, b, horizon);
  }

  /** Start of the bucket of `tier` holding `ts`, and the first bucket start at or after it. */
  const floorB = (tier: Tier, ts: number) => (tier === "hour" ? floorTo(ts, HOUR) : zone.startOfDay(ts));
  const ceilB = (tier: Tier, ts: number) => (tier === "hour" ? ceilTo(ts, HOUR) : zone.ceilDay(ts));

  /** A segment's buckets of `tier`, oldest first: whole buckets from the rollups, the partial ones at its ends computed. */
  function buckets(seg: Segment, tier: Tier, horizon = queries.horizon()): BucketAgg[] {
    const { deviceId, from: a, to: b } = seg;
    if (a >= b) return [];
    const ca = ceilB(tier, a);
    const fb = floorB(tier, b);
    const out: BucketAgg[] = [];
    if (a < ca) {
      const head = aggregate(deviceId, a, Math.min(ca, b), horizon);
      if (head) out.push({ ...head, b: floorB(tier, a) });
    }
    if (ca < fb) out.push(...queries.rollupRange(tier, deviceId, ca, fb));
    const tailFrom = Math.max(fb, ca);
    if (tailFrom < b) {
      const tail = aggregate(deviceId, tailFrom, b, horizon);
      if (tail) out.push({ ...tail, b: tailFrom });
    }
    return out;
  }

  /** The buckets of several segments merged per bucket start, oldest first (a room's series). */
  function combinedBuckets(segments: Segment[], tier: Tier): BucketAgg[] {
    const horizon = queries.horizon();
    if (segments.length === 1) return buckets(segments[0]!, tier, horizon);
    const byStart = new Map<number, BucketAgg>();
    for (const seg of segments) {
      for (const row of buckets(seg, tier, horizon)) {
        const have = byStart.get(row.b);
        if (have) mergeInto(have, row);
        else byStart.set(row.b, row);
      }
    }
    return [...byStart.values()].sort((x, y) => x.b - y.b);
  }

  /** The segments of a target over [from, to): the device itself, or the room's placements clipped to the range. */
  function segments(target: Target, from: number, to: number): Segment[] {
    if (target.kind === "device") return from < to ? [{ deviceId: target.id, deviceUid: target.uid, from, to }] : [];
    const out: Segment[] = [];
    for (const p of queries.roomPlacements(target.id, from, to)) {
      const seg = {
        deviceId: p.device_id,
        deviceUid: p.uid,
        from: Math.max(from, p.from_ts),
        to: Math.min(to, p.to_ts ?? Infinity),
        placedFrom: p.from_ts,
      };
      if (seg.from < seg.to) out.push(seg);
    }
    return out;
  }

  /** The newest `limit` raw readings of the segments, newest first. */
  function rawNewest(segs: Segment[], limit: number): RawPoint[] {
    const all: RawPoint[] = [];
    for (const s of segs) {
      for (const r of queries.rawNewest(s.deviceId, s.from, s.to, limit)) {
        all.push({ device_uid: s.deviceUid, ts: r.ts, temperature: r.t / 100, humidity: r.h / 100 });
      }
    }
    if (segs.length > 1)
      all.sort((x, y) => y.ts - x.ts || (x.device_uid < y.device_uid ? -1 : x.device_uid > y.device_uid ? 1 : 0));
    return all.length > limit ? all.slice(0, limit) : all;
  }

  /** Readings stored for the segments (from the rollups, so it costs days, not readings). */
  function count(segs: Segment[]): number {
    const horizon = queries.horizon();
    let n = 0;
    for (const s of segs) n += aggregate(s.deviceId, s.from, s.to, horizon)?.n ?? 0;
    return n;
  }

  /**
   * The tier for a chart of [from, to) within `points` points: raw when the
   * readings there fit (and are all still kept), else hourly buckets when the
   * hours fit, else daily buckets (the coarsest tier).
   */
  function chooseTier(segs: Segment[], from: number, to: number, points: number): Bucket {
    if (from >= queries.horizon() && count(segs) <= points) return "raw";
    const hours = floorTo(to - 1, HOUR) / HOUR - floorTo(from, HOUR) / HOUR + 1;
    return hours <= points ? "hour" : "day";
  }

  return {
    /** The home's calendar (the daily rollups' zone). */
    zone,
    aggregate,
    buckets,
    combinedBuckets,
    segments,
    count,
    chooseTier,

    /**
     * A chart series over [from, to] (inclusive, like the API), oldest first.
     * `bucket` "auto" chooses the tier from the `points` budget; an explicit
     * tier returns at most MAX_POINTS points, the newest.
     */
    chart(target: Target, query: ChartQuery): { bucket: Bucket; points: (RawPoint | BucketPoint)[] } {
      const end = query.to + 1;
      const segs = segments(target, query.from, end);
      const bucket = query.bucket === "auto" ? chooseTier(segs, query.from, end, query.points) : query.bucket;
      const limit = query.bucket === "auto" ? Math.max(query.points, MAX_POINTS) : MAX_POINTS;
      if (bucket === "raw") return { bucket, points: rawNewest(segs, limit).reverse() };
      const rows = combinedBuckets(segs, bucket);
      return { bucket, points: (rows.length > limit ? rows.slice(-limit) : rows).map(bucketPoint) };
    },

    /** A series over [from, to] (inclusive), NEWEST first, at most `limit` points (the earlier server's /readings). */
    series(target: Target, query: RangeQuery): RawPoint[] | BucketPoint[] {
      const segs = segments(target, query.from, query.to + 1);
      if (query.bucket === "raw") return rawNewest(segs, query.limit);
      const rows = combinedBuckets(segs, query.bucket);
      const out: BucketPoint[] = [];
      for (let i = rows.length - 1; i >= 0 && out.length < query.limit; i--) out.push(bucketPoint(rows[i]!));
      return out;
    },
  };
}

/** The history's interface. */
export type History = ReturnType<typeof createHistory>;
