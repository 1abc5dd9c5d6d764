// The home's time zone in the history: days of 23 and 25 hours at DST
// changes, statistics per local day, week and month, the daily rollups in the
// zone (equal to a grouping of the raw readings by local day), and their
// rebuild when the zone changes (exact, also where the raw readings are gone).

import { describe, expect, test } from "bun:test";
import { createZone } from "../lib/server/history/zone.ts";
import { loadConfig } from "../lib/server/config.ts";
import { createRollups } from "../lib/server/store/rollups.ts";
import type { IncomingReading } from "../lib/server/store/store.ts";
import { startServer, tempDir, type TestServer } from "./helpers.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe("a zone's calendar", () => {
  test("DST days in Paris and New York are 23 and 25 hours long; weeks start on Monday and months on the 1st", () => {
    const paris = createZone("Europe/Paris");
    const spring = paris.startOfDay(Date.parse("2026-03-29T12:00:00Z"));
    expect(iso(spring)).toBe("2026-03-28T23:00:00.000Z");
    expect((paris.nextDay(spring) - spring) / HOUR).toBe(23);
    const autumn = paris.startOfDay(Date.parse("2026-10-25T12:00:00Z"));
    expect((paris.nextDay(autumn) - autumn) / HOUR).toBe(25);
    expect(iso(paris.startOfWeek(Date.parse("2026-03-29T12:00:00Z")))).toBe("2026-03-22T23:00:00.000Z");
    expect(iso(paris.startOfMonth(Date.parse("2026-04-01T00:30:00+02:00")))).toBe("2026-03-31T22:00:00.000Z");
    expect(iso(paris.nextMonth(Date.parse("2026-03-01T00:00:00+01:00")))).toBe("2026-03-31T22:00:00.000Z");
    const ny = createZone("America/New_York");
    const usSpring = ny.startOfDay(Date.parse("2026-03-08T12:00:00Z"));
    expect((ny.nextDay(usSpring) - usSpring) / HOUR).toBe(23);
    // A zone half an hour off UTC: its midnight falls in the middle of a UTC hour.
    expect(iso(createZone("Asia/Kolkata").startOfDay(Date.parse("2026-03-01T12:00:00Z")))).toBe("2026-02-28T18:30:00.000Z");
  });

  test("a wall-clock time in a DST gap is the first instant after it; a repeated one is the earlier", () => {
    const paris = createZone("Europe/Paris");
    expect(paris.fromLocal(2026, 3, 29, 2, 30)).toEqual({ ms: Date.parse("2026-03-29T01:00:00Z"), kind: "gap" });
    expect(paris.fromLocal(2026, 10, 25, 2, 30)).toEqual({ ms: Date.parse("2026-10-25T00:30:00Z"), kind: "ambiguous" });
    expect(paris.fromLocal(2026, 11, 30, 0, 30)).toEqual({ ms: Date.parse("2026-11-29T23:30:00Z"), kind: "ok" });
    expect(paris.isoLocal(Date.parse("2026-11-29T23:30:00Z"))).toBe("2026-11-30T00:30:00+01:00");
    expect(createZone("America/St_Johns").isoLocal(Date.parse("2026-01-01T12:00:00Z"))).toBe("2026-01-01T08:30:00-03:30");
  });

  test("home_timezone is checked at start and written in its canonical form; the default is the system's zone", async () => {
    const dir = tempDir();
    try {
      const load = (env: Record<string, string>) => loadConfig({ env: { TECHTEMP_DATA_DIR: dir.path, ...env } });
      expect(load({ TECHTEMP_HOME_TIMEZONE: "europe/paris" }).home_timezone).toBe("Europe/Paris");
      expect(() => load({ TECHTEMP_HOME_TIMEZONE: "Mars/Olympus" })).toThrow(
        'config: home_timezone = "Mars/Olympus" (TECHTEMP_HOME_TIMEZONE): must be a time zone name like Europe/Paris',
      );
      expect(() => load({ TECHTEMP_WEATHER_LATITUDE: "48.85" })).toThrow("weather_longitude");
      expect(() => load({ TECHTEMP_WEATHER_LATITUDE: "91", TECHTEMP_WEATHER_LONGITUDE: "2" })).toThrow(
        'config: weather_latitude = "91" (TECHTEMP_WEATHER_LATITUDE): must be a number of degrees from -90 to 90, or empty',
      );
      const child = Bun.spawnSync(
        ["bun", "-e", "import { loadConfig } from './lib/server/config.ts'; console.log(loadConfig({ env: {} }).home_timezone)"],
        { cwd: `${import.meta.dir}/..`, env: { ...process.env, TZ: "Asia/Tokyo", TECHTEMP_CONFIG: "/dev/null" } },
      );
      expect(child.stdout.toString().trim()).toBe("Asia/Tokyo");
    } finally {
      dir.cleanup();
    }
  });
});

