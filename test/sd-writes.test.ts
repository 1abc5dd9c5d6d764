// Fewer SD-card writes without weakening "a PUBACK means stored" (issue 17):
// the commit window gathers readings into fewer commits, and the open hour's
// rollups are held in memory and recomputed exactly after a SIGKILL.

import { afterEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import type { MqttClient } from "mqtt";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../lib/server/config.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { openStore } from "../lib/server/store/store.ts";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  spawnServer,
  startServer,
  tempDir,
  waitFor,
} from "./helpers.ts";

const HOUR = 3_600_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Publishes `n` QoS 1 readings from `ts0` on, one second apart, up to 50 in flight; records each PUBACK. */
function stream(client: MqttClient, uid: string, ts0: number, n: number) {
  const acked: number[] = [];
  let next = 0;
  let inflight = 0;
  const pump = () => {
    while (next < n && inflight < 50) {
      const ts = ts0 + 1000 * next++;
      inflight++;
      client.publish(readingTopic(uid), legacyPayload(20 + (next % 17) / 10, 40 + (next % 13), ts), { qos: 1 }, (err) => {
        inflight--;
        if (!err) acked.push(ts);
        pump();
      });
    }
  };
  pump();
  return acked;
}

test("the open hour's rollups are held in memory, and recomputed exactly from the raw readings after a SIGKILL", async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const first = await spawnServer(dir.path);
  cleanups.push(async () => void (await first.stop("SIGKILL")));
  const client = await connectMqtt(first.mqttPort, { reconnectPeriod: 0 });
  client.on("error", () => {});
  cleanups.push(() => void client.end(true));
  // The next hour (a fresh database holds from the hour under way or the next one): at most 24 h ahead is valid.
  const hour = Math.ceil(Date.now() / HOUR) * HOUR + HOUR;
  const acked = stream(client, "aht20-held01", hour, 3000);
  await waitFor(() => acked.length >= 1500, 60_000, "1500 acknowledged readings");
  first.proc.kill("SIGKILL"); // mid-stream: the held rollups die with the process
  await first.proc.exited;
  const kept = [...acked];

  const store = openStore(join(dir.path, DB_FILE));
  try {
    const id = store.findDevice("aht20-held01")!.id;
    // The tables never got the held hour: only the killed process's memory had it.
    const db = new Database(join(dir.path, DB_FILE), { readonly: true });
    expect(db.query("SELECT count(*) AS n FROM rollup_hour WHERE b >= ?").get(hour)).toEqual({ n: 0 });
    db.close();
    const rows = store.history.rollupRange("hour", id, hour, hour + HOUR);
    const raw = store.history.rawSpan(id, hour, hour + HOUR);
    expect(raw.length).toBeGreaterThanOrEqual(kept.length);
    expect(kept.filter((ts) => !raw.some(([t]) => t === ts))).toEqual([]);
    // Recomputed at open: exactly the aggregate of the raw readings the crashed server committed.
    const t = raw.map((r) => r[1]);
    const h = raw.map((r) => r[2]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      b: hour,
      n: raw.length,
      t_sum: t.reduce((a, b) => a + b, 0),
      t_min: Math.min(...t),
      t_max: Math.max(...t),
      h_sum: h.reduce((a, b) => a + b, 0),
      h_min: Math.min(...h),
      h_max: Math.max(...h),
    });
    const day = store.history.rollupRange("day", id, Math.floor(hour / 86_400_000) * 86_400_000, hour + HOUR);
    expect(day.reduce((s, r) => s + r.n, 0)).toBe(raw.length);
  } finally {
    store.close();
  }
  // A restarted server answers the same hourly bucket through the API.
  const second = await spawnServer(dir.path);
  cleanups.push(async () => void (await second.stop("SIGKILL")));
  const res = await fetch(
    `${second.url}/api/v1/devices/aht20-held01/readings?bucket=hour&from=${hour}&to=${hour + HOUR}&limit=10`,
  );
  const body = (await res.json()) as { data: { count: number }[] };
  expect(body.data).toHaveLength(1);
  expect(body.data[0]!.count).toBeGreaterThanOrEqual(kept.length);
}, 120_000);

