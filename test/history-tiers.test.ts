// The chart endpoints choose raw, hourly or daily points from the point
// budget, keep spikes, and refuse bad ranges and budgets with a 400.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../lib/server/store/db.ts";
import { createHistory } from "../lib/server/history/history.ts";
import { createRollups } from "../lib/server/store/rollups.ts";
import { createStore, type IncomingReading } from "../lib/server/store/store.ts";
import { startServer, tempDir, type TestServer } from "./helpers.ts";
import { expectBadRequests, reading } from "./history-helpers.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2025, 10, 1);

describe("auto tier at its boundaries", () => {
  const dir = tempDir();
  const db = openDatabase(join(dir.path, "techtemp.db"));
  const store = createStore(db, { now: () => T0 + 30 * DAY });
  const history = createHistory(store.history);
  // One reading a minute for two days.
  store.insertReadings(Array.from({ length: 2 * 1440 }, (_, i) => reading("aht20-aaaaaa", T0 + i * MIN, 20 + (i % 7) / 10)));
  const device = { kind: "device", id: store.findDevice("aht20-aaaaaa")!.id, uid: "aht20-aaaaaa" } as const;
  const chart = (from: number, to: number, points: number) => history.chart(device, { from, to, points, bucket: "auto" });
  afterAll(() => {
    db.close();
    dir.cleanup();
  });

  test("raw while the readings in the range fit the budget exactly, hourly one reading beyond", () => {
    // [T0, T0 + 99 min] holds 100 readings.
    const fits = chart(T0, T0 + 99 * MIN, 100);
    expect(fits.bucket).toBe("raw");
    expect(fits.points).toHaveLength(100);
    expect(chart(T0, T0 + 99 * MIN, 99).bucket).toBe("hour");
  });

  test("hourly while the hours of the range fit the budget exactly, daily one hour beyond", () => {
    // [T0, T0 + 36 h) touches 36 hours; one more millisecond touches a 37th.
    expect(chart(T0, T0 + 36 * HOUR - 1, 36).bucket).toBe("hour");
    expect(chart(T0, T0 + 36 * HOUR - 1, 36).points).toHaveLength(36);
    expect(chart(T0, T0 + 36 * HOUR, 36).bucket).toBe("day");
    expect(chart(T0, T0 + 36 * HOUR, 36).points).toHaveLength(2);
  });

  test("raw is not chosen for a range whose raw readings retention may have deleted", () => {
    createRollups(db).setHorizon(T0 + 10 * MIN);
    try {
      expect(chart(T0 + 10 * MIN, T0 + 20 * MIN, 100).bucket).toBe("raw");
      expect(chart(T0, T0 + 20 * MIN, 100).bucket).toBe("hour");
    } finally {
      db.query("DELETE FROM history_meta").run();
    }
  });

  test("an explicit tier is honoured whatever the budget", () => {
    expect(history.chart(device, { from: T0, to: T0 + 2 * DAY, points: 10, bucket: "raw" }).points).toHaveLength(2 * 1440);
    expect(history.chart(device, { from: T0, to: T0 + 99 * MIN, points: 10_000, bucket: "day" }).bucket).toBe("day");
  });
});

