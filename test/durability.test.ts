// Ack means stored: the server killed mid-stream keeps every acknowledged
// reading; SIGTERM finishes in-flight commits and exits 0.

import { afterEach, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import { connectMqtt, legacyPayload, readingTopic, spawnServer, tempDir, waitFor, type ChildServer } from "./helpers.ts";

const TS = 1_725_427_200_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Publishes QoS 1 readings with up to `window` in flight until stopped; records each PUBACK. */
function stream(client: MqttClient, uid: string, window = 50) {
  const acked: number[] = [];
  let next = 0;
  let inflight = 0;
  let stopped = false;
  const pump = () => {
    while (!stopped && inflight < window) {
      const ts = TS + 1000 * next++;
      inflight++;
      client.publish(readingTopic(uid), legacyPayload(20 + (next % 10) / 10, 50, ts), { qos: 1 }, (err) => {
        inflight--;
        if (!err) acked.push(ts);
        pump();
      });
    }
  };
  pump();
  return { acked, stop: () => (stopped = true) };
}

async function storedTimestamps(server: ChildServer, uid: string): Promise<Set<number>> {
  const res = await fetch(`${server.url}/api/v1/devices/${uid}/readings?limit=10000`);
  const body = (await res.json()) as { data: { ts: string }[] };
  return new Set(body.data.map((r) => Date.parse(r.ts)));
}

test("every acknowledged reading survives the server being killed with SIGKILL mid-stream", async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const first = await spawnServer(dir.path);
  cleanups.push(async () => void (await first.stop("SIGKILL")));
  const client = await connectMqtt(first.mqttPort, { reconnectPeriod: 0 });
  client.on("error", () => {});
  cleanups.push(() => void client.end(true));
  const s = stream(client, "aht20-crash1");
  await waitFor(() => s.acked.length >= 3000, 30_000, "3000 acknowledged readings");
  first.proc.kill("SIGKILL"); // mid-stream: readings are in flight right now
  await first.proc.exited;
  s.stop();
  const acked = [...s.acked];
  expect(acked.length).toBeGreaterThanOrEqual(3000);

  const second = await spawnServer(dir.path);
  cleanups.push(async () => void (await second.stop("SIGKILL")));
  const stored = await storedTimestamps(second, "aht20-crash1");
  const lost = acked.filter((ts) => !stored.has(ts));
  expect(lost).toEqual([]);
  expect(stored.size).toBeGreaterThanOrEqual(acked.length);
}, 90_000);

test("SIGTERM stops accepting, commits what is in flight, closes in order and exits 0", async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const server = await spawnServer(dir.path);
  cleanups.push(async () => void (await server.stop("SIGKILL")));
  const client = await connectMqtt(server.mqttPort, { reconnectPeriod: 0 });
  client.on("error", () => {});
  cleanups.push(() => void client.end(true));
  const s = stream(client, "aht20-term01");
  await waitFor(() => s.acked.length >= 1000, 30_000, "1000 acknowledged readings");
  const code = await server.stop("SIGTERM");
  s.stop();
  expect(code).toBe(0);
  const out = server.output();
  expect(out).toContain("shutting down");
  expect(out).toMatch(/stopped readings_committed=\d+/);
  const acked = [...s.acked];

  const again = await spawnServer(dir.path);
  cleanups.push(async () => void (await again.stop("SIGKILL")));
  const stored = await storedTimestamps(again, "aht20-term01");
  expect(acked.filter((ts) => !stored.has(ts))).toEqual([]);
  expect(await again.stop("SIGINT")).toBe(0);
}, 90_000);