test("readings arriving at different moments share commits, and each PUBACK still comes after its commit", async () => {
  const server = await startServer({ ingest_commit_window_ms: 300 });
  cleanups.push(() => server.stop());
  const clients = await Promise.all(Array.from({ length: 8 }, () => connectMqtt(server.mqttPort)));
  cleanups.push(() => clients.forEach((c) => c.end(true)));
  const base = Date.now() - HOUR;
  const before = (await server.api("/api/v1/stats")).body.data.ingest.batches;
  const acks: Promise<number>[] = [];
  for (let round = 0; round < 3; round++) {
    clients.forEach((c, i) => {
      acks.push(
        new Promise((resolve, reject) =>
          // Spread over 200 ms: one at a time, as unsynchronised sensors send; each once a second.
          setTimeout(
            () =>
              c.publish(readingTopic(`aht20-win00${i}`), legacyPayload(21, 50, base + round * 1000), { qos: 1 }, (err) => {
                if (err) return reject(err);
                // Acknowledged means committed: it is in the database now.
                const n = server.db
                  .query<{ n: number }, [number]>("SELECT count(*) AS n FROM readings WHERE ts = ?")
                  .get(base + round * 1000)!.n;
                resolve(n);
              }),
            round * 1000 + i * 25,
          ),
        ),
      );
    });
  }
  const seen = await Promise.all(acks);
  expect(seen.every((n) => n >= 1)).toBe(true);
  const stats = (await server.api("/api/v1/stats")).body.data.ingest;
  // 24 readings at 24 different moments: a commit each before the window, a few with it.
  expect(stats.committed).toBeGreaterThanOrEqual(24);
  expect(stats.batches - before).toBeLessThanOrEqual(12);
}, 60_000);

test("a device replaying its backlog one reading at a time is not slowed down by the window", async () => {
  const server = await startServer({ ingest_commit_window_ms: 1000 });
  cleanups.push(() => server.stop());
  const client = await connectMqtt(server.mqttPort);
  cleanups.push(() => void client.end(true));
  const base = Date.now() - HOUR;
  const started = performance.now();
  // One in flight, the next sent on the PUBACK (as MQTT.js resends after a reconnect).
  for (let i = 0; i < 40; i++) {
    await new Promise<void>((resolve, reject) =>
      client.publish(readingTopic("aht20-replay"), legacyPayload(20, 50, base + i * 1000), { qos: 1 }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  // A window per reading would take 40 s; only the first waits.
  expect(performance.now() - started).toBeLessThan(15_000);
}, 60_000);

test("ingest_commit_window_ms is checked: a bad value stops the start naming the setting", () => {
  for (const bad of ["-1", "2001", "fast"]) {
    expect(() => loadConfig({ env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_INGEST_COMMIT_WINDOW_MS: bad } })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_INGEST_COMMIT_WINDOW_MS: bad } })).toThrow(
      /ingest_commit_window_ms/,
    );
  }
  expect(
    loadConfig({ env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_INGEST_COMMIT_WINDOW_MS: "0" } }).ingest_commit_window_ms,
  ).toBe(0);
});

test("where a local midnight falls inside a UTC hour (Asia/Kolkata), a held hour's readings go to their own days: held, written at the hour's end, and after a restart", async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  let clock = Date.parse("2026-11-27T18:05:00Z"); // 23:35 in Kolkata (UTC+5:30)
  const uid = "aht20-k01ata";
  const start = () => startServer({ home_timezone: "Asia/Kolkata" }, { now: () => clock, dataDir: dir.path });
  const nov27 = Date.parse("2026-11-26T18:30:00Z"); // local midnights
  const nov28 = Date.parse("2026-11-27T18:30:00Z");

  const first = await start();
  let client = await connectMqtt(first.mqttPort);
  await publishAcked(client, readingTopic(uid), legacyPayload(20, 40, Date.parse("2026-11-27T18:10:00Z"))); // 23:40, the 27th
  await publishAcked(client, readingTopic(uid), legacyPayload(30, 60, Date.parse("2026-11-27T18:40:00Z"))); // 00:10, the 28th
  const id = first.store.findDevice(uid)!.id;
  const days = (server: typeof first) =>
    server.store.history.rollupRange("day", id, 0, 8.64e15).map((r) => ({ b: r.b, n: r.n, t_max: r.t_max }));
  expect(days(first)).toEqual([
    { b: nov27, n: 1, t_max: 2000 },
    { b: nov28, n: 1, t_max: 3000 },
  ]);
  await endMqtt(client);
  await first.stop({ keepData: true });

  // An hour later: the held hour is recomputed at start from the raw readings, and written to the tables
  // (each side of midnight to its day) by the next commit.
  clock += HOUR;
  const second = await start();
  cleanups.push(() => second.stop({ keepData: true }));
  client = await connectMqtt(second.mqttPort);
  cleanups.push(() => endMqtt(client));
  await publishAcked(client, readingTopic(uid), legacyPayload(25, 50, Date.parse("2026-11-27T19:05:00Z"))); // 00:35, the 28th
  expect(days(second)).toEqual([
    { b: nov27, n: 1, t_max: 2000 },
    { b: nov28, n: 2, t_max: 3000 },
  ]);
  const db = new Database(join(dir.path, DB_FILE), { readonly: true });
  try {
    expect(db.query("SELECT b, n FROM rollup_day WHERE device_id = ? ORDER BY b").all(id)).toEqual([
      { b: nov27, n: 1 },
      { b: nov28, n: 1 },
    ]);
  } finally {
    db.close();
  }
});
