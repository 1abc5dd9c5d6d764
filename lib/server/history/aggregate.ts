// The maths of aggregates: count, sum (mean = sum / count), and the min and
// max of each value with the time it was first reached, values in hundredths.
// Every field is a merge (count and sum add, min/max compare), so aggregates
// combine in any order: readings into an hourly bucket, hours into a day, days
// into a statistics period. Pure functions, no storage: the store keeps
// aggregates as rollup rows (lib/server/store/rollups.ts) with the same merge
// rule in SQL, and lib/server/history/ computes with them.

/** The rollup tiers and their widths in ms (UTC: epoch ms are UTC, a UTC day is 86 400 000 ms). */
export const TIER_MS = { hour: 3_600_000, day: 86_400_000 } as const;
/** An aggregated tier. */
export type Tier = keyof typeof TIER_MS;
/** The aggregated tiers, finest first. */
export const TIERS: Tier[] = ["hour", "day"];

/** An aggregate of readings, values in hundredths. Min/max times are the first time the value was reached. */
export interface Agg {
  n: number;
  t_sum: number;
  t_min: number;
  t_min_ts: number;
  t_max: number;
  t_max_ts: number;
  h_sum: number;
  h_min: number;
  h_min_ts: number;
  h_max: number;
  h_max_ts: number;
}

/** An aggregate of one device's bucket (as stored in rollup_hour / rollup_day). */
export interface BucketAgg extends Agg {
  b: number;
}

/** Start of the bucket of width `w` holding `ts` (floor, also for times before 1970). */
export const floorTo = (ts: number, w: number) => Math.floor(ts / w) * w;
/** First bucket boundary of width `w` at or after `ts`. */
export const ceilTo = (ts: number, w: number) => Math.ceil(ts / w) * w;

/** The aggregate of a single reading. */
export const single = (ts: number, t: number, h: number): Agg => ({
  n: 1,
  t_sum: t,
  t_min: t,
  t_min_ts: ts,
  t_max: t,
  t_max_ts: ts,
  h_sum: h,
  h_min: h,
  h_min_ts: ts,
  h_max: h,
  h_max_ts: ts,
});

/** Adds one reading into `a` in place. */
export function addReading(a: Agg, ts: number, t: number, h: number): void {
  a.n++;
  a.t_sum += t;
  a.h_sum += h;
  if (t < a.t_min || (t === a.t_min && ts < a.t_min_ts)) ((a.t_min = t), (a.t_min_ts = ts));
  if (t > a.t_max || (t === a.t_max && ts < a.t_max_ts)) ((a.t_max = t), (a.t_max_ts = ts));
  if (h < a.h_min || (h === a.h_min && ts < a.h_min_ts)) ((a.h_min = h), (a.h_min_ts = ts));
  if (h > a.h_max || (h === a.h_max && ts < a.h_max_ts)) ((a.h_max = h), (a.h_max_ts = ts));
}

/** Merges `b` into `a` in place (the same rule as the rollups' SQL upsert, lib/server/store/rollups.ts). */
export function mergeInto(a: Agg, b: Agg): void {
  a.n += b.n;
  a.t_sum += b.t_sum;
  a.h_sum += b.h_sum;
  if (b.t_min < a.t_min || (b.t_min === a.t_min && b.t_min_ts < a.t_min_ts)) ((a.t_min = b.t_min), (a.t_min_ts = b.t_min_ts));
  if (b.t_max > a.t_max || (b.t_max === a.t_max && b.t_max_ts < a.t_max_ts)) ((a.t_max = b.t_max), (a.t_max_ts = b.t_max_ts));
  if (b.h_min < a.h_min || (b.h_min === a.h_min && b.h_min_ts < a.h_min_ts)) ((a.h_min = b.h_min), (a.h_min_ts = b.h_min_ts));
  if (b.h_max > a.h_max || (b.h_max === a.h_max && b.h_max_ts < a.h_max_ts)) ((a.h_max = b.h_max), (a.h_max_ts = b.h_max_ts));
}

/** A copy of an aggregate (merging into a copy leaves stored rows untouched). */
export const copyAgg = (a: Agg): Agg => ({
  n: a.n,
  t_sum: a.t_sum,
  t_min: a.t_min,
  t_min_ts: a.t_min_ts,
  t_max: a.t_max,
  t_max_ts: a.t_max_ts,
  h_sum: a.h_sum,
  h_min: a.h_min,
  h_min_ts: a.h_min_ts,
  h_max: a.h_max,
  h_max_ts: a.h_max_ts,
});
