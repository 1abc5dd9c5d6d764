// In a real browser (chromium): the outdoor weather from a local stand-in
// for Open-Meteo's API (asked at most hourly, cached in SQLite, on the
// dashboard and the charts; without internet it says so once and the rest
// works), the dashboard following the house live, and charts that zoom (drag,
// pinch), reset, append live points, tell rooms apart, show trends.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import type { Browser } from "playwright-core";
import { connectMqtt, endMqtt, startServer, waitFor, type TestServer } from "./helpers.ts";
import { launchBrowser, openPage, placeDevice, publishReadings, type WatchedPage } from "./web-helpers.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
});

let server: TestServer | null = null;
let client: MqttClient | null = null;
let tab: WatchedPage | null = null;
let standIn: ReturnType<typeof Bun.serve> | null = null;
afterEach(async () => {
  await tab?.close();
  if (client) await endMqtt(client);
  await server?.stop();
  standIn?.stop(true);
  tab = client = server = standIn = null;
});

const HOUR = 3_600_000;
const MIN = 60_000;

/** A stand-in for Open-Meteo's forecast API: three days of hours around `now()`, 8 °C + the hour of day / 10. */
function openMeteo(now: () => number) {
  const asked: URL[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const url = new URL(req.url);
      asked.push(url);
      const start = Math.floor(now() / 86_400_000) * 86_400_000 - 2 * 86_400_000;
      const time: number[] = [];
      for (let ts = start; ts < start + 3 * 86_400_000; ts += HOUR) time.push(ts / 1000);
      return Response.json({
        latitude: 48.86,
        longitude: 2.35,
        hourly_units: { time: "unixtime", temperature_2m: "°C", relative_humidity_2m: "%" },
        hourly: {
          time,
          temperature_2m: time.map((s) => 8 + new Date(s * 1000).getUTCHours() / 10),
          relative_humidity_2m: time.map(() => 76),
        },
      });
    },
  });
  return { server, asked, url: `http://127.0.0.1:${server.port}/v1/forecast` };
}

