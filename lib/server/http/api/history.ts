// API routes for long-term history: statistics per day/week/month and
// streamed exports (CSV or JSON), for a device or a room. Mounted under
// /api/v1 (api.ts); the chart series are in readings.ts. All of them read the
// rollups through lib/server/history/.

import { Elysia, t, type Static } from "elysia";
import { EXPORT_FORMATS, type Exporter } from "../../history/export.ts";
import type { Target } from "../../history/history.ts";
import { PERIODS, type Period, type PeriodStats, type Stats, type ValueStats } from "../../history/stats.ts";
import type { Store } from "../../store/store.ts";
import { BUCKETS, choiceParam, iso, range, rangeParams } from "../params.ts";

const DAY = 86_400_000;
/** Default statistics range per period: 30 days, 12 weeks, 12 months. */
const DEFAULT_SPAN: Record<Period, number> = { day: 30 * DAY, week: 12 * 7 * DAY, month: 365 * DAY };

/** `?period&from&to` of `/stats`. */
const statsQuery = t.Object({ period: t.Optional(choiceParam("period", PERIODS)), ...rangeParams() });

/** `?format&bucket&from&to` of `/export`. */
const exportQuery = t.Object({
  format: t.Optional(choiceParam("format", EXPORT_FORMATS)),
  bucket: t.Optional(choiceParam("bucket", BUCKETS)),
  ...rangeParams(),
});

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
  /** Statistics per period (default day) over a range that defaults to the period's span up to now. */
  function statsAnswer(
    about: { device: string } | { room: string },
    query: Static<typeof statsQuery>,
    compute: (q: { from: number; to: number; period: Period; now: number }) => PeriodStats[],
  ) {
    const now = store.now();
    const period = query.period ?? "day";
    const { from, to } = range(query, { from: now - DEFAULT_SPAN[period], to: now });
    const periods = compute({ from, to, period, now });
    return { data: { ...about, period, from: iso(from), to: iso(to), periods: periods.map(periodJson) } };
  }

  /** A download of the whole range (default everything up to now), streamed. */
  function exportResponse(target: Target, name: string, query: Static<typeof exportQuery>) {
    const format = query.format ?? "csv";
    const bucket = query.bucket ?? "raw";
    const { from, to } = range(query, { from: 0, to: store.now() });
    const body = exporter.stream(target, { from, to, bucket, format });
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const file = `${name}-${bucket}-${day(from)}-${day(to)}.${format}`;
    return new Response(body, {
      headers: {
        "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/json; charset=utf-8",
        "content-disposition": `attachment; filename="${file}"`,
        "access-control-allow-origin": "*",
      },
    });
  }

  // The device or room is looked up before the query is checked (`derive` runs
  // first): an unknown one is a 404 whatever else is wrong with the request.
  const devices = new Elysia({ prefix: "/devices/:uid" })
    .derive(({ params }) => ({ device: store.getDevice(params.uid) }))
    .get("/stats", ({ device, query }) => statsAnswer({ device: device.uid }, query, (q) => stats.device(device.id, q)), {
      query: statsQuery,
    })
    .get(
      "/export",
      ({ device, query }) => exportResponse({ kind: "device", id: device.id, uid: device.uid }, device.uid, query),
      {
        query: exportQuery,
      },
    );

  const rooms = new Elysia({ prefix: "/rooms/:uid" })
    .derive(({ params }) => ({ room: store.getRoom(params.uid) }))
    .get("/stats", ({ room, query }) => statsAnswer({ room: room.uid }, query, (q) => stats.room(room.id, q)), {
      query: statsQuery,
    })
    .get("/export", ({ room, query }) => exportResponse({ kind: "room", id: room.id }, room.uid, query), { query: exportQuery });

  return new Elysia().use(devices).use(rooms);
}
