// What a household sees, in a real browser (chromium): one home time zone
// whatever the browser's, statuses that only change when the server says so,
// coverage that means something, pages that fit a 360 px phone with big tap
// targets, forms that keep what was typed elsewhere and refuse (never cut)
// a value too long, and °C or °F per browser.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import type { Browser } from "playwright-core";
import { createZone } from "../lib/server/history/zone.ts";
import { connectMqtt, endMqtt, publishAcked, startServer, type TestServer } from "./helpers.ts";
import { launchBrowser, openPage, placeDevice, publishReadings, statusTopic, type WatchedPage } from "./web-helpers.ts";

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
afterEach(async () => {
  await tab?.close();
  if (client) await endMqtt(client);
  await server?.stop();
  tab = client = server = null;
});

const HOUR = 3_600_000;
const MIN = 60_000;

describe("one home time zone", () => {
  // The server's home is Paris; the browser is in New York. The window spans the night Paris moves to summer time.
  const NOW = Date.parse("2026-03-30T10:00:00Z");
  const MOVE = Date.parse("2026-03-29T01:30:00Z"); // 03:30 in Paris (summer time), 21:30 the day before in New York

  async function parisHome(): Promise<TestServer> {
    const s = await startServer({ home_timezone: "Europe/Paris" }, { now: () => NOW, logLevel: "warn" });
    s.store.createDevice({ uid: "aht20-0a0a0a", roomName: "Salon", at: Date.parse("2026-03-27T00:00:00Z") });
    s.store.applyStatus("home-001", "aht20-0a0a0a", { state: "online", interval_s: 1800 }, Date.parse("2026-03-27T00:00:00Z"));
    const batch = [];
    for (let ts = Date.parse("2026-03-27T00:00:00Z"); ts <= NOW; ts += 30 * MIN) {
      batch.push({
        homeId: "home-001",
        deviceUid: "aht20-0a0a0a",
        reading: { temperature_c: 20 + (ts === MOVE ? 5 : 0), humidity_pct: 50, ts },
        receivedAt: ts,
      });
    }
    s.store.insertReadings(batch);
    s.store.updateDevice("aht20-0a0a0a", { roomName: "Bureau", movedAt: MOVE });
    s.store.updateDevice("aht20-0a0a0a", { roomName: "Salon", movedAt: MOVE + HOUR });
    return s;
  }

  test("a browser in New York sees Paris times: the table, the range input, the chart's axis and hover, in its own language", async () => {
    server = await parisHome();
    tab = await openPage(browser, { server, width: 1000, timezoneId: "America/New_York", locale: "en-GB" });
    const { page } = tab;
    await page.clock.install({ time: NOW });
    await page.goto(`${server.url}/rooms/salon?range=7d`);
    await page.waitForSelector("#chart[data-ready=drawn]");
    // The browser's own clock really is New York's.
    expect(await page.evaluate(() => new Date(Date.parse("2026-03-29T01:30:00Z")).getHours())).toBe(21);
    // Server-rendered times (placements), written again by the page in its language: Paris time.
    // The Salon's placements: from 27 March (01:00 in Paris), out at 03:30 on the 29th (already summer time), back at 04:30.
    expect(await page.locator("#placements td[data-label=From] time").allTextContents()).toEqual([
      "29 Mar, 04:30",
      "27 Mar, 01:00",
    ]);
    expect(await page.locator("#placements td[data-label=Until] time").allTextContents()).toEqual(["29 Mar, 03:30"]);
    // Statistics per Paris day: the 29th has 23 hours (46 half-hour readings), each row labelled by its Paris date.
    const days = await page.locator("table.stats tbody td[data-label=Day]").allTextContents();
    expect(days.slice(0, 4)).toEqual(["30 Mar 2026", "29 Mar 2026", "28 Mar 2026", "27 Mar 2026"]);
    // The custom range is typed in Paris time, and said so.
    expect(await page.inputValue("#to")).toBe("2026-03-30T12:00");
    expect(await page.textContent(".window small")).toBe("(Europe/Paris time)");
    // Hovering the chart at the move shows Paris time in the legend; the axis is labelled in Paris days and 24-hour times.
    const hover = await page.evaluate((ts) => {
      const c = (window as any).techtempCharts[0];
      c.u.setCursor({ left: c.u.valToPos(ts / 1000, "x"), top: 10 });
      return c.u.root.querySelector(".u-legend .u-series:first-child .u-value").textContent;
    }, Date.parse("2026-03-29T12:00:00Z"));
    // Noon UTC on the 29th is 14:00 in Paris (summer time), 08:00 in New York.
    expect(hover).toBe("29 Mar, 14:00");
    const ticks = await page.evaluate(() => {
      const c = (window as any).techtempCharts[0];
      const splits = c.u.axes[0]._splits as number[];
      return splits.map((s: number) => [s * 1000, c.u.axes[0]._values[splits.indexOf(s)]]);
    });
    // Ticks fall on Paris midnights (labelled with the date) and noons, on both sides of the change, not on New York's.
    expect(ticks.length).toBeGreaterThan(6);
    const paris = createZone("Europe/Paris");
    for (const [ms, label] of ticks) {
      const hour = paris.parts(ms as number).hour;
      expect(hour === 0 ? "midnight" : hour === 12 ? "noon" : `${hour} h`).toBe(label === "12:00" ? "noon" : "midnight");
    }
    expect(ticks.map(([, label]) => label)).toContain("29 Mar");
    expect(ticks.map(([, label]) => label)).toContain("30 Mar");
    expect(tab.errors).toEqual([]);
  });

  test("an American browser gets 12-hour times and month-first dates, still in Paris time", async () => {
    server = await parisHome();
    tab = await openPage(browser, { server, timezoneId: "America/New_York", locale: "en-US" });
    await tab.page.goto(`${server.url}/rooms/salon?range=7d`);
    const placements = await tab.page.locator("#placements td[data-label=From] time").allTextContents();
    expect(placements).toEqual(["Mar 29, 4:30 AM", "Mar 27, 1:00 AM"]);
  });

  test("a range typed on the page is Paris time; a time the clocks skipped is refused with the one to use", async () => {
    server = await parisHome();
    tab = await openPage(browser, { server, timezoneId: "America/New_York" });
    const { page } = tab;
    await page.goto(`${server.url}/rooms/salon?from=2026-03-29T00:00&to=2026-03-29T12:00`);
    expect(await page.getAttribute("#chart", "data-from")).toBe(String(Date.parse("2026-03-28T23:00:00Z")));
    const res = await page.goto(`${server.url}/rooms/salon?from=2026-03-29T02:30&to=2026-03-29T12:00`);
    expect(res!.status()).toBe(400);
    expect(await page.textContent("#from-error")).toBe(
      '"2026-03-29T02:30" does not exist in Europe/Paris (the clocks went forward); use 2026-03-29T03:00',
    );
  });
});

