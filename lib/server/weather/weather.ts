// Outdoor weather: the temperature and humidity outside the home, from
// Open-Meteo's forecast API (no account, no key), shown on the dashboard and
// drawn on the room charts beside the rooms (the earlier dashboard did the
// same). Optional: on only when weather_latitude and weather_longitude are set.
//
// - The server asks at most once an hour (the attempt's time is kept in
//   SQLite, so a restart does not ask again within the hour) for the last two
//   days and today, hour by hour, and keeps the hours that have begun in its
//   cache (store/weather-cache.ts), bounded to KEEP_DAYS.
// - A Pi without internet: the attempt fails (10 s timeout), the failure is
//   logged once until the service answers again, the dashboard says so in one
//   line, and the next attempt is an hour later. Nothing else waits on it.
// - An answer is read up to MAX_BODY_BYTES; anything else is an error like a
//   failed connection.

import type { Log } from "../../shared/log.ts";
import type { WeatherCache, WeatherRow } from "../store/store.ts";

/** Asked at most this often. */
export const WEATHER_EVERY_MS = 3_600_000;
/** The cache keeps this many days of hours (~9 600 rows). */
export const KEEP_DAYS = 400;
/** Longest answer read (Open-Meteo's three days of two values are ~3 KB). */
export const MAX_BODY_BYTES = 1_000_000;
/** How long one request may take. */
const TIMEOUT_MS = 10_000;
/** How often the scheduler looks at the (injected) clock. */
const TICK_MS = 1000;
const HOUR = 3_600_000;

/** One hour outside: ts = its start (epoch ms), values in °C and %, null when the service had none. */
export interface OutdoorPoint {
  ts: number;
  temperature: number | null;
  humidity: number | null;
}

/** What the dashboard shows: the latest hour, or why there is none. */
export interface OutdoorNow {
  /** The newest hour that has begun (null when none is cached from the last 3 hours). */
  current: OutdoorPoint | null;
  /** Why the weather cannot be fetched now (null: it can), and since when. */
  problem: { message: string; since: number } | null;
}

/** Open-Meteo's answer, the parts we read. */
interface OpenMeteoAnswer {
  hourly?: { time?: unknown; temperature_2m?: unknown; relative_humidity_2m?: unknown };
}

const centi = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? Math.round(v * 100) : null);
const fromCenti = (v: number | null) => (v === null ? null : v / 100);
const point = (r: WeatherRow): OutdoorPoint => ({ ts: r.ts, temperature: fromCenti(r.t), humidity: fromCenti(r.h) });

/** Reads a body of at most `max` bytes; throws beyond it. */
async function boundedText(res: Response, max: number): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw new Error(`answer larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** Creates the weather fetcher; `start()` schedules it, `stop()` ends it. */
export function createWeather(deps: {
  cache: WeatherCache;
  latitude: number;
  longitude: number;
  url: string;
  log: Log;
  now?: () => number;
  fetch?: typeof fetch;
}) {
  const { cache, log } = deps;
  const now = deps.now ?? Date.now;
  const doFetch = deps.fetch ?? fetch;
  const place = `${deps.latitude},${deps.longitude}`;
  const host = new URL(deps.url).host;
  const listeners = new Set<() => void>();
  let timer: ReturnType<typeof setInterval> | null = null;
  let running: Promise<void> | null = null;
  let loggedProblem = cache.state()?.error != null;

  function requestUrl(): string {
    const q = new URLSearchParams({
      latitude: String(deps.latitude),
      longitude: String(deps.longitude),
      hourly: "temperature_2m,relative_humidity_2m",
      past_days: "2",
      forecast_days: "1",
      timeformat: "unixtime",
      timezone: "GMT",
    });
    return `${deps.url}?${q}`;
  }

  /** The hours of an answer that have begun by `at`. */
  function parse(body: OpenMeteoAnswer, at: number): WeatherRow[] {
    const { time, temperature_2m: t, relative_humidity_2m: h } = body.hourly ?? {};
    if (!Array.isArray(time) || !Array.isArray(t) || !Array.isArray(h)) throw new Error("no hourly temperature in the answer");
    const rows: WeatherRow[] = [];
    time.forEach((s, i) => {
      const ts = typeof s === "number" ? s * 1000 : NaN;
      if (Number.isFinite(ts) && ts <= at) rows.push({ ts, t: centi(t[i]), h: centi(h[i]) });
    });
    return rows;
  }

  /** One attempt now: fetch, cache, tell the listeners. Never throws. */
  async function fetchOnce(): Promise<void> {
    const at = now();
    let rows: WeatherRow[] | null = null;
    let error: string | null = null;
    try {
      const res = await doFetch(requestUrl(), { signal: AbortSignal.timeout(TIMEOUT_MS) });
      const text = await boundedText(res, MAX_BODY_BYTES);
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
      rows = parse(JSON.parse(text) as OpenMeteoAnswer, at);
    } catch (err) {
      const e = err as Error & { code?: string };
      error = e.name === "TimeoutError" ? `no answer within ${TIMEOUT_MS / 1000} s` : (e.code ?? e.message);
    }
    cache.record(place, at, rows, error, at - KEEP_DAYS * 86_400_000);
    if (error !== null && !loggedProblem) {
      loggedProblem = true;
      log.warn("outdoor weather unavailable: the rest works without it; trying again every hour", { host, error });
    } else if (error === null && loggedProblem) {
      loggedProblem = false;
      log.info("outdoor weather available again", { host });
    }
    for (const listener of listeners) {
      try {
        listener();
      } catch (err) {
        log.error("a weather listener failed", { error: err as Error });
      }
    }
  }

  /** Whether an hour has passed since the last attempt (or the place changed). */
  function due(): boolean {
    const state = cache.state();
    return state === null || state.place !== place || now() - state.attempted_at >= WEATHER_EVERY_MS;
  }

  function tick(): void {
    if (running || !due()) return;
    running = fetchOnce().finally(() => (running = null));
  }

  return {
    /** Starts asking: at once if the last attempt is an hour old, then hourly. */
    start(): void {
      timer ??= setInterval(tick, TICK_MS);
      tick();
    },
    /** Stops asking; waits for an attempt in flight. */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = null;
      listeners.clear();
      await running;
    },
    /** Calls `listener` after each attempt; returns an unsubscribe. */
    onChange(listener: () => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** The cached hours in [from, to], oldest first. */
    hours: (from: number, to: number): OutdoorPoint[] => cache.hours(from, to).map(point),
    /** What the dashboard shows now. */
    now(): OutdoorNow {
      const at = now();
      const state = cache.state();
      const latest = state?.place === place ? cache.latest(at) : null;
      const current = latest && at - latest.ts < 3 * HOUR ? point(latest) : null;
      const problem =
        state && state.error !== null
          ? {
              message: `cannot reach ${host} (${state.error}): no internet connection?`,
              since: state.ok_at !== null && state.ok_at > 0 ? state.ok_at : state.attempted_at,
            }
          : null;
      return { current, problem };
    },
  };
}

/** The outdoor weather's interface. */
export type Weather = ReturnType<typeof createWeather>;
