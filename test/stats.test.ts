// Statistics on a hand-made data set: min and max with their times, mean and
// coverage per day, week and month, for a device and for a room.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { periodJson } from "../lib/server/http/api/history.ts";
import { createHistory } from "../lib/server/history/history.ts";
import { createStats } from "../lib/server/history/stats.ts";
import type { IncomingReading } from "../lib/server/store/store.ts";
import { startServer, type TestServer } from "./helpers.ts";
import { expectBadRequests, reading } from "./history-helpers.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
// Monday 1 June 2026, 00:00 UTC.
const T0 = Date.UTC(2026, 5, 1);
const iso = (ms: number) => new Date(ms).toISOString();

let server: TestServer;
let clock = T0;

beforeAll(async () => {
  server = await startServer({}, { now: () => clock });
  const { store } = server;
  // aht20-aaaaaa: in the living room from T0, announces 600 s.
  store.createDevice({ uid: "aht20-aaaaaa", roomName: "Salon", at: T0 });
  store.applyStatus("home-001", "aht20-aaaaaa", { state: "online", interval_s: 600 }, T0);
  // aht20-bbbbbb: in the office from T0, moved to the living room on day 2 at 12:00; announces 300 s.
  store.createDevice({ uid: "aht20-bbbbbb", roomName: "Bureau", at: T0 });
  store.applyStatus("home-001", "aht20-bbbbbb", { state: "online", interval_s: 300 }, T0);
  clock = T0 + DAY + 12 * HOUR;
  store.updateDevice("aht20-bbbbbb", { roomName: "Salon", movedAt: clock });
  // aht20-cccccc: never announced an interval.
  store.createDevice({ uid: "aht20-cccccc", roomName: "Cave", at: T0 });
  // Now: day 3, 12:00.
  clock = T0 + 2 * DAY + 12 * HOUR;

  const batch: IncomingReading[] = [];
  for (let ts = T0; ts < clock; ts += 10 * MIN) {
    const hour = Math.floor((ts - T0) / HOUR);
    if (hour === 3 || hour === 4) continue; // day 1: two hours lost (12 readings)
    let t = ts < T0 + DAY ? 20 : ts < T0 + 2 * DAY ? 21 : 22;
    let h = 50;
    if (ts === T0 + 5 * HOUR + 10 * MIN) t = 17.5;
    if (ts === T0 + 14 * HOUR + 20 * MIN || ts === T0 + 18 * HOUR) t = 26.25; // the max, twice: the first time counts
    if (ts === T0 + 6 * HOUR) h = 30;
    if (ts === T0 + 7 * HOUR) h = 70;
    batch.push(reading("aht20-aaaaaa", ts, t, h));
  }
  for (let ts = T0; ts < clock; ts += 5 * MIN) batch.push(reading("aht20-bbbbbb", ts, ts === T0 + DAY + 13 * HOUR ? 30 : 19, 60));
  for (let ts = T0; ts < T0 + DAY; ts += HOUR) batch.push(reading("aht20-cccccc", ts, 12, 80));
  store.insertReadings(batch);
});
afterAll(() => server?.stop());

test("a device's daily statistics: min and max with when, mean, and coverage from the announced interval", async () => {
  const { status, body } = await server.api(`/api/v1/devices/aht20-aaaaaa/stats?from=${iso(T0)}&to=${iso(clock)}&period=day`);
  expect(status).toBe(200);
  expect(body.data).toMatchObject({ device: "aht20-aaaaaa", period: "day", from: iso(T0), to: iso(clock) });
  const [d1, d2, d3] = body.data.periods;
  expect(body.data.periods).toHaveLength(3);
  expect(d1).toEqual({
    period_start: iso(T0),
    from: iso(T0),
    to: iso(T0 + DAY),
    count: 132,
    expected: 144,
    coverage_pct: 91.7,
    temperature: {
      min: 17.5,
      min_at: iso(T0 + 5 * HOUR + 10 * MIN),
      max: 26.25,
      max_at: iso(T0 + 14 * HOUR + 20 * MIN),
      mean: 20.08,
    },
    humidity: { min: 30, min_at: iso(T0 + 6 * HOUR), max: 70, max_at: iso(T0 + 7 * HOUR), mean: 50 },
  });
  expect(d2).toMatchObject({
    count: 144,
    expected: 144,
    coverage_pct: 100,
    temperature: { min: 21, max: 21, mean: 21, min_at: iso(T0 + DAY) },
  });
  // Today: 12 hours have happened, 72 readings were expected and came.
  expect(d3).toMatchObject({ from: iso(T0 + 2 * DAY), count: 72, expected: 72, coverage_pct: 100, temperature: { mean: 22 } });
});

