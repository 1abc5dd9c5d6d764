// Statistics per day, week or month for a device or a room: min and max with
// when they happened, mean, and coverage = readings received ÷ readings
// expected from the interval the device announced, in %.
//
// Periods are UTC (days start at 00:00 UTC, weeks on Monday, months on the
// 1st), like the rollups they are computed from. Each period is clipped to
// the asked range, and its expectation to the time the device existed
// (created_at), was in the room (placements) and to now, so today's coverage
// is not diluted by hours that have not happened yet. The interval is the one
// the device announces in its status message (or, before it has announced
// one, the one the server configured); with neither, coverage is null.

import { invalid } from "../../shared/errors.ts";
import type { History, Segment, Target } from "./history.ts";
import { copyAgg, floorTo, mergeInto, TIER_MS, type Agg } from "./aggregate.ts";
import type { DeviceInfo, HistoryQueries } from "../store/store.ts";

/** A statistics period. */
export type Period = "day" | "week" | "month";
/** The statistics periods, shortest first. */
export const PERIODS: Period[] = ["day", "week", "month"];

/** Most periods one request may ask for. */
export const MAX_PERIODS = 1000;

const DAY = TIER_MS.day;

/** Start of the UTC day, ISO week (Monday) or month holding `ts`. */
export function periodStart(ts: number, period: Period): number {
  const day = floorTo(ts, DAY);
  if (period === "day") return day;
  const d = new Date(day);
  if (period === "week") return day - ((d.getUTCDay() + 6) % 7) * DAY;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** Start of the period after the one starting at `start`. */
export function nextPeriod(start: number, period: Period): number {
  if (period === "day") return start + DAY;
  if (period === "week") return start + 7 * DAY;
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** Min, max (each with its time) and mean of one value. */
export interface ValueStats {
  min: number;
  min_at: number;
  max: number;
  max_at: number;
  mean: number;
}

/** The statistics of one period. */
export interface PeriodStats {
  /** Start of the day, week or month (its label). */
  period_start: number;
  /** What was covered: the period clipped to the range, [from, to). */
  from: number;
  to: number;
  /** Readings received. */
  count: number;
  /** Readings expected from the announced interval, or null when an interval is unknown. */
  expected: number | null;
  /** count ÷ expected in %, one decimal; null when nothing was expected or it is unknown. */
  coverage_pct: number | null;
  temperature: ValueStats | null;
  humidity: ValueStats | null;
}

/** A statistics query: [from, to] inclusive like the API's ranges; `now` clips expectations. */
export interface StatsQuery {
  from: number;
  to: number;
  period: Period;
  now?: number;
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

function valueStats(a: Agg, v: "t" | "h"): ValueStats {
  return {
    min: a[`${v}_min`] / 100,
    min_at: a[`${v}_min_ts`],
    max: a[`${v}_max`] / 100,
    max_at: a[`${v}_max_ts`],
    mean: round(a[`${v}_sum`] / a.n / 100, 2),
  };
}

/** Creates the statistics over the store's history queries and the history built on them. */
export function createStats(queries: Pick<HistoryQueries, "deviceInfo">, history: History) {
  /** Readings expected in [from, to) over the segments, or null when a device's interval is unknown. */
  function expected(
    segs: Segment[],
    from: number,
    to: number,
    now: number,
    info: (id: number) => DeviceInfo | null,
  ): number | null {
    let total = 0;
    for (const s of segs) {
      const d = info(s.deviceId);
      const interval = d?.interval_s ?? d?.config_interval_s ?? null;
      if (!d || interval === null || interval <= 0) return null;
      const span = Math.min(s.to, to, now) - Math.max(s.from, from, d.created_at);
      if (span > 0) total += span / (interval * 1000);
    }
    return total;
  }

  /**
   * Statistics per period. The daily buckets of the whole range are computed
   * once (exact at the range's ends and at moves, see lib/server/history/history.ts), then
   * merged into days, weeks or months: weeks and months are whole UTC days.
   */
  function compute(target: Target, query: StatsQuery): PeriodStats[] {
    const now = query.now ?? Date.now();
    const end = query.to + 1;
    const starts: number[] = [];
    for (let start = periodStart(query.from, query.period); start < end; start = nextPeriod(start, query.period)) {
      if (starts.length >= MAX_PERIODS) {
        throw invalid(
          "from",
          `the range holds more than ${MAX_PERIODS} ${query.period}s; use a longer period or a shorter range`,
        );
      }
      starts.push(start);
    }
    const segs = history.segments(target, query.from, end);
    const days = history.combinedBuckets(segs, "day");
    const infos = new Map<number, DeviceInfo | null>();
    const info = (id: number) => {
      if (!infos.has(id)) infos.set(id, queries.deviceInfo(id));
      return infos.get(id)!;
    };
    let next = 0;
    return starts.map((start) => {
      const periodEnd = nextPeriod(start, query.period);
      const from = Math.max(start, query.from);
      const to = Math.min(periodEnd, end);
      let agg: Agg | null = null;
      for (; next < days.length && days[next]!.b < periodEnd; next++) {
        if (agg) mergeInto(agg, days[next]!);
        else agg = copyAgg(days[next]!);
      }
      const exp = expected(segs, from, to, now, info);
      const count = agg?.n ?? 0;
      return {
        period_start: start,
        from,
        to,
        count,
        expected: exp === null ? null : Math.round(exp),
        coverage_pct: exp === null || exp <= 0 ? null : round((count / exp) * 100, 1),
        temperature: agg ? valueStats(agg, "t") : null,
        humidity: agg ? valueStats(agg, "h") : null,
      };
    });
  }

  return {
    /** A device's statistics per period over [from, to]. */
    device: (deviceId: number, query: StatsQuery): PeriodStats[] => compute({ kind: "device", id: deviceId, uid: "" }, query),
    /** A room's statistics per period over [from, to], following placements (all its devices together). */
    room: (roomId: number, query: StatsQuery): PeriodStats[] => compute({ kind: "room", id: roomId }, query),
  };
}

/** The statistics' interface. */
export type Stats = ReturnType<typeof createStats>;
