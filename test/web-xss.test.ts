// Labels typed by people and text sent by sensors are shown as text on every
// page, in pushed fragments and in chart legends: nothing in them runs.

import { afterAll, beforeAll, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import type { Browser, Page } from "playwright-core";
import { connectMqtt, endMqtt, publishAcked, readingTopic, startServer, type TestServer } from "./helpers.ts";
import { launchBrowser, openPage, placeDevice, publishReadings } from "./web-helpers.ts";

const ROOM = "<script>alert(1)</script>";
const LABEL = "<img src=x onerror=alert(2)>";
const FLOOR = '"><svg onload=alert(3)>';
const PAYLOAD = "<script>alert(4)</script>";

let browser: Browser;
let server: TestServer;
let client: MqttClient;
let roomUid: string;
beforeAll(async () => {
  browser = await launchBrowser();
  server = await startServer({}, { logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, {
    uid: "aht20-999999",
    room: ROOM,
    label: LABEL,
    placedAt: Date.now() - 3_600_000,
    intervalS: 60,
  });
  roomUid = (await server.api("/api/v1/rooms")).body.data[0].uid;
  await server.api(`/api/v1/rooms/${roomUid}`, { method: "PUT", body: { floor: FLOOR, side: ROOM } });
  await publishReadings(client, "aht20-999999", [
    [Date.now() - 600_000, 21, 40],
    [Date.now() - 60_000, 21.5, 41],
  ]);
  // A sensor sending markup instead of JSON: the refusal reason quotes it.
  await publishAcked(client, readingTopic("aht20-999999"), PAYLOAD);
});
afterAll(async () => {
  await endMqtt(client);
  await server.stop();
  await browser.close();
});

/** Nothing ran, nothing was injected: no dialog, no error, no element made from the labels. */
async function expectInert(page: Page, dialogs: string[], errors: string[]): Promise<void> {
  expect(dialogs).toEqual([]);
  expect(errors).toEqual([]);
  expect(await page.locator("img[src=x], svg[onload]").count()).toBe(0);
  const inline = await page.evaluate(() => [...document.scripts].filter((s) => !s.src).map((s) => s.textContent));
  expect(inline).toEqual([]);
}

test("room and device labels containing markup are shown as text on every page", async () => {
  const { page, dialogs, errors, close } = await openPage(browser, { width: 900, server });
  try {
    const pages: [path: string, texts: string[]][] = [
      ["/", [ROOM, `${FLOOR} · ${ROOM}`]],
      ["/rooms", [ROOM]],
      [`/rooms/${roomUid}`, [ROOM, LABEL]],
      ["/devices", [LABEL, ROOM]],
      ["/devices/aht20-999999", [LABEL, ROOM]],
      [`/compare?rooms=${roomUid}`, [ROOM]],
    ];
    for (const [path, texts] of pages) {
      await page.goto(server.url + path);
      if (path.startsWith("/rooms/") || path.startsWith("/compare")) await page.waitForSelector("#chart[data-ready]");
      const body = await page.evaluate(() => document.body.innerText);
      for (const text of texts) expect(body).toContain(text);
      await expectInert(page, dialogs, errors);
    }
    // The room page's chart legend names the device by its label, as text.
    await page.goto(`${server.url}/rooms/${roomUid}`);
    await page.waitForSelector("#chart[data-ready=drawn]");
    expect(await page.locator(".u-legend").first().innerText()).toContain(LABEL);
    // The refusal reason quotes what the sensor sent, as text.
    await page.goto(`${server.url}/devices`);
    expect(await page.locator(".refusal").innerText()).toContain(PAYLOAD);
    await expectInert(page, dialogs, errors);
  } finally {
    await close();
  }
});

test("a card pushed by the event stream shows the labels as text too", async () => {
  const { page, dialogs, errors, close } = await openPage(browser, { server });
  try {
    await page.goto(server.url + "/");
    await page.waitForSelector('body[data-live="on"]');
    await publishReadings(client, "aht20-999999", [[Date.now(), 24.6, 44]]);
    await page.waitForFunction(() => document.querySelector(".temp")?.textContent === "24.6°C", null, { timeout: 10_000 });
    expect(await page.locator(".card h2").innerText()).toBe(ROOM);
    await expectInert(page, dialogs, errors);
  } finally {
    await close();
  }
});
