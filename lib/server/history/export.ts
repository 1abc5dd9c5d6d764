// Export of a device's or a room's history as CSV or JSON, raw or per
// hour/day, STREAMED: rows are read with `stmt.iterate()` a chunk at a time
// as the client takes them (ReadableStream pull), so years of readings go out
// in constant memory.
//
// Raw rows are read on one consistent snapshot of the database (the store's
// raw reader, lib/server/store/history-queries.ts). A room's raw rows are a
// k-way merge of its placement segments, each read in primary-key order, so
// nothing is sorted in memory or in a temp b-tree.
//
// CSV: RFC 4180 (comma, CRLF), a header row, values with a dot as decimal
// separator, UTF-8. Buckets carry their start time, the mean, min and max of
// each value and the count, like the chart endpoints.
//
// Times: `ts` stays ISO-8601 UTC (what scripts read), and each row also
// carries `local_time`, the same instant in the home's zone with its offset
// (2026-11-30T00:30:00+01:00): what a person reads in a spreadsheet. The JSON
// names the zone (`time_zone`). Daily buckets are the home's days.

import { bucketPoint, type Bucket, type History, type Segment, type Target } from "./history.ts";
import { floorTo, TIER_MS } from "./aggregate.ts";
import type { HistoryQueries, RawReader, RawRow } from "../store/store.ts";

/** An export format. */
export type ExportFormat = "csv" | "json";
/** The export formats (csv is the default). */
export const EXPORT_FORMATS: ExportFormat[] = ["csv", "json"];

/** What to export: [from, to] inclusive like the API's ranges. */
export interface ExportQuery {
  from: number;
  to: number;
  bucket: Bucket;
  format: ExportFormat;
}

/** The CSV header of raw rows. */
export const RAW_COLUMNS = ["device_id", "ts", "temperature", "humidity", "local_time"] as const;
/** The CSV header of bucket rows. */
export const BUCKET_COLUMNS = [
  "ts",
  "temperature",
  "temperature_min",
  "temperature_max",
  "humidity",
  "humidity_min",
  "humidity_max",
  "count",
  "local_time",
] as const;

/** Rows per chunk handed to the stream (~12 KB): bigger chunks are bigger short-lived strings, and the peak RSS grows with them. */
const ROWS_PER_CHUNK = 200;
/** Buckets computed per step of an aggregated export. */
const BUCKETS_PER_STEP = 1000;

const iso = (ms: number) => new Date(ms).toISOString();

/** One segment's raw rows in ts order, with the device they belong to. */
interface Cursor {
  uid: string;
  it: IterableIterator<RawRow>;
  head: RawRow | null;
}

function advance(c: Cursor): void {
  const next = c.it.next();
  c.head = next.done ? null : next.value;
}

