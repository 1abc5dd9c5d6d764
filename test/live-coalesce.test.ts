// Issue 16, the dashboard's event stream under a fast sensor: at 100
// readings a second (one room), an open dashboard receives one card a
// second, at most 10 KB/s (~570 KB/s before), and the first reading after a
// quiet spell still comes at once. A real server, a real MQTT client, the
// real /events stream read as bytes.

import { afterAll, beforeAll, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import { connectMqtt, endMqtt, legacyPayload, readingTopic, startServer, withTimeout, type TestServer } from "./helpers.ts";
import { placeDevice } from "./web-helpers.ts";

let server: TestServer;
let client: MqttClient;

beforeAll(async () => {
  server = await startServer({}, { logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, { uid: "aht20-fast01", room: "Lab", placedAt: Date.now() - 3_600_000, intervalS: 60 });
});
afterAll(async () => {
  await endMqtt(client);
  await server.stop();
});

/** Reads the dashboard's event stream: bytes and room-card events so far, each with its arrival time. */
async function watch() {
  const abort = new AbortController();
  const res = await fetch(`${server.url}/events?since=0`, { headers: { cookie: server.cookie }, signal: abort.signal });
  expect(res.status).toBe(200);
  const seen = { bytes: 0, cards: [] as number[], text: "" };
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        seen.bytes += value.length;
        const text = decoder.decode(value, { stream: true });
        seen.text += text;
        for (const _ of text.matchAll(/^event: room-lab$/gm)) seen.cards.push(performance.now());
      }
    } catch {}
  })();
  return { seen, stop: () => abort.abort() };
}

test("100 readings/s for 5 s: one Lab card a second, under 10 KB/s; a reading after a quiet second comes at once", async () => {
  const { seen, stop } = await watch();
  try {
    // The first message is every fragment (the page missed everything: the cards laid out whole); then quiet.
    await withTimeout(
      (async () => {
        while (!/^event: cards$/m.test(seen.text)) await Bun.sleep(10);
      })(),
      5000,
      "the first fragments",
    );
    await Bun.sleep(1100);
    const bytesBefore = seen.bytes;
    const cardsBefore = seen.cards.length;
    const started = performance.now();
    let i = 0;
    const base = Date.now() - 600_000;
    // 100 readings a second: 10 every 100 ms, for 5 s.
    while (performance.now() - started < 5000) {
      for (let k = 0; k < 10; k++, i++)
        client.publish(readingTopic("aht20-fast01"), legacyPayload(20 + (i % 50) / 10, 50, base + i * 10), { qos: 1 });
      await Bun.sleep(100);
    }
    const seconds = (performance.now() - started) / 1000;
    await Bun.sleep(1200); // the last coalesced message
    const bytes = seen.bytes - bytesBefore;
    const cards = seen.cards.slice(cardsBefore);
    const rate = bytes / (seconds + 1.2);
    console.log(
      `dashboard stream at ${Math.round(i / seconds)} readings/s: ${cards.length} Lab cards in ${seconds.toFixed(1)} s, ${(rate / 1024).toFixed(1)} KB/s`,
    );
    expect(i).toBeGreaterThan(300);
    // At most one card per second (+1 for the one at once, +1 after the end).
    expect(cards.length).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
    expect(cards.length).toBeGreaterThanOrEqual(3);
    for (let k = 1; k < cards.length; k++) expect(cards[k]! - cards[k - 1]!).toBeGreaterThan(900);
    expect(rate).toBeLessThan(10 * 1024);

    // After a quiet second, one reading is sent at once.
    await Bun.sleep(1100);
    const sentAt = performance.now();
    const n = seen.cards.length;
    client.publish(readingTopic("aht20-fast01"), legacyPayload(31.5, 50, Date.now()), { qos: 1 });
    await withTimeout(
      (async () => {
        while (seen.cards.length === n) await Bun.sleep(5);
      })(),
      2000,
      "the card after a quiet second",
    );
    expect(seen.cards[n]! - sentAt).toBeLessThan(500);
    expect(seen.text).toContain("31.5");
  } finally {
    stop();
  }
}, 30_000);