/** Hourly readings of one device from `from` to `to`, at 10 minutes past each hour and every 10 minutes. */
function readings(uid: string, from: number, to: number): IncomingReading[] {
  const out: IncomingReading[] = [];
  for (let ts = from; ts < to; ts += 10 * MIN) {
    const t = 20 + 5 * Math.sin(ts / 7e6);
    out.push({
      homeId: "home-001",
      deviceUid: uid,
      reading: { temperature_c: Math.round(t * 100) / 100, humidity_pct: 50, ts },
      receivedAt: ts,
    });
  }
  return out;
}

/** The daily rollups as stored, and the same days computed by grouping the raw readings by local day. */
function dayRows(server: TestServer, zoneName: string) {
  const zone = createZone(zoneName);
  const stored = server.db
    .query<{ b: number; n: number; t_sum: number; t_min: number; t_max: number }, []>(
      "SELECT b, n, t_sum, t_min, t_max FROM rollup_day ORDER BY b",
    )
    .all();
  const byDay = new Map<number, { b: number; n: number; t_sum: number; t_min: number; t_max: number }>();
  for (const r of server.db.query<{ ts: number; t: number }, []>("SELECT ts, t FROM readings ORDER BY ts").all()) {
    const b = zone.startOfDay(r.ts);
    const d = byDay.get(b) ?? { b, n: 0, t_sum: 0, t_min: Infinity, t_max: -Infinity };
    d.n++;
    d.t_sum += r.t;
    d.t_min = Math.min(d.t_min, r.t);
    d.t_max = Math.max(d.t_max, r.t);
    byDay.set(b, d);
  }
  return { stored, computed: [...byDay.values()] };
}

