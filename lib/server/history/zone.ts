// The home's time zone: where its days, weeks and months begin. One zone
// (the `home_timezone` setting, default the system's) is used everywhere: the
// daily rollups, "today" on the cards, statistics, the times on the pages and
// the charts. Epoch milliseconds stay UTC; only the calendar is the home's.
//
// Days are not 24 hours long: at a DST change a day has 23 or 25 hours (and
// in a few zones a day starts at 01:00 because midnight does not exist). So
// every boundary is computed from the zone's offset at that instant, through
// Intl (the ICU time-zone data Bun ships), never as a multiple of 86 400 000.
// Offsets are memoised per quarter hour (every offset change of the tz
// database falls on one), and the day holding the last instant asked is kept:
// consecutive readings of one batch cost one comparison each.

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const QUARTER = 15 * MIN;
/** Most memoised offsets per zone (a quarter hour each: ~10 years); beyond, the memo starts again. */
const MEMO_LIMIT = 400_000;
/** Instants this close to the end of JavaScript's dates are treated as the edge (their zone offset is that of the edge). */
const EDGE = 8.64e15 - 2 * DAY;

/** A local date and time, as a wall clock in the zone shows it. */
export interface LocalParts {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
}

/** What a wall-clock time is in the zone: one instant, none (a DST gap: the first instant after it), or two (the earlier one). */
export interface LocalInstant {
  ms: number;
  kind: "ok" | "gap" | "ambiguous";
}

/** The system's time zone (TZ, else /etc/localtime), or UTC when it cannot be told. */
export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

const partsFormats = new Map<string, Intl.DateTimeFormat>();

/** A zone's formatter of date and time parts (cached: creating one costs; throws a RangeError for an unknown zone). */
function partsFormat(timeZone: string): Intl.DateTimeFormat {
  let f = partsFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    partsFormats.set(timeZone, f);
  }
  return f;
}

/** The local date ("2026-11-28") and minute of the day (0-1439) of an instant in `timeZone`. */
export function localTime(ts: number, timeZone: string): { date: string; minutes: number } {
  const p: Record<string, string> = {};
  for (const { type, value } of partsFormat(timeZone).formatToParts(ts)) p[type] = value;
  return { date: `${p.year}-${p.month}-${p.day}`, minutes: Number(p.hour) * 60 + Number(p.minute) };
}

