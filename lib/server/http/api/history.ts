// API routes for long-term history: statistics per day/week/month and
// streamed exports (CSV or JSON), for a device or a room. Mounted in the
// `/api/v1` group of lib/server/http/api/api.ts. The chart endpoints (`…/history`) stay in
// lib/server/http/api/api.ts; all of them read the rollups through lib/server/history/history.ts.

import { Elysia } from "elysia";
import { EXPORT_FORMATS, type ExportFormat, type Exporter } from "../../history/export.ts";
import type { Target } from "../../history/history.ts";
import { iso, parseBucket, parseChoice, parseRange } from "../params.ts";
import { PERIODS, type Period, type PeriodStats, type Stats, type ValueStats } from "../../history/stats.ts";
import type { Store } from "../../store/store.ts";

const DAY = 86_400_000;
/** Default statistics range per period: 30 days, 12 weeks, 12 months. */
const DEFAULT_SPAN: Record<Period, number> = { day: 30 * DAY, week: 12 * 7 * DAY, month: 365 * DAY };

const valueJson = (v: ValueStats | null) =>
  v && { min: v.min, min_at: iso(v.min_at), max: v.max, max_at: iso(v.max_at), mean: v.mean };

/** The API's JSON for one period of statistics. */
export const periodJson = (p: PeriodStats) => ({
  period_start: iso(p.period_start),
  from: iso(p.from),
  to: iso(p.to),
  count: p.count,
  expected: p.expected,
  coverage_pct: p.coverage_pct,
  temperature: valueJson(p.temperature),
  humidity: valueJson(p.humidity),
});

/** Creates the statistics and export routes. */
export function createHistoryApi({
  store,
  stats,
  exporter,
}: {
  store: Store;
  stats: Pick<Stats, "device" | "room">;
  exporter: Exporter;
}) {
  function statsQuery(query: Record<string, string | undefined>) {
    const now = store.now();
    const period = parseChoice("period", query.period, PERIODS, "day");
    const range = parseRange(query, { from: now - DEFAULT_SPAN[period], to: now });
    return { ...range, period, now };
  }

  const statsAnswer = (
    about: { device: string } | { room: string },
    q: ReturnType<typeof statsQuery>,
    periods: PeriodStats[],
  ) => ({
    data: { ...about, period: q.period, from: iso(q.from), to: iso(q.to), periods: periods.map(periodJson) },
  });

  function exportResponse(target: Target, name: string, query: Record<string, string | undefined>): Response {
    const format = parseChoice<ExportFormat>("format", query.format, EXPORT_FORMATS, "csv");
    const bucket = parseBucket(query.bucket, "raw");
    const range = parseRange(query, { from: 0, to: store.now() });
    const body = exporter.stream(target, { ...range, bucket, format });
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const file = `${name}-${bucket}-${day(range.from)}-${day(range.to)}.${format}`;
    return new Response(body, {
      headers: {
        "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/json; charset=utf-8",
        "content-disposition": `attachment; filename="${file}"`,
        "access-control-allow-origin": "*",
      },
    });
  }

  return new Elysia()
    .get("/devices/:uid/stats", ({ params, query }) => {
      const device = store.getDevice(params.uid);
      const q = statsQuery(query);
      return statsAnswer({ device: device.uid }, q, stats.device(device.id, q));
    })
    .get("/rooms/:uid/stats", ({ params, query }) => {
      const room = store.getRoom(params.uid);
      const q = statsQuery(query);
      return statsAnswer({ room: room.uid }, q, stats.room(room.id, q));
    })
    .get("/devices/:uid/export", ({ params, query }) => {
      const device = store.getDevice(params.uid);
      return exportResponse({ kind: "device", id: device.id, uid: device.uid }, device.uid, query);
    })
    .get("/rooms/:uid/export", ({ params, query }) => {
      const room = store.getRoom(params.uid);
      return exportResponse({ kind: "room", id: room.id }, room.uid, query);
    });
}
