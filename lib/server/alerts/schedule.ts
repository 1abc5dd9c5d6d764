// Times of day in the home's time zone: quiet hours, the daily digest, and
// times written in notifications. Pure functions of an instant and a zone
// (an IANA name such as Europe/Paris); days of 23 or 25 hours at a DST change
// are handled by asking Intl what the local time is, never by adding 24 h.

import { invalid } from "../../shared/errors.ts";
import { localTime } from "../history/zone.ts";

/** Throws unless `timeZone` is a zone Intl knows. */
export function checkTimeZone(timeZone: string): string {
  try {
    localTime(0, timeZone);
    return timeZone;
  } catch {
    throw invalid("time_zone", `${JSON.stringify(timeZone)} is not a time zone (use a name like Europe/Paris)`);
  }
}

/** "07:30" → 450; anything else names the field. */
export function parseClock(field: string, text: string): number {
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(text.trim());
  if (!m) throw invalid(field, `${JSON.stringify(text)} is not a time of day; use the form 22:00`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** 450 → "07:30". */
export const clockText = (minutes: number): string =>
  `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;

/** Whether local minute `m` lies in [start, end), a span that may wrap past midnight (start = end: never). */
export function inSpan(m: number, start: number, end: number): boolean {
  if (start === end) return false;
  return start < end ? m >= start && m < end : m >= start || m < end;
}

/**
 * The first instant after `ts` whose local time is `minutes` past midnight.
 * Where a DST change skips that time (02:30 on a spring-forward night), the
 * instant the clock jumps over it.
 */
export function nextLocal(ts: number, timeZone: string, minutes: number): number {
  const base = Math.floor(ts / 60_000) * 60_000;
  const now = localTime(base, timeZone).minutes;
  let candidate = base + ((minutes - now + 1440) % 1440 || 1440) * 60_000;
  // Across a DST change the wall clock moved by the offset's change: correct once.
  const got = localTime(candidate, timeZone).minutes;
  const drift = ((got - minutes + 1440 + 720) % 1440) - 720;
  if (drift !== 0) {
    const corrected = candidate - drift * 60_000;
    if (corrected > ts && localTime(corrected, timeZone).minutes === minutes) return corrected;
    // The clock jumped over that time (spring forward): the first minute after the jump.
    while (candidate - 60_000 > ts && localTime(candidate - 60_000, timeZone).minutes > minutes) candidate -= 60_000;
  }
  return candidate;
}

/** Quiet hours: from `start` to `end` (local minutes), when only what is allowed through is sent. */
export interface QuietHours {
  start: number;
  end: number;
}

/** When the quiet hours holding `ts` end, or null when `ts` is not in them. */
export function quietUntil(ts: number, timeZone: string, quiet: QuietHours | null): number | null {
  if (quiet === null || !inSpan(localTime(ts, timeZone).minutes, quiet.start, quiet.end)) return null;
  return nextLocal(ts, timeZone, quiet.end);
}

const shortFormats = new Map<string, Intl.DateTimeFormat>();

/** "28 Nov, 14:05" in the home's zone, 24-hour. */
export function fmtLocal(ts: number, timeZone: string): string {
  let f = shortFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      day: "numeric",
      month: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    shortFormats.set(timeZone, f);
  }
  return f.format(ts);
}
