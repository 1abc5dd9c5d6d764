// The forms in a real browser: what a person does on the devices and rooms
// pages reaches the store (seen through the API), and bad input is shown
// back next to its field without changing anything.

import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import type { Browser } from "playwright-core";
import { connectMqtt, endMqtt, startServer, type TestServer } from "./helpers.ts";
import { launchBrowser, openPage, placeDevice, type WatchedPage } from "./web-helpers.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
});

let server: TestServer;
let client: MqttClient;
let tab: WatchedPage | null = null;
beforeEach(async () => {
  server = await startServer({}, { logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, { uid: "aht20-888888", room: "Kitchen", placedAt: Date.now() - 86_400_000, intervalS: 60 });
  await server.api("/api/v1/rooms", { body: { name: "Office" } });
});
afterEach(async () => {
  await tab?.close();
  tab = null;
  await endMqtt(client);
  await server.stop();
});

const placements = async () =>
  (await server.api("/api/v1/devices/aht20-888888/placements")).body.data.map((p: { room: { uid: string }; state: string }) => [
    p.room.uid,
    p.state,
  ]);

test("moving a device through its page changes the placement the API returns", async () => {
  tab = await openPage(browser, { server });
  const { page } = tab;
  await page.goto(`${server.url}/devices/aht20-888888`);
  await page.selectOption("#room", "office");
  await page.click("#place button[type=submit]");
  await page.waitForSelector("#place .saved");
  expect(await placements()).toEqual([
    ["kitchen", "closed"],
    ["office", "active"],
  ]);
  // The page shows the new room and the history, without a full reload (htmx swapped #content).
  expect(await page.textContent("#summary a[href='/rooms/office']")).toBe("Office");
  expect(await page.locator("#placements tbody tr").count()).toBe(2);
  expect(tab.errors).toEqual([]);
});

test("a form with a bad value shows the message next to the field, keeps the input and changes nothing", async () => {
  tab = await openPage(browser, { server });
  const { page } = tab;
  await page.goto(`${server.url}/devices/aht20-888888`);
  await page.fill("#interval_s", "99999");
  await page.fill("#temperature_offset", "0.5");
  await page.click("#settings button[type=submit]");
  await page.waitForSelector("#interval_s-error");
  expect(await page.textContent("#interval_s-error")).toBe("a whole number of seconds from 1 to 3600, or empty");
  expect(await page.inputValue("#interval_s")).toBe("99999");
  expect(await page.inputValue("#temperature_offset")).toBe("0.5");
  expect(await page.getAttribute("#interval_s", "aria-invalid")).toBe("true");
  const device = (await server.api("/api/v1/devices/aht20-888888")).body.data;
  expect(device.config).toEqual({ interval_s: null, temperature_offset: 0, humidity_offset: 0 });

  // A move dated in the future is refused the same way.
  await page.selectOption("#room", "office");
  await page.fill("#moved_at", "2099-01-01T10:00");
  await page.click("#place button[type=submit]");
  await page.waitForSelector("#moved_at-error");
  expect(await page.textContent("#moved_at-error")).toBe("must not be in the future");
  expect(await page.inputValue("#moved_at")).toBe("2099-01-01T10:00");
  expect(await placements()).toEqual([["kitchen", "active"]]);
});

test("without JavaScript the forms still work: create a room, then see the refusal of a duplicate", async () => {
  tab = await openPage(browser, { javaScript: false, server });
  const { page } = tab;
  await page.goto(`${server.url}/rooms`);
  await page.fill("#new-name", "Attic");
  await page.fill("#new-floor", "Second");
  await page.click("#create-room button[type=submit]");
  await page.waitForURL(`${server.url}/rooms?done=created`);
  expect(await page.textContent(".notice")).toBe("Room created.");
  expect((await server.api("/api/v1/rooms/attic")).body.data).toMatchObject({ name: "Attic", floor: "Second" });

  await page.fill("#new-name", "attic");
  await page.click("#create-room button[type=submit]");
  await page.waitForSelector("#new-name-error");
  expect(await page.textContent("#new-name-error")).toBe('room "attic" already exists');
  expect(await page.inputValue("#new-name")).toBe("attic");
});

test("renaming and deleting a room through the page", async () => {
  tab = await openPage(browser, { server });
  const { page } = tab;
  await page.goto(`${server.url}/rooms`);
  await page.click("#manage-office summary");
  await page.fill("#office-name", "Study");
  await page.fill("#office-side", "east");
  await page.click("#manage-office form:first-of-type button[type=submit]");
  await page.waitForSelector(".notice");
  expect((await server.api("/api/v1/rooms/office")).body.data).toMatchObject({ name: "Study", side: "east" });

  // The kitchen has a device: its delete button is disabled, and the server refuses anyway (tested over HTTP).
  expect(await page.isDisabled("#manage-kitchen button.danger")).toBe(true);
  await page.click("#manage-office summary");
  await page.check("#manage-office input[name=confirm]");
  await page.click("#manage-office button.danger");
  await page.waitForSelector("#manage-office", { state: "detached" });
  expect((await server.api("/api/v1/rooms/office")).status).toBe(404);
});