test("weekly and monthly statistics, clipped to the range", async () => {
  const week = await server.api(`/api/v1/devices/aht20-aaaaaa/stats?from=${T0}&to=${clock}&period=week`);
  expect(week.body.data.periods).toEqual([
    expect.objectContaining({
      period_start: iso(T0),
      count: 348,
      expected: 360,
      coverage_pct: 96.7,
      temperature: expect.objectContaining({ min: 17.5, max: 26.25 }),
    }),
  ]);
  // From 30 May: May (nothing received, the device did not exist yet) and June.
  const month = await server.api(`/api/v1/devices/aht20-aaaaaa/stats?from=2026-05-30T00:00:00Z&to=${clock}&period=month`);
  expect(month.body.data.periods).toEqual([
    expect.objectContaining({
      period_start: "2026-05-01T00:00:00.000Z",
      from: "2026-05-30T00:00:00.000Z",
      to: iso(T0),
      count: 0,
      expected: 0,
      coverage_pct: null,
      temperature: null,
    }),
    expect.objectContaining({ period_start: iso(T0), from: iso(T0), count: 348, expected: 360, coverage_pct: 96.7 }),
  ]);
});

test("a room's statistics follow placements and combine its devices", async () => {
  const { body } = await server.api(`/api/v1/rooms/salon/stats?from=${T0}&to=${clock}&period=day`);
  const [d1, d2] = body.data.periods;
  expect(body.data.room).toBe("salon");
  expect(d1).toMatchObject({ count: 132, expected: 144, coverage_pct: 91.7 });
  // Day 2: aht20-aaaaaa all day (144) + aht20-bbbbbb from 12:00 (144 at 5 min), with its 30 °C at 13:00.
  expect(d2).toMatchObject({
    count: 288,
    expected: 288,
    coverage_pct: 100,
    temperature: { min: 19, max: 30, max_at: iso(T0 + DAY + 13 * HOUR) },
  });
  const office = await server.api(`/api/v1/rooms/bureau/stats?from=${T0}&to=${clock}&period=day`);
  expect(office.body.data.periods.map((p: { count: number }) => p.count)).toEqual([288, 144, 0]);
});

test("coverage is null for a device that never announced an interval", async () => {
  const { body } = await server.api(`/api/v1/devices/aht20-cccccc/stats?from=${T0}&to=${T0 + DAY - 1}`);
  expect(body.data.periods).toEqual([
    expect.objectContaining({
      count: 24,
      expected: null,
      coverage_pct: null,
      temperature: expect.objectContaining({ mean: 12 }),
    }),
  ]);
});

test("the store-level statistics the pages can call give the same numbers as the API", async () => {
  const queries = server.store.history;
  const stats = createStats(queries, createHistory(queries));
  const room = server.store.getRoom("salon");
  const direct = stats.room(room.id, { from: T0, to: clock, period: "day", now: clock });
  const { body } = await server.api(`/api/v1/rooms/salon/stats?from=${T0}&to=${clock}`);
  expect(body.data.periods).toEqual(direct.map(periodJson));
  expect(direct[1]).toMatchObject({ count: 288, temperature: { max: 30, max_at: T0 + DAY + 13 * HOUR } });
});

test("bad periods and ranges get a 400 naming the field", async () => {
  await expectBadRequests(
    server,
    ["/api/v1/devices/aht20-aaaaaa/stats", "/api/v1/rooms/salon/stats"],
    [
      ["period=year", "period"],
      ["from=soon", "from"],
      [`from=${clock}&to=${T0}`, "from"],
      [`from=2020-01-01&to=${clock}&period=day`, "from"],
      ["to=1e9", "to"],
    ],
  );
  expect((await server.api("/api/v1/devices/aht20-nobody/stats")).status).toBe(404);
  expect((await server.api("/api/v1/devices/aht20-aaaaaa/stats")).status).toBe(200);
});
