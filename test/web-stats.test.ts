// The room page's statistics table and export links (server-rendered, no JavaScript needed).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connectMqtt, endMqtt, legacyPayload, publishAcked, readingTopic, startServer, type TestServer } from "./helpers.ts";

const H = 3_600_000;
const NOW = Date.parse("2026-03-10T12:00:00Z");
let server: TestServer;

beforeAll(async () => {
  // Placed 3 days ago with a 1-hour interval; hourly readings; a 30 °C peak on 8 March at 15:00 UTC.
  const from = Date.parse("2026-03-07T12:00:00Z");
  let clock = from;
  server = await startServer({}, { now: () => clock });
  await server.api("/api/v1/devices", { body: { device_uid: "aht20-stat01", room_name: "Study" } });
  await server.api("/api/v1/devices/aht20-stat01", { method: "PUT", body: { interval_s: 3600 } });
  clock = NOW;
  const client = await connectMqtt(server.mqttPort);
  for (let ts = from; ts < NOW; ts += H) {
    const peak = ts === Date.parse("2026-03-08T15:00:00Z");
    await publishAcked(client, readingTopic("aht20-stat01"), legacyPayload(peak ? 30 : 20, 50, ts));
  }
  await endMqtt(client);
});
afterAll(async () => {
  await server.stop();
});

test("the room page shows min, max with their times, mean and coverage per day of the window", async () => {
  const res = await server.fetch(`/rooms/study?range=7d`);
  expect(res.status).toBe(200);
  const html = await res.text();
  expect(html).toContain("Statistics per day");
  const table = html.slice(
    html.indexOf('<table class="stats stack">'),
    html.indexOf("</table>", html.indexOf('<table class="stats stack">')),
  );
  const rows = table.split("<tr>").slice(2); // header row, then one row per day, newest first
  expect(rows.length).toBe(4); // 7, 8, 9 and 10 March
  expect(rows[0]).toContain("10 Mar 2026");
  const eighth = rows.find((r) => r.includes("8 Mar 2026"))!.replace(/<[^>]+>/g, "");
  expect(eighth).toContain("20.0–30.0 °C");
  expect(eighth).toContain("100 %"); // 24 hourly readings of 24 expected
  expect(eighth).toContain("20.4 °C"); // (23 × 20 + 30) / 24
});

test("the window's readings can be downloaded as CSV and JSON from the room page", async () => {
  const html = await (await server.fetch(`/rooms/study?range=7d`)).text();
  const href = /href="(\/api\/v1\/rooms\/study\/export\?format=csv&(?:amp;)?bucket=raw[^"]*)"/
    .exec(html)![1]!
    .replace(/&amp;/g, "&");
  const csv = await (await server.fetch(href)).text();
  const lines = csv.trim().split("\n");
  expect(lines[0]).toContain("temperature");
  expect(lines.length).toBe(1 + 72);
});