describe("outdoor weather", () => {
  test("asked at most hourly, cached in SQLite (a restart does not ask again), on the dashboard and the room chart", async () => {
    let clock = Date.parse("2026-01-15T12:20:00Z");
    const api = openMeteo(() => clock);
    standIn = api.server;
    const settings = { weather_latitude: "48.86", weather_longitude: "2.35", weather_url: api.url };
    server = await startServer(settings, { now: () => clock, logLevel: "warn" });
    await waitFor(() => api.asked.length === 1 && server!.store.weather.state() !== null, 10_000, "the first request");
    const q = api.asked[0]!.searchParams;
    expect([q.get("latitude"), q.get("longitude"), q.get("hourly"), q.get("timeformat")]).toEqual([
      "48.86",
      "2.35",
      "temperature_2m,relative_humidity_2m",
      "unixtime",
    ]);
    // Cached: the hours that have begun (two past days and today up to 12:00).
    const cached = server.db.query<{ n: number }, []>("SELECT count(*) AS n FROM weather_hours").get()!.n;
    expect(cached).toBe(2 * 24 + 13);
    // The API the charts read: the cached hours of the range, UTC like the rest of the API; a bad time names its field.
    const answer = (await server.api(`/api/v1/weather?from=${clock - 3 * HOUR}&to=${clock}`)).body.data;
    expect(answer).toEqual({
      enabled: true,
      from: "2026-01-15T09:20:00.000Z",
      to: "2026-01-15T12:20:00.000Z",
      current: { ts: "2026-01-15T12:00:00.000Z", temperature: 9.2, humidity: 76 },
      problem: null,
      points: [
        { ts: "2026-01-15T10:00:00.000Z", temperature: 9, humidity: 76 },
        { ts: "2026-01-15T11:00:00.000Z", temperature: 9.1, humidity: 76 },
        { ts: "2026-01-15T12:00:00.000Z", temperature: 9.2, humidity: 76 },
      ],
    });
    const bad = await server.api("/api/v1/weather?from=yesterday");
    expect([bad.status, bad.body.error]).toEqual([
      400,
      'from: "yesterday" is not a time; use ISO-8601 (2026-11-28T12:00:00Z) or epoch milliseconds',
    ]);

    client = await connectMqtt(server.mqttPort);
    await placeDevice(server, client, { uid: "aht20-3e3e3e", room: "Kitchen", placedAt: clock - 5 * HOUR, intervalS: 600 });
    await publishReadings(client, "aht20-3e3e3e", [
      [clock - 2 * HOUR, 20, 50],
      [clock - MIN, 21, 50],
    ]);
    tab = await openPage(browser, { server, width: 900 });
    await tab.page.clock.install({ time: clock });
    await tab.page.goto(server.url + "/");
    expect(await tab.page.textContent("#outdoor strong")).toBe("9.2 °C · 76 %");
    await tab.page.goto(server.url + "/rooms/kitchen");
    await tab.page.waitForSelector("#chart[data-ready=drawn]");
    const outside = await tab.page.evaluate(() =>
      (window as any).techtempCharts.map((c: any) => {
        const i = c.u.series.findIndex((s: { label: string }) => s.label === "Outside");
        return [c.quantity, i > 0 ? c.u.data[i].filter((v: unknown) => typeof v === "number").length : 0];
      }),
    );
    // The window's 24 hours that have begun: 13:00 yesterday to 12:00 today.
    expect(outside).toEqual([
      ["temperature", 24],
      ["humidity", 24],
    ]);

    // Half an hour later: not asked again. An hour after the first request: asked again.
    clock += 30 * MIN;
    await Bun.sleep(1500); // the scheduler looks at the clock every second: give it a look at 12:50
    expect(api.asked.length).toBe(1);
    clock += 31 * MIN;
    await waitFor(() => api.asked.length === 2, 10_000, "the hourly request");

    // A restart within the hour asks nothing, and shows what the cache holds.
    const dataDir = server.dataDir;
    await server.stop({ keepData: true });
    clock += 10 * MIN;
    server = await startServer(settings, { dataDir, now: () => clock, logLevel: "warn" });
    await Bun.sleep(1500);
    expect(api.asked.length).toBe(2);
    await tab.page.goto(server.url + "/");
    expect(await tab.page.textContent("#outdoor strong")).toBe("9.3 °C · 76 %");
  });

  test("without internet the dashboard says so once, the log says so once, and everything else works", async () => {
    let clock = Date.parse("2026-01-15T12:00:00Z");
    const settings = {
      weather_latitude: "48.86",
      weather_longitude: "2.35",
      // Port 1: below the ephemeral range, so no server of another test (all on port 0) can be given it
      // meanwhile, as one was given a port freePort() had found free (the request then ended in ECONNRESET).
      weather_url: "http://127.0.0.1:1/v1/forecast",
    };
    server = await startServer(settings, { now: () => clock, logLevel: "info" });
    await waitFor(() => server!.store.weather.state()?.error, 10_000, "the failed request");
    clock += 61 * MIN;
    await waitFor(() => server!.store.weather.state()!.attempted_at === clock, 10_000, "the second failed request");
    const lines = server.logs.filter((l) => l.includes("outdoor weather unavailable"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("ECONNREFUSED");
    client = await connectMqtt(server.mqttPort);
    await placeDevice(server, client, { uid: "aht20-4e4e4e", room: "Kitchen", placedAt: clock - HOUR, intervalS: 600 });
    await publishReadings(client, "aht20-4e4e4e", [[clock - MIN, 21.5, 50]]);
    tab = await openPage(browser, { server });
    await tab.page.goto(server.url + "/");
    expect(await tab.page.locator("text=Outdoor weather unavailable").count()).toBe(1);
    expect(await tab.page.textContent("#outdoor")).toContain("no internet connection?");
    expect(await tab.page.textContent("#room-kitchen .temp")).toBe("21.5°C");
    await tab.page.goto(server.url + "/rooms/kitchen");
    await tab.page.waitForSelector("#chart[data-ready=drawn]");
    expect(tab.errors).toEqual([]);
  });
});

test("the dashboard follows the house: rooms created, occupied, renamed and deleted elsewhere appear and go at once", async () => {
  server = await startServer({}, { logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  tab = await openPage(browser, { server });
  const { page } = tab;
  await page.goto(server.url + "/");
  await page.waitForSelector('body[data-live="on"]');
  // No place set: no outdoor weather, on the page or in the API.
  expect(await page.locator("#outdoor .outdoor").count()).toBe(0);
  expect((await server.api("/api/v1/weather")).body.data).toEqual({ enabled: false, current: null, problem: null, points: [] });
  await server.api("/api/v1/rooms", { body: { name: "Attic" } });
  await page.waitForSelector("#room-attic", { timeout: 2000 });
  await placeDevice(server, client, { uid: "aht20-6e6e6e", room: "Cellar", placedAt: Date.now() - HOUR, intervalS: 60 });
  await publishReadings(client, "aht20-6e6e6e", [[Date.now(), 12.5, 80]]);
  await page.waitForFunction(() => document.querySelector("#room-cellar .temp")?.textContent === "12.5°C", null, {
    timeout: 2000,
  });
  await server.api("/api/v1/rooms/attic", { method: "PUT", body: { name: "Loft" } });
  await page.waitForFunction(() => document.querySelector("#room-attic h2")?.textContent === "Loft", null, { timeout: 2000 });
  await server.api("/api/v1/rooms/attic", { method: "DELETE" });
  await page.waitForSelector("#room-attic", { state: "detached", timeout: 2000 });
  // A swapped-in card still takes live updates.
  await publishReadings(client, "aht20-6e6e6e", [[Date.now() + 1000, 13.5, 80]]);
  await page.waitForFunction(() => document.querySelector("#room-cellar .temp")?.textContent === "13.5°C", null, {
    timeout: 2000,
  });
  expect(tab.errors).toEqual([]);
});

describe("charts", () => {
  async function home(): Promise<TestServer> {
    const srv = (server = await startServer({}, { logLevel: "warn" }));
    client = await connectMqtt(srv.mqttPort);
    const now = Date.now();
    for (const [i, room] of ["Kitchen", "Cellar", "Attic"].entries()) {
      const uid = `aht20-00000${i}`;
      await placeDevice(srv, client, { uid, room, placedAt: now - 25 * HOUR, intervalS: 600 });
      const readings: [number, number, number][] = [];
      // Rising by 1 °C over the last hour in the kitchen.
      for (let ts = now - 24 * HOUR; ts < now; ts += 10 * MIN)
        readings.push([ts, 18 + i + (i === 0 && ts > now - HOUR ? 1 : 0), 50]);
      await publishReadings(client, uid, readings);
    }
    return srv;
  }

  test("drag to zoom (both charts follow), reset, double click; pinch on a touch screen", async () => {
    const srv = await home();
    tab = await openPage(browser, { server: srv, width: 1000 });
    const { page } = tab;
    await page.goto(srv.url + "/rooms/kitchen");
    await page.waitForSelector("#chart[data-ready=drawn]");
    const scales = () =>
      page.evaluate(() => (window as any).techtempCharts.map((c: any) => [c.u.scales.x.min, c.u.scales.x.max]));
    const [full] = await scales();
    const box = (await page.locator(".chart-box .u-over").first().boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    const [zoomedT, zoomedH] = await scales();
    expect(zoomedT![0]).toBeGreaterThan(full![0]);
    expect(zoomedT![1]).toBeLessThan(full![1]);
    expect(zoomedH).toEqual(zoomedT);
    expect(await page.isVisible(".reset-zoom")).toBe(true);
    await page.click(".reset-zoom");
    expect((await scales())[0]).toEqual(full);
    expect(await page.isVisible(".reset-zoom")).toBe(false);

    const phone = await openPage(browser, { server: srv, width: 390, height: 844, touch: true });
    try {
      await phone.page.goto(srv.url + "/rooms/kitchen");
      await phone.page.waitForSelector("#chart[data-ready=drawn]");
      const over = (await phone.page.locator(".chart-box .u-over").first().boundingBox())!;
      const cdp = await phone.page.context().newCDPSession(phone.page);
      const y = over.y + over.height / 2;
      const cx = over.x + over.width / 2;
      const touch = (type: "touchStart" | "touchMove" | "touchEnd", spread: number) =>
        cdp.send("Input.dispatchTouchEvent", {
          type,
          touchPoints:
            type === "touchEnd"
              ? []
              : [
                  { x: cx - spread, y, id: 1 },
                  { x: cx + spread, y, id: 2 },
                ],
        });
      await touch("touchStart", 20);
      await touch("touchMove", 60);
      await touch("touchMove", 100);
      await touch("touchEnd", 0);
      const [min, max] = (await phone.page.evaluate(() => {
        const u = (window as any).techtempCharts[0].u;
        return [u.scales.x.min, u.scales.x.max];
      })) as [number, number];
      // Fingers five times further apart: a fifth of the window.
      expect((max - min) / 86_400).toBeCloseTo(0.2, 1);
      // One finger shows the floating tooltip with units.
      await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: [{ x: cx, y, id: 1 }] });
      await phone.page.waitForSelector(".chart-tip:not([hidden])");
      expect(await phone.page.locator(".chart-tip").first().textContent()).toMatch(/aht20-000000: \d+\.\d °C/);
      await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
      expect(phone.errors).toEqual([]);
    } finally {
      await phone.close();
    }
  });

  test("a reading stored while the page is open is appended to the chart; rooms compared get distinct colours; units in the legend; trend arrows; a device's own chart", async () => {
    const srv = await home();
    tab = await openPage(browser, { server: srv, width: 1000 });
    const { page } = tab;
    await page.goto(srv.url + "/rooms/kitchen");
    await page.waitForSelector("#chart[data-ready=drawn]");
    await page.waitForSelector('body[data-live="on"]');
    const lastX = () => page.evaluate(() => (window as any).techtempCharts[0].u.data[0].at(-1) as number);
    const ts = Date.now();
    await publishReadings(client!, "aht20-000000", [[ts, 23.25, 51]]);
    await page.waitForFunction((t) => (window as any).techtempCharts[0]?.u.data[0].at(-1) === t / 1000, ts, { timeout: 5000 });
    expect(await lastX()).toBe(ts / 1000);
    expect(await page.evaluate(() => (window as any).techtempCharts[0].u.data[1].at(-1))).toBe(23.25);
    // The card's trend: 23.25 now against 18 to 19 an hour ago.
    expect(await page.textContent("#room-kitchen .temp .trend")).toBe("↑");
    expect(await page.getAttribute("#room-kitchen .temp .trend", "title")).toMatch(/^rising: \+[45]\.\d °C in the last hour$/);
    expect(await page.textContent("#room-kitchen .updated")).toMatch(/^updated \d{1,2}:\d{2}/);

    await page.goto(srv.url + "/compare?rooms=kitchen,cellar,attic");
    await page.waitForSelector("#chart[data-ready=drawn]");
    const series = await page.evaluate(() =>
      (window as any).techtempCharts.map((c: any) => c.u.series.slice(1).map((s: any) => [s.label, s._stroke ?? s.stroke])),
    );
    const [temperature, humidity] = series as [string, string][][];
    expect(temperature!.map(([l]) => l)).toEqual(["Kitchen", "Cellar", "Attic"]);
    expect(new Set(temperature!.map(([, c]) => String(c))).size).toBe(3);
    // The same room, the same colour in both charts.
    expect(humidity!.map(([, c]) => String(c))).toEqual(temperature!.map(([, c]) => String(c)));
    // Okabe–Ito: the first three of the palette.
    expect(temperature!.map(([, c]) => String(c))).toEqual(["#0072b2", "#d55e00", "#009e73"]);
    const legend = await page.evaluate(() => {
      const u = (window as any).techtempCharts[0].u;
      u.setCursor({ left: u.bbox.width / 2 / devicePixelRatio, top: 10 });
      return u.root.querySelector(".u-legend .u-series:nth-child(2) .u-value").textContent;
    });
    expect(legend).toMatch(/^\d+\.\d °C$/);

    // A device's own page charts its history: the day of readings and the one just stored.
    await page.goto(srv.url + "/devices/aht20-000000");
    await page.waitForSelector("#chart[data-ready=drawn]");
    const device = await page.evaluate(() => {
      const u = (window as any).techtempCharts[0].u;
      return { label: u.series[1].label, n: u.data[0].filter((x: number | null) => x !== null).length, last: u.data[1].at(-1) };
    });
    expect(device.label).toBe("aht20-000000");
    // 24 h every 10 minutes, less the oldest now out of the window, plus the new one (±1 with the minute the test took).
    expect(Math.abs(device.n - 144)).toBeLessThanOrEqual(1);
    expect(device.last).toBe(23.25);
    expect(tab.errors).toEqual([]);
  });
});
