// Exports: CSV with a header row and ISO-8601 times (round-trips into a new
// database unchanged), JSON, raw or per hour/day, for a device or a room,
// streamed in chunks.

import { afterAll, beforeAll, expect, test } from "bun:test";
import type { IncomingReading } from "../lib/server/store/store.ts";
import { startServer, type TestServer } from "./helpers.ts";
import { expectBadRequests, reading } from "./history-helpers.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 8, 1);
const iso = (ms: number) => new Date(ms).toISOString();

/** Parses our CSV (RFC 4180 without quoted fields: ids are [A-Za-z0-9_-]) into rows keyed by the header. */
function parseCsv(text: string): Record<string, string>[] {
  expect(text.endsWith("\r\n")).toBe(true);
  const lines = text.split("\r\n").slice(0, -1);
  const header = lines.shift()!.split(",");
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [header[i]!, v])));
}

let server: TestServer;
let clock = T0;
beforeAll(async () => {
  server = await startServer({}, { now: () => clock });
  const { store } = server;
  store.createDevice({ uid: "aht20-aaaaaa", roomName: "Salon", at: T0 });
  store.createDevice({ uid: "aht20-bbbbbb", roomName: "Bureau", at: T0 });
  clock = T0 + DAY + 7 * HOUR + 30 * MIN;
  store.updateDevice("aht20-bbbbbb", { roomName: "Salon", movedAt: clock });
  clock = T0 + 3 * DAY;
  const batch: IncomingReading[] = [];
  for (let ts = T0; ts < clock; ts += MIN) {
    batch.push(reading("aht20-aaaaaa", ts, -5 + ((ts / MIN) % 997) / 10, 40 + ((ts / MIN) % 13) / 4));
    batch.push(reading("aht20-bbbbbb", ts + 17_000, 18.05, 55.5));
  }
  store.insertReadings(batch);
});
afterAll(() => server?.stop());

const get = (path: string) => server.fetch(path, { signal: AbortSignal.timeout(20_000) });

test("a device's raw CSV has a header row, ISO times and one row per reading, and opens as a spreadsheet would read it", async () => {
  const res = await get(`/api/v1/devices/aht20-aaaaaa/export?format=csv&from=${iso(T0)}&to=${iso(T0 + DAY - 1)}`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
  expect(res.headers.get("content-disposition")).toBe('attachment; filename="aht20-aaaaaa-raw-2026-09-01-2026-09-01.csv"');
  expect(res.headers.get("access-control-allow-origin")).toBe("*");
  const text = await res.text();
  expect(text.slice(0, text.indexOf("\r\n"))).toBe("device_id,ts,temperature,humidity,local_time");
  const rows = parseCsv(text);
  expect(rows).toHaveLength(1440);
  expect(rows[0]).toEqual({
    device_id: "aht20-aaaaaa",
    ts: "2026-09-01T00:00:00.000Z",
    temperature: String(-5 + ((T0 / MIN) % 997) / 10),
    humidity: expect.any(String),
    local_time: "2026-09-01T00:00:00+00:00",
  });
  const stored = server.db
    .query<{ ts: number; t: number; h: number }, [number]>(
      "SELECT ts, t, h FROM readings WHERE device_id = (SELECT id FROM devices WHERE uid = 'aht20-aaaaaa') AND ts < ? ORDER BY ts",
    )
    .all(T0 + DAY);
  expect(rows.map((r) => [Date.parse(r.ts!), Number(r.temperature) * 100, Number(r.humidity) * 100].map(Math.round))).toEqual(
    stored.map((s) => [s.ts, s.t, s.h]),
  );
});

test("CSV round-trips: imported into a new database and exported again, it is the same text", async () => {
  const first = await (await get(`/api/v1/rooms/salon/export?from=${T0}&to=${clock}`)).text();
  const other = await startServer();
  try {
    other.store.insertReadings(
      parseCsv(first).map((r) => reading(r.device_id!, Date.parse(r.ts!), Number(r.temperature), Number(r.humidity))),
    );
    other.store.createDevice({ uid: "aht20-aaaaaa", roomName: "Salon", at: T0 });
    other.store.createDevice({ uid: "aht20-bbbbbb", roomName: "Salon", at: T0 + DAY + 7 * HOUR + 30 * MIN });
    const again = await (await other.fetch(`/api/v1/rooms/salon/export?from=${T0}&to=${clock}`)).text();
    expect(again).toBe(first);
  } finally {
    await other.stop();
  }
});

test("a room's raw export follows placements, merged in time order across devices", async () => {
  const rows = parseCsv(
    await (await get(`/api/v1/rooms/salon/export?from=${T0 + DAY + 7 * HOUR}&to=${T0 + DAY + 8 * HOUR - 1}`)).text(),
  );
  // 07:00-08:00: aht20-aaaaaa all hour (60), aht20-bbbbbb from 07:30 (30).
  expect(rows.filter((r) => r.device_id === "aht20-aaaaaa")).toHaveLength(60);
  expect(rows.filter((r) => r.device_id === "aht20-bbbbbb")).toHaveLength(30);
  expect(rows.filter((r) => r.device_id === "aht20-bbbbbb")[0]!.ts).toBe(iso(T0 + DAY + 7 * HOUR + 30 * MIN + 17_000));
  const times = rows.map((r) => Date.parse(r.ts!));
  expect(times).toEqual([...times].sort((a, b) => a - b));
});

test("aggregated exports carry the chart's buckets, in CSV and JSON", async () => {
  const range = `from=${T0 + 3 * HOUR + 20 * MIN}&to=${T0 + 2 * DAY}`;
  const chart = (await server.api(`/api/v1/rooms/salon/history?${range}&bucket=hour`)).body.data.points;
  const csv = parseCsv(await (await get(`/api/v1/rooms/salon/export?${range}&bucket=hour`)).text());
  expect(Object.keys(csv[0]!).join(",")).toBe(
    "ts,temperature,temperature_min,temperature_max,humidity,humidity_min,humidity_max,count,local_time",
  );
  const withLocal = chart.map((p: { ts: string }) => ({ ...p, local_time: p.ts.replace(/\.000Z$/, "+00:00") }));
  expect(
    csv.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, k === "ts" || k === "local_time" ? v : Number(v)]))),
  ).toEqual(withLocal);
  const res = await get(`/api/v1/rooms/salon/export?${range}&bucket=hour&format=json`);
  expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
  const body = await res.json();
  expect(body.time_zone).toBe("UTC");
  expect(body.data).toEqual(withLocal);
  const days = await (await get(`/api/v1/devices/aht20-bbbbbb/export?bucket=day&format=json&from=${T0}&to=${clock - 1}`)).json();
  expect(days.data.map((p: { count: number }) => p.count)).toEqual([1440, 1440, 1440]);
});

