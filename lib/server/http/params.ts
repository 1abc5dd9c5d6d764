// The fields a request can carry, as TypeBox schemas (Elysia's `t`), shared by
// the API's routes. A query string's values arrive as text: each parameter
// type checks one and decodes it (a whole number, a time, one of a set of
// words), and a bad value throws `invalid(field, problem)`. JSON bodies are
// checked by plain schemas whose `error` names the field. Either way
// lib/server/http/errors.ts answers a 400 with that message. The pages' forms
// use the same kind of schema (pages/forms.ts).

import { t } from "elysia";
import { ID_PATTERN } from "../../shared/contract.ts";
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
  if (/^-?\d{1,16}$/.test(v)) {
    if (Math.abs(Number(v)) <= 8.64e15) return Number(v);
    throw invalid(field, `${v} is outside the times a date can have (±8.64e15 epoch milliseconds)`);
  }
  if (ISO_TIME.test(v)) {
    const zoned = /(?:Z|[+-]\d{2}:?\d{2})$/.test(v) || v.length === 10 ? v : `${v}Z`;
    const ms = Date.parse(zoned);
    if (Number.isFinite(ms)) return ms;
  }
  throw invalid(field, `${JSON.stringify(value)} is not a time; use ISO-8601 (2026-11-28T12:00:00Z) or epoch milliseconds`);
}

/**
 * A text parameter decoded by `decode`, which throws `invalid(…)` for a bad
 * value. Elysia runs the decoder while it validates the query and passes the
 * thrown error on as it is (as Elysia's own `t.Numeric` does).
 */
export const decodedText = <T>(decode: (value: string) => T) =>
  t
    .Transform(t.String())
    .Decode(decode)
    .Encode((value) => String(value));

/** A whole number within [min, max] (`?limit=100`). */
export const integerParam = (field: string, min: number, max: number) =>
  decodedText((value) => {
    if (!/^\s*\d+\s*$/.test(value)) throw invalid(field, `${JSON.stringify(value)} is not a whole number (${min}-${max})`);
    const n = Number(value);
    if (n < min || n > max) throw invalid(field, `${n} is outside ${min}-${max}`);
    return n;
  });

/** A time as ISO-8601 or epoch milliseconds (`?from=2026-11-28T12:00:00Z`). */
const timeParam = (field: string) => decodedText((value) => parseTime(field, value));

/** One of a set of words (`?period=week`); the message lists `named` (all of them unless told). */
export const choiceParam = <T extends string>(field: string, choices: readonly T[], named: readonly string[] = choices) =>
  decodedText((value): T => {
    if ((choices as readonly string[]).includes(value)) return value as T;
    throw invalid(field, `${JSON.stringify(value)} is not one of ${named.join(", ")}`);
  });

/** The series aggregations a query can ask for. */
export const BUCKETS: readonly Bucket[] = ["raw", "hour", "day"];

/** `from` and `to` of a query (each optional): see `range` for the defaults and their order. */
export const rangeParams = () => ({ from: t.Optional(timeParam("from")), to: t.Optional(timeParam("to")) });

/** From/to with their defaults, as an ordered range; `from` after `to` is an error. */
export function range(
  query: { from?: number; to?: number },
  defaults: { from: number; to: number },
): { from: number; to: number } {
  const from = query.from ?? defaults.from;
  const to = query.to ?? defaults.to;
  if (from > to) throw invalid("from", `${iso(from)} is after to (${iso(to)})`);
  return { from, to };
}

/** A JSON id (device or room uid): the contract's 1-50 characters. */
export const idString = (field: string) =>
  t.String({ pattern: ID_PATTERN.source, error: `${field} must be 1-50 characters of A-Z a-z 0-9 _ -` });

/** Required JSON text of at most `max` characters. */
export const text = (field: string, max: number) =>
  t.String({ minLength: 1, maxLength: max, error: `${field} must be a non-empty string of at most ${max} characters` });

/** Optional JSON text of at most `max` characters; null clears it. */
export const optionalText = (field: string, max: number) => {
  const error = `${field} must be a string of at most ${max} characters, or null`;
  // The message on the union too: TypeBox reports a failed union as "Expected union value".
  return t.Optional(t.Nullable(t.String({ maxLength: max, error }), { error }));
};