/** The canonical name of an IANA time zone (`europe/paris` → `Europe/Paris`), or null when there is no such zone. */
export function canonicalZone(name: string): string | null {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: name.trim() }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** Creates the calendar of zone `name` (an IANA name; throws a RangeError for an unknown one). */
export function createZone(name: string) {
  const fmt = new Intl.DateTimeFormat("en-US", {
    timeZone: name,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  });
  const canonical = fmt.resolvedOptions().timeZone;
  const memo = new Map<number, number>();
  let cachedDay: [start: number, end: number] | null = null;

  /** Milliseconds to add to a UTC instant to read the zone's wall clock (+3 600 000 in Paris in winter). */
  function offset(ts: number): number {
    // Beyond ±8.64e15 ms no Date exists: the edges of time take the offset of the last one that does.
    const key = Math.floor(Math.min(Math.max(ts, -EDGE), EDGE) / QUARTER);
    const known = memo.get(key);
    if (known !== undefined) return known;
    const at = key * QUARTER;
    const p: Record<string, number> = {};
    for (const part of fmt.formatToParts(at)) if (part.type !== "literal") p[part.type] = Number(part.value);
    const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
    const off = wall - at;
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(key, off);
    return off;
  }

  /** The wall clock at `ts`. */
  function parts(ts: number): LocalParts {
    const d = new Date(ts + offset(ts));
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
      weekday: d.getUTCDay(),
    };
  }

  /**
   * The instant of a wall-clock time given as "local ms" (Date.UTC of the
   * wall clock's fields). Around a change two offsets are in force: the one
   * before and the one after; each gives a candidate, kept when the wall
   * clock there reads `local`.
   */
  function fromLocalMs(local: number): LocalInstant {
    const before = offset(local - DAY);
    const after = offset(local + DAY);
    const found = [local - before, local - after].filter((c) => c + offset(c) === local);
    if (found.length === 2 && found[0] !== found[1]) return { ms: Math.min(found[0]!, found[1]!), kind: "ambiguous" };
    if (found.length > 0) return { ms: found[0]!, kind: "ok" };
    // A gap: the clock jumped over `local`. The first instant after the jump, found by bisection.
    let lo = local - Math.max(before, after);
    let hi = local - Math.min(before, after);
    while (hi - lo > 1000) {
      const mid = Math.floor((lo + hi) / 2);
      if (offset(mid) === before) lo = mid;
      else hi = mid;
    }
    return { ms: Math.ceil(hi / MIN) * MIN, kind: "gap" };
  }

  /** The instant of a wall-clock date and time (month 1-12). */
  const fromLocal = (year: number, month: number, day: number, hour = 0, minute = 0, second = 0): LocalInstant =>
    fromLocalMs(Date.UTC(year, month - 1, day, hour, minute, second));

  /** Start of the local day holding `ts` (local midnight, or the first instant after it when midnight does not exist). */
  function startOfDay(ts: number): number {
    if (cachedDay && ts >= cachedDay[0] && ts < cachedDay[1]) return cachedDay[0];
    const local = ts + offset(ts);
    const start = fromLocalMs(Math.floor(local / DAY) * DAY).ms;
    // The next day begins 23 to 25 hours later: 26 hours on is always inside it.
    const next = fromLocalMs(Math.floor((start + 26 * HOUR + offset(start + 26 * HOUR)) / DAY) * DAY).ms;
    if (ts >= start && ts < next) cachedDay = [start, next];
    return start;
  }

  /** Start of the day after the one starting at `start`. */
  const nextDay = (start: number): number => startOfDay(start + 26 * HOUR);

  /** The first day start at or after `ts`. */
  const ceilDay = (ts: number): number => {
    const s = startOfDay(ts);
    return s === ts ? s : nextDay(s);
  };

  /** Start of the week (Monday) holding `ts`. */
  function startOfWeek(ts: number): number {
    const p = parts(startOfDay(ts));
    const back = (p.weekday + 6) % 7;
    return fromLocalMs(Date.UTC(p.year, p.month - 1, p.day - back)).ms;
  }

  /** Start of the month holding `ts`. */
  function startOfMonth(ts: number): number {
    const p = parts(startOfDay(ts));
    return fromLocalMs(Date.UTC(p.year, p.month - 1, 1)).ms;
  }

  /** Start of the month after the one starting at `start`. */
  function nextMonth(start: number): number {
    const p = parts(start);
    return fromLocalMs(Date.UTC(p.year, p.month, 1)).ms;
  }

  /** `2026-11-28T14:05` (what <input type="datetime-local"> shows) for `ts`. */
  function inputValue(ts: number): string {
    const p = parts(ts);
    const two = (n: number) => String(n).padStart(2, "0");
    return `${p.year}-${two(p.month)}-${two(p.day)}T${two(p.hour)}:${two(p.minute)}`;
  }

  /** ISO-8601 with the zone's offset: 2026-11-30T00:30:00+01:00 (exports' local_time). */
  function isoLocal(ts: number): string {
    const off = offset(ts);
    const wall = new Date(ts + off).toISOString().slice(0, 19);
    const sign = off < 0 ? "-" : "+";
    const abs = Math.abs(off) / MIN;
    return `${wall}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }

  return {
    /** The zone's canonical IANA name. */
    name: canonical,
    offset,
    parts,
    fromLocal,
    startOfDay,
    nextDay,
    ceilDay,
    startOfWeek,
    startOfMonth,
    nextMonth,
    inputValue,
    isoLocal,
  };
}

/** A time zone's calendar. */
export type Zone = ReturnType<typeof createZone>;

/** UTC's calendar (days of exactly 24 hours). */
export const UTC_ZONE: Zone = createZone("UTC");