describe("the history in the home's zone", () => {
  test("statistics per Paris day across the spring change: 24, 23 and 24 hours, each fully covered", async () => {
    const now = Date.parse("2026-03-31T12:00:00Z");
    const server = await startServer({ home_timezone: "Europe/Paris" }, { now: () => now });
    try {
      const from = Date.parse("2026-03-27T23:00:00Z");
      server.store.createDevice({ uid: "aht20-dst001", roomName: "Salon", at: from });
      server.store.applyStatus("home-001", "aht20-dst001", { state: "online", interval_s: 600 }, from);
      server.store.insertReadings(readings("aht20-dst001", from, Date.parse("2026-03-30T22:00:00Z")));
      const { body } = await server.api(
        `/api/v1/rooms/salon/stats?period=day&from=2026-03-28T00:00:00%2B01:00&to=2026-03-30T23:59:59%2B02:00`,
      );
      const periods = body.data.periods;
      expect(periods.map((p: { period_start: string }) => p.period_start)).toEqual([
        "2026-03-27T23:00:00.000Z",
        "2026-03-28T23:00:00.000Z",
        "2026-03-29T22:00:00.000Z",
      ]);
      expect(periods.map((p: { count: number }) => p.count)).toEqual([144, 138, 144]);
      expect(periods.map((p: { expected: number }) => p.expected)).toEqual([144, 138, 144]);
      expect(periods.map((p: { coverage_pct: number }) => p.coverage_pct)).toEqual([100, 100, 100]);
      // The min and max of a day lie inside that day (a "30 Nov" row never has its max "at 1 Dec, 00:30").
      for (const p of periods) {
        for (const at of [p.temperature.min_at, p.temperature.max_at]) {
          expect(Date.parse(at) >= Date.parse(p.from) && Date.parse(at) < Date.parse(p.to)).toBe(true);
        }
      }
      // The daily rollups are the raw readings grouped by Paris day.
      const { stored, computed } = dayRows(server, "Europe/Paris");
      expect(stored).toEqual(computed);
      // The export: each row's local_time is the Paris instant with its offset (+01:00, then +02:00), the zone is named,
      // and the daily buckets are the same Paris days.
      const window = `from=${from}&to=${Date.parse("2026-03-30T22:00:00Z")}`;
      const days = (await server.api(`/api/v1/rooms/salon/export?${window}&bucket=day&format=json`)).body;
      expect(days.time_zone).toBe("Europe/Paris");
      expect(days.data.map((p: { ts: string; local_time: string; count: number }) => [p.ts, p.local_time, p.count])).toEqual([
        ["2026-03-27T23:00:00.000Z", "2026-03-28T00:00:00+01:00", 144],
        ["2026-03-28T23:00:00.000Z", "2026-03-29T00:00:00+01:00", 138],
        ["2026-03-29T22:00:00.000Z", "2026-03-30T00:00:00+02:00", 144],
      ]);
      const around = `from=${Date.parse("2026-03-29T00:40:00Z")}&to=${Date.parse("2026-03-29T01:05:00Z")}`;
      const raw = (await server.api(`/api/v1/rooms/salon/export?${around}`)).body as string;
      expect(
        raw
          .trim()
          .split("\r\n")
          .map((line) => line.split(",").at(-1)),
      ).toEqual(["local_time", "2026-03-29T01:40:00+01:00", "2026-03-29T01:50:00+01:00", "2026-03-29T03:00:00+02:00"]);
      const month = await server.api(`/api/v1/rooms/salon/stats?period=month&from=2026-03-01T00:00:00%2B01:00&to=${now}`);
      // March in Paris begins at 23:00 UTC the day before; April (22:00 UTC on 31 March) has not begun at noon.
      expect(month.body.data.periods.map((p: { period_start: string }) => p.period_start)).toEqual(["2026-02-28T23:00:00.000Z"]);
    } finally {
      await server.stop();
    }
  });

  test("a new home_timezone rebuilds the daily rollups at start, exactly, also for days whose raw readings are gone", async () => {
    const now = Date.parse("2026-03-12T00:00:00Z");
    const first = await startServer({ home_timezone: "Europe/Paris" }, { now: () => now });
    const dataDir = first.dataDir;
    first.store.createDevice({ uid: "aht20-zone01", roomName: "Salon", at: Date.parse("2026-03-01T00:00:00Z") });
    first.store.insertReadings(readings("aht20-zone01", Date.parse("2026-03-01T00:00:00Z"), Date.parse("2026-03-11T00:00:00Z")));
    await first.stop({ keepData: true });

    const second = await startServer({ home_timezone: "America/New_York" }, { dataDir, now: () => now });
    try {
      const line = second.logs.find((l) => l.includes("daily rollups rebuilt for the home time zone"));
      expect(line).toMatch(/from=Europe\/Paris to=America\/New_York days=11 ms=\d+/);
      const { stored, computed } = dayRows(second, "America/New_York");
      expect(stored).toEqual(computed);
      expect(createRollups(second.db).zone.name).toBe("America/New_York");
    } finally {
      await second.stop({ keepData: true });
    }

    // Retention took the raw readings before 5 March; a move to Kolkata (half an hour off UTC) keeps every old day whole.
    const { openDatabase, DB_FILE } = await import("../lib/server/store/db.ts");
    const db = openDatabase(`${dataDir}/${DB_FILE}`);
    const cut = Date.parse("2026-03-05T00:00:00Z");
    const before = db.query<{ n: number }, [number]>("SELECT sum(n) AS n FROM rollup_hour WHERE b < ?").get(cut)!.n;
    createRollups(db).setHorizon(cut);
    db.query("DELETE FROM readings WHERE ts < ?").run(cut);
    db.close();
    const third = await startServer({ home_timezone: "Asia/Kolkata" }, { dataDir, now: () => now });
    try {
      const kolkata = createZone("Asia/Kolkata");
      const rows = third.db.query<{ b: number; n: number }, []>("SELECT b, n FROM rollup_day ORDER BY b").all();
      expect(rows.every((r) => kolkata.startOfDay(r.b) === r.b)).toBe(true);
      // Every reading is in exactly one day: the days hold all of them.
      expect(rows.reduce((s, r) => s + r.n, 0)).toBe(
        third.db.query<{ n: number }, []>("SELECT sum(n) AS n FROM rollup_hour").get()!.n,
      );
      // After the horizon the days are exact (hours cut by the local midnight were split from raw readings).
      const { stored, computed } = dayRows(third, "Asia/Kolkata");
      const exact = (b: number) => b >= kolkata.ceilDay(cut);
      expect(stored.filter((r) => exact(r.b))).toEqual(computed.filter((r) => exact(r.b)));
      expect(before).toBeGreaterThan(0);
    } finally {
      await third.stop();
    }
  });
});
