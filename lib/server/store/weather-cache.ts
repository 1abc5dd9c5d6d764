// The outdoor weather's cache (lib/server/weather/): Open-Meteo's hourly
// temperature and humidity at the home, and when it was last asked and what
// it answered. Kept so the charts have the outside beside the rooms for as
// long as the cache holds, and so a restart does not ask again within the hour.

import type { Database } from "bun:sqlite";

/** One cached hour: values in hundredths (null: the service had none). */
export interface WeatherRow {
  ts: number;
  t: number | null;
  h: number | null;
}

/** When the weather was last asked for, for which place, and how it went. */
export interface WeatherState {
  place: string;
  attempted_at: number;
  ok_at: number | null;
  error: string | null;
}

/** Creates the weather cache over an open database (migration 4 applied). */
export function createWeatherCache(db: Database) {
  const q = {
    state: db.query<WeatherState, []>("SELECT place, attempted_at, ok_at, error FROM weather_state WHERE id = 1"),
    setState: db.query<null, [string, number, number | null, string | null]>(
      `INSERT INTO weather_state (id, place, attempted_at, ok_at, error) VALUES (1, ?1, ?2, ?3, ?4)
       ON CONFLICT (id) DO UPDATE SET place = ?1, attempted_at = ?2, ok_at = coalesce(?3, ok_at), error = ?4`,
    ),
    put: db.query<null, [number, number | null, number | null]>(
      "INSERT INTO weather_hours (ts, t, h) VALUES (?1, ?2, ?3) ON CONFLICT (ts) DO UPDATE SET t = ?2, h = ?3",
    ),
    range: db.query<WeatherRow, [number, number]>("SELECT ts, t, h FROM weather_hours WHERE ts >= ?1 AND ts <= ?2 ORDER BY ts"),
    latest: db.query<WeatherRow, [number]>(
      "SELECT ts, t, h FROM weather_hours WHERE ts <= ?1 AND t IS NOT NULL ORDER BY ts DESC LIMIT 1",
    ),
    prune: db.query<null, [number]>("DELETE FROM weather_hours WHERE ts < ?"),
    clear: db.query<null, []>("DELETE FROM weather_hours"),
  };
  return {
    /** The last attempt, or null when the weather was never asked for. */
    state: (): WeatherState | null => q.state.get(),
    /**
     * Records an attempt at `at` for `place`: its hours (a success, `rows`
     * not null) or its error. Hours of another place are dropped first, and
     * hours before `keepFrom` (the cache's bound).
     */
    record: db.transaction((place: string, at: number, rows: WeatherRow[] | null, error: string | null, keepFrom: number) => {
      const before = q.state.get();
      if (before && before.place !== place) q.clear.run();
      for (const r of rows ?? []) q.put.run(r.ts, r.t, r.h);
      q.prune.run(keepFrom);
      q.setState.run(place, at, rows ? at : null, error);
    }),
    /** Cached hours in [from, to], oldest first. */
    hours: (from: number, to: number): WeatherRow[] => q.range.all(from, to),
    /** The newest cached hour at or before `at` that has a temperature. */
    latest: (at: number): WeatherRow | null => q.latest.get(at),
  };
}

/** The weather cache's interface. */
export type WeatherCache = ReturnType<typeof createWeatherCache>;
