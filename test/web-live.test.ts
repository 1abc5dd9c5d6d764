// The live dashboard in a real browser (chromium), fed through the real broker.

import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import type { Browser } from "playwright-core";
import { connectMqtt, endMqtt, publishAcked, startServer, type TestServer } from "./helpers.ts";
import { launchBrowser, openPage, placeDevice, publishReadings, statusTopic, type WatchedPage } from "./web-helpers.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
});

// Each test's world, closed even when the test fails.
let server: TestServer | null = null;
let client: MqttClient | null = null;
let tab: WatchedPage | null = null;
afterEach(async () => {
  await tab?.close();
  if (client) await endMqtt(client);
  await server?.stop();
  tab = client = server = null;
});

/** Opens the dashboard and waits until its event stream is connected. */
async function openDashboard(url: string, clockAt?: number): Promise<WatchedPage> {
  const opened = await openPage(browser, { server: server! });
  if (clockAt !== undefined) await opened.page.clock.install({ time: clockAt });
  await opened.page.goto(url);
  await opened.page.waitForSelector('body[data-live="on"]');
  return opened;
}

test("a reading published over MQTT appears on an open dashboard within 2 s, without a reload", async () => {
  server = await startServer({}, { logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, { uid: "aht20-111111", room: "Kitchen", placedAt: Date.now() - 3_600_000, intervalS: 60 });
  await publishReadings(client, "aht20-111111", [[Date.now() - 30_000, 20.1, 40]]);
  tab = await openDashboard(server.url + "/");
  const { page } = tab;
  expect(await page.textContent("#room-kitchen .temp")).toBe("20.1°C");
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));

  await publishReadings(client, "aht20-111111", [[Date.now(), 27.3, 61.4]]);
  // The 2 s bounds in this file are the latencies under test, not guesses at how long a step takes.
  await page.waitForFunction(() => document.querySelector("#room-kitchen .temp")?.textContent === "27.3°C", null, {
    timeout: 2000,
  });
  expect(await page.textContent("#room-kitchen .hum")).toBe("61%");
  expect(await page.textContent("#room-kitchen .status")).toBe("online");
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  expect(tab.errors).toEqual([]);
});

test("a new device appears in the unplaced banner as soon as it sends its first reading", async () => {
  server = await startServer({}, { logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  tab = await openDashboard(server.url + "/");
  expect(await tab.page.locator(".banner").count()).toBe(0);
  await publishReadings(client, "aht20-0e0e0e", [[Date.now(), 21, 50]]);
  await tab.page.waitForSelector('#unplaced a[href="/devices/aht20-0e0e0e#place"]', { timeout: 2000 });
});

test("a device that stops reporting turns late, then offline, as its interval passes (injected clocks)", async () => {
  let clock = Date.parse("2026-01-15T12:00:00Z");
  server = await startServer({}, { now: () => clock, logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  // It announces a 60 s interval: late after 2 minutes without a reading, offline after 5.
  await placeDevice(server, client, { uid: "aht20-222222", room: "Office", placedAt: clock - 3_600_000, intervalS: 60 });
  await publishReadings(client, "aht20-222222", [[clock - 10_000, 21, 45]]);
  // The browser's clock starts at the server's and is moved forward by the test.
  tab = await openDashboard(server.url + "/", clock);
  const { page } = tab;
  const status = page.locator("#room-office .status");
  expect(await status.textContent()).toBe("online");

  await page.clock.fastForward(2 * 60_000);
  await page.waitForFunction(() => document.querySelector("#room-office .status")?.textContent === "late");
  expect(await status.getAttribute("class")).toBe("status late");
  expect(await page.textContent("#room-office time[data-ago]")).toBe("2 min ago");

  await page.clock.fastForward(3 * 60_000);
  await page.waitForFunction(() => document.querySelector("#room-office .status")?.textContent === "offline");

  // The server agrees once its own clock has moved as far.
  clock += 6 * 60_000;
  await page.reload();
  expect(await page.textContent("#room-office .status")).toBe("offline");
  expect(await page.textContent("#room-office time[data-ago]")).toBe("6 min ago");
  expect(tab.errors).toEqual([]);
});

test("a device's last will turns it offline on the open dashboard at once", async () => {
  server = await startServer({}, { logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, { uid: "aht20-333333", room: "Hall", placedAt: Date.now() - 3_600_000, intervalS: 300 });
  await publishReadings(client, "aht20-333333", [[Date.now() - 1000, 19, 55]]);
  tab = await openDashboard(server.url + "/");
  expect(await tab.page.textContent("#room-hall .status")).toBe("online");

  // The broker publishes the will of a sensor that vanished; publishing it by hand is the same message.
  await publishAcked(client, statusTopic("aht20-333333"), JSON.stringify({ state: "offline" }), 5000, true);
  await tab.page.waitForFunction(() => document.querySelector("#room-hall .status")?.textContent === "offline", null, {
    timeout: 2000,
  });
});