/** Creates the exporter over the store's history queries and the history built on them. */
export function createExport(queries: Pick<HistoryQueries, "openRawReader" | "daySpan">, history: History) {
  const zone = history.zone;
  /**
   * [from, end) narrowed to the days that hold readings of the target (two
   * index seeks per device), so that `from=0&to=8640000000000000` walks the
   * months of data there are instead of 2.4 million empty windows.
   */
  function dataBounds(target: Target, from: number, end: number): { from: number; end: number } {
    let first = Infinity;
    let last = -Infinity;
    for (const seg of history.segments(target, from, end)) {
      const span = queries.daySpan(seg.deviceId);
      if (!span) continue;
      // A day bucket starts at local midnight; 26 h covers the longest day (a DST change).
      first = Math.min(first, Math.max(seg.from, span.first));
      last = Math.max(last, Math.min(seg.to, span.last + 26 * 3600_000));
    }
    return first < last ? { from: Math.max(from, first), end: Math.min(end, last) } : { from, end: from };
  }

  /** Raw rows of the segments merged by time, as CSV or JSON text lines (without separators). */
  function rawLines(segs: Segment[], format: ExportFormat): { next(): string | null; close(): void } {
    let reader: RawReader | null = null;
    let cursors: Cursor[] | null = null;
    const close = () => {
      for (const c of cursors ?? []) c.it.return?.();
      cursors = [];
      reader?.close();
      reader = null;
    };
    return {
      next() {
        if (cursors === null) {
          const open = queries.openRawReader();
          reader = open;
          cursors = segs.map((s) => {
            const c: Cursor = { uid: s.deviceUid, it: open.rows(s.deviceId, s.from, s.to), head: null };
            advance(c);
            return c;
          });
        }
        let best: Cursor | null = null;
        for (const c of cursors) if (c.head && (!best || c.head.ts < best.head!.ts)) best = c;
        if (!best) {
          close();
          return null;
        }
        const r = best.head!;
        advance(best);
        const t = r.t / 100;
        const h = r.h / 100;
        const local = zone.isoLocal(r.ts);
        return format === "csv"
          ? `${best.uid},${iso(r.ts)},${t},${h},${local}`
          : `{"device_id":${JSON.stringify(best.uid)},"ts":"${iso(r.ts)}","temperature":${t},"humidity":${h},"local_time":"${local}"}`;
      },
      close,
    };
  }

  /** Buckets of the target over [from, end), computed a window of buckets at a time. */
  function bucketLines(target: Target, tier: "hour" | "day", rangeFrom: number, rangeEnd: number, format: ExportFormat) {
    const step = TIER_MS[tier] * BUCKETS_PER_STEP;
    const { from, end } = dataBounds(target, rangeFrom, rangeEnd);
    let windowFrom = from;
    let pending: string[] = [];
    return {
      next(): string | null {
        while (pending.length === 0) {
          if (windowFrom >= end) return null;
          // Windows end on bucket boundaries (UTC hours, local midnights) so only the range's own ends make partial buckets.
          const windowTo = Math.min(end, tier === "hour" ? floorTo(windowFrom, step) + step : zone.startOfDay(windowFrom + step));
          const rows = history.combinedBuckets(history.segments(target, windowFrom, windowTo), tier).map(bucketPoint);
          pending = rows
            .map((p) =>
              format === "csv"
                ? `${iso(p.ts)},${p.temperature},${p.temperature_min},${p.temperature_max},${p.humidity},${p.humidity_min},${p.humidity_max},${p.count},${zone.isoLocal(p.ts)}`
                : JSON.stringify({ ...p, ts: iso(p.ts), local_time: zone.isoLocal(p.ts) }),
            )
            .reverse();
          windowFrom = windowTo;
        }
        return pending.pop()!;
      },
      close() {
        pending = [];
        windowFrom = end;
      },
    };
  }

  /**
   * The export as a byte stream: a header row (CSV) or `{"data":[` (JSON),
   * then rows as the client reads them. Rows are produced only on demand.
   */
  function stream(target: Target, query: ExportQuery): ReadableStream<Uint8Array> {
    const end = query.to + 1;
    const lines =
      query.bucket === "raw"
        ? rawLines(history.segments(target, query.from, end), query.format)
        : bucketLines(target, query.bucket, query.from, end, query.format);
    const encoder = new TextEncoder();
    const csv = query.format === "csv";
    let started = false;
    let first = true;
    return new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          try {
            let text = "";
            if (!started) {
              started = true;
              text = csv
                ? (query.bucket === "raw" ? RAW_COLUMNS : BUCKET_COLUMNS).join(",") + "\r\n"
                : `{"time_zone":${JSON.stringify(zone.name)},"data":[`;
            }
            for (let i = 0; i < ROWS_PER_CHUNK; i++) {
              const line = lines.next();
              if (line === null) {
                if (!csv) text += "]}\n";
                controller.enqueue(encoder.encode(text));
                controller.close();
                return;
              }
              if (csv) text += line + "\r\n";
              else {
                text += (first ? "" : ",") + line;
                first = false;
              }
            }
            controller.enqueue(encoder.encode(text));
          } catch (err) {
            lines.close();
            controller.error(err);
          }
        },
        cancel() {
          lines.close();
        },
      },
      { highWaterMark: 1 },
    );
  }

  return { stream };
}

/** The exporter's interface. */
export type Exporter = ReturnType<typeof createExport>;
