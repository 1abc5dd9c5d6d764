// Query-string parsing shared by the API and the pages. Each parser names the
// field in its error, so a 400 says what to fix.

import { invalid } from "../../shared/errors.ts";
import type { Bucket } from "../history/history.ts";

/** Epoch milliseconds or null → ISO-8601 UTC string or null (the API's time format). */
export const iso = (ms: number | null | undefined): string | null => (ms == null ? null : new Date(ms).toISOString());

// ISO-8601 date or date-time, with optional fraction and zone: 2026-11-28, 2026-11-28T12:00, 2026-11-28T12:00:00.123+01:00
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Parses a time given as ISO-8601 or epoch milliseconds. A time without a zone
 * is taken as UTC (like the earlier server's text comparison did).
 */
export function parseTime(field: string, value: string): number {
  const v = value.trim();
  // Beyond ±8.64e15 ms a JS Date (and so the ISO answer) does not exist.
  if (/^-?\d{1,16}$/.test(v) && Math.abs(Number(v)) <= 8.64e15) return Number(v);
  if (ISO_TIME.test(v)) {
    const zoned = /(?:Z|[+-]\d{2}:?\d{2})$/.test(v) || v.length === 10 ? v : `${v}Z`;
    const ms = Date.parse(zoned);
    if (Number.isFinite(ms)) return ms;
  }
  throw invalid(field, `${JSON.stringify(value)} is not a time; use ISO-8601 (2026-11-28T12:00:00Z) or epoch milliseconds`);
}

/** Parses an optional time; `undefined` when absent. */
export function optionalTime(field: string, value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseTime(field, value);
}

/** Parses a whole number within [min, max]; `fallback` when absent. */
export function parseInteger(field: string, value: string | undefined, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\s*\d+\s*$/.test(value)) throw invalid(field, `${JSON.stringify(value)} is not a whole number (${min}-${max})`);
  const n = Number(value);
  if (n < min || n > max) throw invalid(field, `${n} is outside ${min}-${max}`);
  return n;
}

/** Parses `bucket`: raw, hour or day. */
export function parseBucket(value: string | undefined, fallback: Bucket = "raw"): Bucket {
  if (value === undefined) return fallback;
  if (value === "raw" || value === "hour" || value === "day") return value;
  throw invalid("bucket", `${JSON.stringify(value)} is not one of raw, hour, day`);
}

/** Parses one of a fixed set of words (`period=week`); `fallback` when absent. */
export function parseChoice<T extends string>(field: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw invalid(field, `${JSON.stringify(value)} is not one of ${choices.join(", ")}`);
}

/** Parses from/to into an ordered range; `from` after `to` is an error. */
export function parseRange(
  query: { from?: string; to?: string },
  defaults: { from: number; to: number },
): { from: number; to: number } {
  const from = optionalTime("from", query.from) ?? defaults.from;
  const to = optionalTime("to", query.to) ?? defaults.to;
  if (from > to) throw invalid("from", `${iso(from)} is after to (${iso(to)})`);
  return { from, to };
}