describe("statuses that never lie", () => {
  test("the devices list and a device's page stay online while readings arrive, and never age by themselves without the server", async () => {
    let clock = Date.parse("2026-01-15T12:00:00Z");
    server = await startServer({}, { now: () => clock, logLevel: "warn" });
    client = await connectMqtt(server.mqttPort);
    await placeDevice(server, client, { uid: "aht20-5a5a5a", room: "Hall", placedAt: clock - HOUR, intervalS: 30 });
    await publishReadings(client, "aht20-5a5a5a", [[clock - 5000, 20, 50]]);
    for (const path of ["/devices", "/devices/aht20-5a5a5a"]) {
      tab = await openPage(browser, { server });
      const { page } = tab;
      await page.clock.install({ time: clock });
      await page.goto(server.url + path);
      await page.waitForSelector('body[data-live="on"]');
      const status = page.locator(".status").first();
      expect(await status.textContent()).toBe("online");
      // Three minutes of readings every 30 s: the server pushes each, the status stays online (it used to turn
      // late after 60 s, then offline after 150 s, as each step aged the last reading the page was given).
      for (let i = 0; i < 6; i++) {
        clock += 30_000;
        await page.clock.fastForward(30_000);
        await publishReadings(client, "aht20-5a5a5a", [[clock, 21 + i, 50]]);
        await page.waitForFunction((t) => document.body.textContent!.includes(`${t}.0`), 21 + i);
        expect(await status.textContent()).toBe("online");
      }
      await tab.close();
      tab = null;
    }
    // A page whose live connection is down does not turn the device late or offline by itself.
    tab = await openPage(browser, { server });
    await tab.page.route("**/events**", (route) => route.abort());
    await tab.page.clock.install({ time: clock });
    await tab.page.goto(server.url + "/devices");
    await tab.page.clock.fastForward(20 * MIN);
    expect(await tab.page.locator(".status").first().textContent()).toBe("online");
  }, 60_000); // sequential steps in two pages: slow on a loaded machine

  test("a device whose last will said offline before any reading shows offline, not 'no readings yet'", async () => {
    server = await startServer({}, { logLevel: "warn" });
    client = await connectMqtt(server.mqttPort);
    await publishAcked(client, statusTopic("aht20-0f0f0f"), JSON.stringify({ state: "online", interval_s: 60 }), 5000, true);
    await server.api("/api/v1/devices", { body: { device_uid: "aht20-0f0f0f", room_name: "Attic" } });
    tab = await openPage(browser, { server });
    await tab.page.goto(server.url + "/devices");
    await tab.page.waitForSelector('body[data-live="on"]');
    expect(await tab.page.textContent("#device-aht20-0f0f0f .status")).toBe("no readings yet");
    await publishAcked(client, statusTopic("aht20-0f0f0f"), JSON.stringify({ state: "offline" }), 5000, true);
    await tab.page.waitForFunction(() => document.querySelector("#device-aht20-0f0f0f .status")?.textContent === "offline");
    await tab.page.goto(server.url + "/");
    expect(await tab.page.textContent("#room-attic .status")).toBe("offline");
  });
});

