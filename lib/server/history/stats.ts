// Statistics per day, week or month for a device or a room: min and max with
// when they happened, mean, and coverage = readings received ÷ readings
// expected from the interval the device announced, in %.
//
// Periods are the home's (lib/server/history/zone.ts: days start at local
// midnight, weeks on Monday, months on the 1st; a DST day has 23 or 25 hours
// and expects that many hours of readings), like the daily rollups they are
// computed from. Each period is clipped to the asked range, and its
// expectation to the time since the device's first reading in the room (or
// its placement there, whichever is later: a sensor back-filling a week of
// history before anyone placed it is not a 2790 % coverage) and to now, so
// today's coverage is not diluted by hours that have not happened yet.
// Coverage never shows above 100 % (a sensor reporting faster than it
// announced). The interval is the one the device announces in its status
// message (or, before it has announced one, the one the server configured);
// with neither, coverage is null.

import { invalid } from "../../shared/errors.ts";
import type { History, Segment, Target } from "./history.ts";
import { copyAgg, mergeInto, type Agg } from "./aggregate.ts";
import type { Zone } from "./zone.ts";
import type { DeviceInfo, HistoryQueries } from "../store/store.ts";

/** A statistics period. */
export type Period = "day" | "week" | "month";
/** The statistics periods, shortest first. */
export const PERIODS: Period[] = ["day", "week", "month"];

/** Most periods one request may ask for. */
export const MAX_PERIODS = 1000;

/** Start of the home's day, ISO week (Monday) or month holding `ts`. */
export function periodStart(ts: number, period: Period, zone: Zone): number {
  if (period === "day") return zone.startOfDay(ts);
  if (period === "week") return zone.startOfWeek(ts);
  return zone.startOfMonth(ts);
}

/** Start of the period after the one starting at `start`. */
export function nextPeriod(start: number, period: Period, zone: Zone): number {
  if (period === "day") return zone.nextDay(start);
  if (period === "week") {
    let next = start;
    for (let i = 0; i < 7; i++) next = zone.nextDay(next);
    return next;
  }
  return zone.nextMonth(start);
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
export function createStats(queries: Pick<HistoryQueries, "deviceInfo" | "firstReading">, history: History) {
  const zone = history.zone;
  /** Readings expected in [from, to) over the segments, or null when a device's interval is unknown. */
  function expected(
    segs: Segment[],
    from: number,
    to: number,
    now: number,
    info: (id: number) => DeviceInfo | null,
    first: (s: Segment) => number | null,
  ): number | null {
    let total = 0;
    for (const s of segs) {
      const d = info(s.deviceId);
      const interval = d?.interval_s ?? d?.config_interval_s ?? null;
      if (!d || interval === null || interval <= 0) return null;
      const since = first(s);
      if (since === null) continue;
      const span = Math.min(s.to, to, now) - Math.max(since, from);
      if (span > 0) total += span / (interval * 1000);
    }
    return total;
  }

  /**
   * Statistics per period. The daily buckets of the whole range are computed
   * once (exact at the range's ends and at moves, see lib/server/history/history.ts), then
   * merged into days, weeks or months: weeks and months are whole local days.
   */
  function compute(target: Target, query: StatsQuery): PeriodStats[] {
    const now = query.now ?? Date.now();
    const end = query.to + 1;
    const starts: number[] = [];
    for (let start = periodStart(query.from, query.period, zone); start < end; start = nextPeriod(start, query.period, zone)) {
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
    // Each segment's first reading (its own first one in the room, from the placement on).
    const firsts = new Map<Segment, number | null>();
    const first = (s: Segment) => {
      if (!firsts.has(s)) firsts.set(s, queries.firstReading(s.deviceId, s.placedFrom ?? -8.64e15, s.to));
      return firsts.get(s)!;
    };
    let next = 0;
    return starts.map((start) => {
      const periodEnd = nextPeriod(start, query.period, zone);
      const from = Math.max(start, query.from);
      const to = Math.min(periodEnd, end);
      let agg: Agg | null = null;
      for (; next < days.length && days[next]!.b < periodEnd; next++) {
        if (agg) mergeInto(agg, days[next]!);
        else agg = copyAgg(days[next]!);
      }
      const exp = expected(segs, from, to, now, info, first);
      const count = agg?.n ?? 0;
      return {
        period_start: start,
        from,
        to,
        count,
        expected: exp === null ? null : Math.round(exp),
        coverage_pct: exp === null || exp <= 0 ? null : Math.min(100, round((count / exp) * 100, 1)),
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