test("JSON raw export is the same rows as the CSV", async () => {
  const range = `from=${T0}&to=${T0 + 6 * HOUR}`;
  const json = await (await get(`/api/v1/devices/aht20-bbbbbb/export?${range}&format=json`)).json();
  const csv = parseCsv(await (await get(`/api/v1/devices/aht20-bbbbbb/export?${range}`)).text());
  expect(json.data).toEqual(
    csv.map((r) => ({
      device_id: r.device_id,
      ts: r.ts,
      temperature: Number(r.temperature),
      humidity: Number(r.humidity),
      local_time: r.local_time,
    })),
  );
  const empty = await (await get(`/api/v1/devices/aht20-bbbbbb/export?from=${T0 - DAY}&to=${T0 - 1}&format=json`)).json();
  expect(empty).toEqual({ time_zone: "UTC", data: [] });
});

test("an export is streamed in chunks, and a client that goes away mid-way leaves the server well", async () => {
  const res = await get(`/api/v1/rooms/salon/export?from=${T0}&to=${clock}`);
  // Streamed: no length known in advance.
  expect(res.headers.get("transfer-encoding")).toBe("chunked");
  expect(res.headers.get("content-length")).toBeNull();
  expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(300_000);
  // Walk away after the first chunk.
  const partial = await get(`/api/v1/devices/aht20-aaaaaa/export?from=${T0}&to=${clock}`);
  const r2 = partial.body!.getReader();
  expect((await r2.read()).done).toBe(false);
  await r2.cancel();
  const after = await get(`/api/v1/devices/aht20-aaaaaa/export?from=${T0}&to=${T0 + HOUR - 1}`);
  expect(parseCsv(await after.text())).toHaveLength(60);
});

test("bad export parameters get a 400 naming the field", async () => {
  await expectBadRequests(
    server,
    ["/api/v1/devices/aht20-aaaaaa/export", "/api/v1/rooms/salon/export"],
    [
      ["format=xlsx", "format"],
      ["bucket=minute", "bucket"],
      ["from=never", "from"],
      [`from=${T0 + DAY}&to=${T0}`, "from"],
    ],
  );
  expect((await server.api("/api/v1/rooms/attic/export")).status).toBe(404);
});