describe("a year on the chart endpoints", () => {
  let server: TestServer;
  let clock = T0;
  const spikeAt = T0 + 200 * DAY + 13 * HOUR + 7 * MIN;
  beforeAll(async () => {
    server = await startServer({}, { now: () => clock });
    // Placed in the room at T0, so the whole year is the room's.
    const r = await server.api("/api/v1/devices", { body: { device_uid: "aht20-bbbbbb", room_name: "Salon" } });
    expect(r.status).toBe(201);
    clock = T0 + 366 * DAY;
    // A reading every 10 minutes for a year, ~20 °C with a daily wave, and ONE reading at 41.5 °C.
    const all: IncomingReading[] = [];
    for (let ts = T0; ts < T0 + 365 * DAY; ts += 10 * MIN)
      all.push(reading("aht20-bbbbbb", ts, 20 + 3 * Math.sin((ts / DAY) * 2 * Math.PI)));
    all.push(reading("aht20-bbbbbb", spikeAt, 41.5));
    for (let i = 0; i < all.length; i += 5000) server.store.insertReadings(all.slice(i, i + 5000));
  });
  afterAll(() => server?.stop());

  test("a one-reading spike is the max of its day in a year-long room chart", async () => {
    const { status, body } = await server.api(`/api/v1/rooms/salon/history?from=${T0}&to=${T0 + 365 * DAY - 1}`);
    expect(status).toBe(200);
    expect(body.data.bucket).toBe("day");
    expect(body.data.points).toHaveLength(365);
    const max = Math.max(...body.data.points.map((p: { temperature_max: number }) => p.temperature_max));
    expect(max).toBe(41.5);
    const spikeDay = body.data.points.find((p: { temperature_max: number }) => p.temperature_max === 41.5);
    expect(spikeDay.ts).toBe(new Date(Math.floor(spikeAt / DAY) * DAY).toISOString());
    // The mean barely moves: one reading among 145.
    expect(spikeDay.temperature).toBeLessThan(24);
    expect(Object.keys(spikeDay).sort()).toEqual(
      ["count", "humidity", "humidity_max", "humidity_min", "temperature", "temperature_max", "temperature_min", "ts"].sort(),
    );
  });

  test("the year-long chart equals the earlier server's GROUP BY over raw readings", async () => {
    const { body } = await server.api(`/api/v1/devices/aht20-bbbbbb/history?from=${T0}&to=${T0 + 365 * DAY - 1}&points=800`);
    const naive = server.db
      .query<{ b: number; t: number; t_min: number; t_max: number; n: number }, [number, number]>(
        `SELECT (ts / 86400000) * 86400000 AS b, avg(t) AS t, min(t) AS t_min, max(t) AS t_max, count(*) AS n
         FROM readings WHERE device_id = (SELECT id FROM devices WHERE uid = 'aht20-bbbbbb') AND ts >= ? AND ts <= ? GROUP BY b ORDER BY b`,
      )
      .all(T0, T0 + 365 * DAY - 1);
    expect(body.data.points.map((p: any) => [p.ts, p.temperature, p.temperature_min, p.temperature_max, p.count])).toEqual(
      naive.map((r) => [new Date(r.b).toISOString(), Math.round((r.t / 100) * 100) / 100, r.t_min / 100, r.t_max / 100, r.n]),
    );
  });

  test("a month is hourly, a day is raw, and explicit tiers are accepted", async () => {
    let r = await server.api(`/api/v1/rooms/salon/history?from=${T0 + 100 * DAY}&to=${T0 + 130 * DAY - 1}`);
    expect(r.body.data.bucket).toBe("hour");
    expect(r.body.data.points).toHaveLength(720);
    r = await server.api(`/api/v1/rooms/salon/history?from=${T0 + 100 * DAY}&to=${T0 + 101 * DAY - 1}`);
    expect(r.body.data.bucket).toBe("raw");
    expect(r.body.data.points).toHaveLength(144);
    expect(r.body.data.points[0]).toEqual({
      device_id: "aht20-bbbbbb",
      ts: new Date(T0 + 100 * DAY).toISOString(),
      temperature: expect.any(Number),
      humidity: 50,
    });
    r = await server.api(`/api/v1/devices/aht20-bbbbbb/history?from=${T0 + 100 * DAY}&to=${T0 + 101 * DAY - 1}&bucket=hour`);
    expect(r.body.data.bucket).toBe("hour");
    expect(r.body.data.points).toHaveLength(24);
    expect(r.body.data.from).toBe(new Date(T0 + 100 * DAY).toISOString());
  });

  test("the earlier server's /readings?bucket= is answered from the rollups, newest first", async () => {
    const r = await server.api(`/api/v1/devices/aht20-bbbbbb/readings?bucket=day&limit=3`);
    expect(r.status).toBe(200);
    expect(r.body.data.map((p: { ts: string }) => p.ts)).toEqual(
      [364, 363, 362].map((d) => new Date(T0 + d * DAY).toISOString()),
    );
    expect(r.body.data[0].count).toBe(144);
    const room = await server.api(`/api/v1/rooms/salon/readings?bucket=hour&limit=2&from=${T0}&to=${T0 + 2 * HOUR - 1}`);
    expect(room.body.data.map((p: { ts: string; count: number }) => [p.ts, p.count])).toEqual([
      [new Date(T0 + HOUR).toISOString(), 6],
      [new Date(T0).toISOString(), 6],
    ]);
  });

  test("bad ranges and budgets get a 400 that names the field, and the server keeps answering", async () => {
    await expectBadRequests(
      server,
      ["/api/v1/rooms/salon/history", "/api/v1/devices/aht20-bbbbbb/history"],
      [
        ["points=5", "points"],
        ["points=20000", "points"],
        ["points=many", "points"],
        ["from=yesterday", "from"],
        ["to=2026-13-45", "to"],
        [`from=${T0 + DAY}&to=${T0}`, "from"],
        ["from=99999999999999999", "from"],
        ["bucket=week", "bucket"],
      ],
    );
    expect((await server.api("/api/v1/rooms/nowhere/history")).status).toBe(404);
    expect((await server.api(`/api/v1/rooms/salon/history?from=${T0}&to=${T0 + DAY}`)).status).toBe(200);
  });
});
