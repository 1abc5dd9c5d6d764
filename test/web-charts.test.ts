// The history charts in a real browser: what uPlot was given to draw for a
// known data set fed through the broker.

import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import type { Browser } from "playwright-core";
import { connectMqtt, endMqtt, startServer, type TestServer } from "./helpers.ts";
import { launchBrowser, openPage, placeDevice, publishReadings, type WatchedPage } from "./web-helpers.ts";

const T = Date.parse("2026-01-15T12:00:00Z");
const HOUR = 3_600_000;
const GAP = [T - 10 * HOUR, T - 7 * HOUR] as const;

let browser: Browser;
let server: TestServer;
let client: MqttClient;
beforeAll(async () => {
  browser = await launchBrowser();
  server = await startServer({}, { now: () => T, logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  // Kitchen: one sensor every 10 minutes over the last 24 h, silent for 3 hours (GAP).
  await placeDevice(server, client, { uid: "aht20-444444", room: "Kitchen", placedAt: T - 30 * HOUR, intervalS: 600 });
  const readings: [number, number, number][] = [];
  for (let ts = T - 24 * HOUR + 600_000; ts <= T; ts += 600_000) {
    if (ts >= GAP[0] && ts < GAP[1]) continue;
    readings.push([ts, 20 + Math.sin(ts / 5e6), 50 + Math.cos(ts / 5e6)]);
  }
  await publishReadings(client, "aht20-444444", readings);
  // A second sensor moved into the kitchen 5 hours ago (a marker), without readings since.
  await placeDevice(server, client, { uid: "aht20-555555", room: "Kitchen", placedAt: T - 5 * HOUR });
  // Attic: a reading every 5 minutes for 7 days (more than a chart's 1500 points), silent for 3 hours (GAP).
  await placeDevice(server, client, { uid: "aht20-777777", room: "Attic", placedAt: T - 8 * 24 * HOUR, intervalS: 300 });
  const attic: [number, number, number][] = [];
  for (let ts = T - 7 * 24 * HOUR + 300_000; ts <= T; ts += 300_000) {
    if (ts < GAP[0] || ts >= GAP[1]) attic.push([ts, 15 + 5 * Math.sin(ts / 2e7), 60]);
  }
  await publishReadings(client, "aht20-777777", attic);
  // Cellar: readings every 30 minutes, for the comparison.
  await placeDevice(server, client, { uid: "aht20-666666", room: "Cellar", placedAt: T - 30 * HOUR, intervalS: 1800 });
  const cellar: [number, number, number][] = [];
  for (let ts = T - 24 * HOUR + 1_800_000; ts <= T; ts += 1_800_000) cellar.push([ts, 12, 80]);
  await publishReadings(client, "aht20-666666", cellar);
});
afterAll(async () => {
  await endMqtt(client);
  await server.stop();
  await browser.close();
});

let tab: WatchedPage | null = null;
afterEach(async () => {
  await tab?.close();
  tab = null;
});

interface ChartInfo {
  quantity: string;
  buckets: string[];
  markers: { ts: number; label: string }[];
  labels: string[];
  data: (number | null | undefined)[][];
  bands: number;
}

/** Opens a page and returns what each drawn chart was given. */
async function charts(path: string): Promise<ChartInfo[]> {
  tab = await openPage(browser, { width: 900, server });
  await tab.page.goto(server.url + path);
  await tab.page.waitForSelector("#chart[data-ready]");
  expect(await tab.page.getAttribute("#chart", "data-ready")).toBe("drawn");
  expect(tab.errors).toEqual([]);
  return tab.page.evaluate(() =>
    (window as unknown as { techtempCharts: any[] }).techtempCharts.map((c) => ({
      quantity: c.quantity,
      buckets: c.buckets,
      markers: c.markers,
      labels: c.u.series.slice(1).map((s: { label: string }) => s.label),
      // undefined (an alignment artifact) does not survive JSON; keep it visible as the string "undefined".
      data: c.u.data.map((col: unknown[]) => col.map((v) => (v === undefined ? "undefined" : v))),
      bands: (c.u.bands ?? []).length,
    })),
  );
}

test("the room chart draws every reading of a known day, with a gap where the sensor was silent", async () => {
  const api = (await server.api(`/api/v1/rooms/kitchen/history?from=${T - 24 * HOUR}&to=${T}&points=1500`)).body.data;
  expect(api.bucket).toBe("raw");
  expect(api.points.length).toBe(144 - 18);

  const [temperature, humidity] = await charts("/rooms/kitchen");
  for (const chart of [temperature!, humidity!]) {
    expect(chart.buckets).toEqual(["raw"]);
    expect(chart.labels).toEqual(["aht20-444444"]);
    const [xs, ys] = chart.data as [number[], (number | null)[]];
    // 126 readings plus one null that breaks the line inside the silent hours.
    expect(xs.length).toBe(127);
    expect(ys.filter((v) => typeof v === "number").length).toBe(126);
    const gaps = ys.flatMap((v, i) => (v === null ? [xs[i]! * 1000] : []));
    expect(gaps.length).toBe(1);
    expect(gaps[0]!).toBeGreaterThan(GAP[0]);
    expect(gaps[0]!).toBeLessThan(GAP[1]);
  }
  expect(temperature!.quantity).toBe("temperature");
  expect(humidity!.quantity).toBe("humidity");
  // The move of the second sensor into the kitchen, 5 hours ago, is marked.
  expect(temperature!.markers).toEqual([{ ts: (T - 5 * HOUR) / 1000, label: "→ aht20-555555" }]);
});

test("a 7-day window of dense readings draws hourly means inside a min–max band, with the silent hours as a gap", async () => {
  const [temperature] = await charts("/rooms/attic?range=7d");
  expect(temperature!.buckets).toEqual(["hour"]);
  expect(temperature!.labels).toEqual(["mean per hour", "min", "max"]);
  expect(temperature!.bands).toBe(1);
  const [xs, mean, min, max] = temperature!.data as [number[], (number | null)[], (number | null)[], (number | null)[]];
  // 7 × 24 hours plus the bucket of the reading at T, without the 3 silent hours, and one gap among them.
  expect(mean.filter((v) => typeof v === "number").length).toBe(7 * 24 + 1 - 3);
  const gaps = mean.flatMap((v, i) => (v === null ? [xs[i]! * 1000] : []));
  expect(gaps.length).toBe(1);
  expect(gaps[0]!).toBeGreaterThan(GAP[0] - HOUR);
  expect(gaps[0]!).toBeLessThan(GAP[1]);
  mean.forEach((m, i) => {
    if (typeof m === "number") expect(min[i]! <= m && m <= max[i]!).toBe(true);
  });
});

test("the comparison page overlays the chosen rooms", async () => {
  const [temperature, humidity] = await charts("/compare?rooms=kitchen,cellar");
  expect(temperature!.labels).toEqual(["Kitchen", "Cellar"]);
  expect(humidity!.labels).toEqual(["Kitchen", "Cellar"]);
  const cellar = temperature!.data[2]!.filter((v) => typeof v === "number");
  expect(cellar.length).toBe(48);
  expect(new Set(cellar)).toEqual(new Set([12]));
  expect(temperature!.markers).toEqual([]);
  // The kitchen's silent hours stay a gap on the shared time axis: null (a break) at every time of the
  // cellar's inside them, not undefined (which uPlot bridges with a straight line).
  const [xs, kitchen] = temperature!.data as [number[], (number | null | string)[]];
  const silent = xs.flatMap((x, i) => (x * 1000 > GAP[0] - 600_000 && x * 1000 < GAP[1] ? [kitchen[i]] : []));
  expect(silent.length).toBeGreaterThanOrEqual(6);
  expect(silent).toEqual(silent.map(() => null));
});