test("coverage counts from the first reading in the room, never above 100 %, and says so on hover", async () => {
  const now = Date.parse("2026-05-10T12:00:00Z");
  server = await startServer({}, { now: () => now, logLevel: "warn" });
  // A demo sensor back-fills a week of readings every 10 minutes, then is registered (created now) and placed a week back.
  const batch = [];
  for (let ts = now - 7 * 24 * HOUR; ts < now; ts += 10 * MIN) {
    batch.push({
      homeId: "home-001",
      deviceUid: "aht20-d3d3d3",
      reading: { temperature_c: 21, humidity_pct: 50, ts },
      receivedAt: now,
    });
  }
  server.store.insertReadings(batch);
  server.store.applyStatus("home-001", "aht20-d3d3d3", { state: "online", interval_s: 600 }, now);
  server.store.createDevice({ uid: "aht20-d3d3d3", roomName: "Den", at: now - 7 * 24 * HOUR });
  const stats = (await server.api("/api/v1/rooms/den/stats?period=day&from=" + (now - 6 * 24 * HOUR))).body.data.periods;
  for (const p of stats) expect(p.coverage_pct).toBe(100);
  tab = await openPage(browser, { server });
  await tab.page.goto(`${server.url}/rooms/den?range=7d`);
  const cells = await tab.page.locator("table.stats .coverage").allTextContents();
  expect(cells.length).toBeGreaterThan(5);
  for (const c of cells) expect(c).toBe("100 %");
  expect(await tab.page.getAttribute("table.stats .coverage", "title")).toContain("counted from its first reading in this room");
});

describe("phone first", () => {
  const LONG = "Chambre" + "x".repeat(93);

  test("no page is wider than a 360 px screen, even with long names without spaces", async () => {
    server = await startServer({}, { logLevel: "warn" });
    client = await connectMqtt(server.mqttPort);
    await placeDevice(server, client, {
      uid: "aht20-7e7e7e",
      room: LONG,
      placedAt: Date.now() - 2 * HOUR,
      intervalS: 60,
      label: "L".repeat(99),
    });
    const roomUid = (await server.api("/api/v1/rooms")).body.data[0].uid;
    const readings: [number, number, number][] = [];
    for (let ts = Date.now() - 2 * HOUR; ts < Date.now(); ts += 5 * MIN) readings.push([ts, 21.5, 44]);
    await publishReadings(client, "aht20-7e7e7e", readings);
    await publishReadings(client, "aht20-u1u1u1".replace(/u/g, "0"), [[Date.now(), 20, 50]]);
    const pages = [
      "/",
      `/rooms/${roomUid}`,
      `/rooms/${roomUid}?range=30d`,
      `/compare?rooms=${roomUid}`,
      "/compare",
      "/devices",
      "/devices/aht20-7e7e7e",
      "/rooms",
      "/account",
      "/users",
      "/tokens",
      "/security",
    ];
    tab = await openPage(browser, { server, width: 360, height: 780 });
    const wide: string[] = [];
    for (const path of pages) {
      await tab.page.goto(server.url + path);
      if (path.startsWith("/rooms/") || path.startsWith("/compare?") || path.startsWith("/devices/"))
        await tab.page.waitForSelector("#chart[data-ready]");
      // Open every <details> too: what it hides must fit as well.
      await tab.page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
      const width = await tab.page.evaluate(() => document.documentElement.scrollWidth);
      if (width > 360) wide.push(`${path}: ${width} px`);
    }
    // The sign-in page, signed out.
    const signedOut = await openPage(browser, { width: 360, height: 780 });
    await signedOut.page.goto(server.url + "/login");
    const loginWidth = await signedOut.page.evaluate(() => document.documentElement.scrollWidth);
    if (loginWidth > 360) wide.push(`/login: ${loginWidth} px`);
    await signedOut.close();
    expect(wide).toEqual([]);
    expect(tab.errors).toEqual([]);
  }, 60_000); // thirteen pages in turn: slow on a loaded machine

  test("on a touch screen every button, field and navigation link is at least 44 px tall", async () => {
    server = await startServer({}, { logLevel: "warn" });
    client = await connectMqtt(server.mqttPort);
    await placeDevice(server, client, { uid: "aht20-7f7f7f", room: "Kitchen", placedAt: Date.now() - HOUR, intervalS: 60 });
    tab = await openPage(browser, { server, width: 390, height: 844, touch: true });
    const small: string[] = [];
    for (const path of ["/", "/rooms/kitchen", "/devices/aht20-7f7f7f", "/rooms", "/compare"]) {
      await tab.page.goto(server.url + path);
      await tab.page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
      const found = await tab.page.evaluate(() =>
        [
          ...document.querySelectorAll<HTMLElement>(
            ".top nav a, .top .who a, button:not([hidden]), .ranges a, summary, select, input:not([type=hidden]):not([type=checkbox]), label.check",
          ),
        ]
          .filter((el) => el.offsetParent !== null)
          .map(
            (el) =>
              [
                el.tagName + (el.id ? "#" + el.id : "") + " " + (el.textContent ?? "").trim().slice(0, 20),
                el.getBoundingClientRect().height,
              ] as const,
          )
          .filter(([, h]) => h < 44)
          .map(([what, h]) => `${what}: ${Math.round(h)} px`),
      );
      small.push(...found.map((f) => `${path} ${f}`));
    }
    expect(small).toEqual([]);
  });
});

describe("forms", () => {
  test("an error in one form of the device page leaves what was typed in the other; a too-long label is refused, not cut", async () => {
    server = await startServer({}, { logLevel: "warn" });
    client = await connectMqtt(server.mqttPort);
    await placeDevice(server, client, { uid: "aht20-9c9c9c", room: "Kitchen", placedAt: Date.now() - 86_400_000, intervalS: 60 });
    tab = await openPage(browser, { server });
    const { page } = tab;
    await page.goto(`${server.url}/devices/aht20-9c9c9c`);
    await page.fill("#label", "Fridge side");
    await page.fill(
      "#moved_at",
      "last tuesday".replace(/./g, (c) => c),
    );
    await page.evaluate(() => ((document.getElementById("moved_at") as HTMLInputElement).type = "text"));
    await page.fill("#moved_at", "last tuesday");
    await page.selectOption("#room", "");
    await page.click("#place button[type=submit]");
    await page.waitForSelector("#moved_at-error");
    expect(await page.inputValue("#label")).toBe("Fridge side");

    const long = "x".repeat(10_000);
    await page.fill("#label", long);
    await page.click("#settings button[type=submit]");
    await page.waitForSelector("#label-error");
    expect(await page.textContent("#label-error")).toBe("at most 100 characters");
    expect((await page.inputValue("#label")).length).toBe(10_000);
    expect((await server.api("/api/v1/devices/aht20-9c9c9c")).body.data.label).toBeNull();
    // A saved form: the summary and the placement history change with it, the other form keeps its text.
    await page.fill("#label", "Fridge side");
    await page.selectOption("#room", "");
    await page.fill("#new_room", "Pantry");
    await page.click("#settings button[type=submit]");
    await page.waitForSelector("#settings .saved");
    expect(await page.inputValue("#new_room")).toBe("Pantry");
    await page.click("#place button[type=submit]");
    await page.waitForSelector("#place .saved");
    expect(await page.textContent("#summary a[href='/rooms/pantry']")).toBe("Pantry");
    expect(await page.locator("#placements tbody tr").count()).toBe(2);
    expect(tab.errors).toEqual([]);
  });
});

test("°C or °F is this browser's choice: the cards, the table and the charts follow it; another browser keeps °C", async () => {
  server = await startServer({}, { logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, { uid: "aht20-f0f0f0", room: "Kitchen", placedAt: Date.now() - 2 * HOUR, intervalS: 60 });
  await publishReadings(client, "aht20-f0f0f0", [
    [Date.now() - 30 * MIN, 20, 50],
    [Date.now() - 60_000, 25, 50],
  ]);
  tab = await openPage(browser, { server, width: 900 });
  const { page } = tab;
  await page.goto(server.url + "/");
  expect(await page.textContent("#room-kitchen .temp")).toBe("25.0°C");
  await page.click("#unit-toggle");
  expect(await page.textContent("#room-kitchen .temp")).toBe("77.0°F");
  await page.goto(server.url + "/rooms/kitchen");
  await page.waitForSelector("#chart[data-ready=drawn]");
  expect(await page.textContent("#room-kitchen .temp")).toBe("77.0°F");
  expect(await page.textContent(".chart-title")).toBe("Temperature (°F)");
  const ys = await page.evaluate(() => (window as any).techtempCharts[0].u.data[1].filter((v: unknown) => typeof v === "number"));
  expect(ys).toEqual([68, 77]);
  // The values stored stay °C.
  expect((await server.api("/api/v1/readings/latest")).body.data[0].temperature).toBe(25);
  const other = await openPage(browser, { server });
  await other.page.goto(server.url + "/");
  expect(await other.page.textContent("#room-kitchen .temp")).toBe("25.0°C");
  await other.close();
});
