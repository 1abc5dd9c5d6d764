// Page benchmark: the dashboard's first-load weight and the server's time to
// render it with 20 rooms and a year of readings.
//
//   bun bench/pages.ts [--days N]      (default 365)
//
// Data: 20 rooms, one sensor each, a reading every 5 minutes for a year
// (105 120 per sensor, 2.1 M in all; the earlier agents' shipped interval),
// stored through store.insertReadings in batches (the same path as MQTT
// ingestion, rollups included), then a real server is started on it.
//
// Figures, each beside its reference measured in the same run:
// - weight: HTML + JS + CSS of GET / as transferred (gzip), beside the same
//   bytes uncompressed, and beside a room page (which adds uPlot);
// - render: GET / over HTTP on localhost (median, p95), and in-process renders
//   of the same view from (a) the live summaries (warm, what GET / does),
//   (b) the summaries read cold from SQLite (a server's first request), and
//   (c) the naive reference: every card computed per request with GROUP BY
//   over raw rows (latest per device over the whole table, as the earlier
//   server's /readings/latest did, then today's range and the 24 h sparkline).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAssets } from "../lib/server/http/assets.ts";
import { comfort } from "../lib/server/live/comfort.ts";
import { loadConfig } from "../lib/server/config.ts";
import { DB_FILE, openDatabase } from "../lib/server/store/db.ts";
import { expectedIntervalS, freshness } from "../lib/server/live/freshness.ts";
import { createLive, SLOT_MS, SPARK_SLOTS, startOfDay, type DeviceLive } from "../lib/server/live/live.ts";
import { createLog } from "../lib/shared/log.ts";
import { createStore, fromCenti, type Device, type IncomingReading } from "../lib/server/store/store.ts";
import { renderDashboard } from "../lib/server/http/pages/dashboard.ts";
import { plainShell } from "../views/parts.tsx";
import { start } from "../server.ts";
import { commandLine, parseCommandLine, positiveNumber } from "../scripts/cli.ts";

const ROOMS = 20;
const INTERVAL_MS = 300_000;
const DAYS = commandLine("bun bench/pages.ts [--days N]", (args) =>
  positiveNumber("days", parseCommandLine(args, { days: { type: "string" } }).values.days, 365),
);
const DAY = 86_400_000;

const quiet = createLog({ level: "error", sink: () => {} });
const dir = mkdtempSync(join(tmpdir(), "techtemp-bench-pages-"));
const now = Date.now();

function seed(): number {
  const db = openDatabase(join(dir, DB_FILE));
  const store = createStore(db);
  const t0 = performance.now();
  let total = 0;
  for (let r = 0; r < ROOMS; r++) {
    const uid = `aht20-${(0xa00000 + r).toString(16)}`;
    const room = store.createRoom({ name: `Room ${r + 1}`, floor: r < 10 ? "Ground floor" : "First floor" });
    const first = now - DAYS * DAY;
    const registration = { temperature_c: 20, humidity_pct: 50, ts: first - INTERVAL_MS };
    store.insertReadings([{ homeId: "home-001", deviceUid: uid, reading: registration, receivedAt: first }]);
    store.updateDevice(uid, { roomUid: room.uid, movedAt: first - 1000 });
    let batch: IncomingReading[] = [];
    for (let ts = first; ts <= now; ts += INTERVAL_MS) {
      const phase = ((ts % DAY) / DAY) * 2 * Math.PI;
      const season = Math.sin(((ts % (365 * DAY)) / (365 * DAY)) * 2 * Math.PI);
      const reading = {
        temperature_c: Math.round((19 + 3 * season + 1.5 * Math.sin(phase + r)) * 100) / 100,
        humidity_pct: Math.round((50 + 8 * Math.cos(phase)) * 100) / 100,
        ts,
      };
      batch.push({ homeId: "home-001", deviceUid: uid, reading, receivedAt: ts });
      if (batch.length === 20_000) {
        store.insertReadings(batch);
        total += batch.length;
        batch = [];
      }
    }
    store.insertReadings(batch);
    total += batch.length;
  }
  db.close();
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `seeded ${ROOMS} rooms × ${DAYS} days at ${INTERVAL_MS / 60_000} min: ${total.toLocaleString("en")} readings in ${seconds} s`,
  );
  return total;
}

/** Bytes of a response as transferred (no decompression) and uncompressed. */
async function sizeOf(url: string): Promise<{ gzip: number; raw: number }> {
  const res = await fetch(url, { headers: { "accept-encoding": "gzip" }, decompress: false });
  const body = new Uint8Array(await res.arrayBuffer());
  const raw = res.headers.get("content-encoding") === "gzip" ? Bun.gunzipSync(body).length : body.length;
  return { gzip: body.length, raw };
}

/** HTML + the scripts and stylesheets it references. */
async function pageWeight(base: string, path: string) {
  const html = await (await fetch(base + path)).text();
  const assets = [...html.matchAll(/<script src="([^"]+)"/g), ...html.matchAll(/<link rel="stylesheet" href="([^"]+)"/g)].map(
    (m) => m[1]!,
  );
  const parts = [{ name: path, ...(await sizeOf(base + path)) }];
  for (const a of assets) parts.push({ name: a.slice(a.lastIndexOf("/") + 1), ...(await sizeOf(base + a)) });
  return { parts, gzip: parts.reduce((s, p) => s + p.gzip, 0), raw: parts.reduce((s, p) => s + p.raw, 0) };
}

function stats(samples: number[]) {
  const sorted = samples.slice().sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, p95: sorted[Math.floor(sorted.length * 0.95)]!, n: sorted.length };
}

async function time(n: number, f: () => unknown | Promise<unknown>) {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    samples.push(performance.now() - t);
  }
  return stats(samples);
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
const ms = (s: { median: number; p95: number; n: number }) =>
  `median ${s.median.toFixed(2)} ms, p95 ${s.p95.toFixed(2)} ms (n=${s.n})`;

/** The naive reference: each card from GROUP BY queries over raw rows, per request. */
function naiveSummaries(db: ReturnType<typeof openDatabase>) {
  const latestAll = db.query<{ device_id: number; ts: number; t: number; h: number }, []>(
    `SELECT r1.device_id, r1.ts, r1.t, r1.h FROM readings r1
     JOIN (SELECT device_id, max(ts) AS max_ts FROM readings GROUP BY device_id) r2
       ON r1.device_id = r2.device_id AND r1.ts = r2.max_ts`,
  );
  const prev = db.query<{ ts: number }, [number, number]>("SELECT max(ts) AS ts FROM readings WHERE device_id = ? AND ts < ?");
  const today = db.query<{ t_min: number; t_max: number; h_min: number; h_max: number }, [number, number]>(
    `SELECT min(t) AS t_min, max(t) AS t_max, min(h) AS h_min, max(h) AS h_max FROM readings
     WHERE device_id = ? AND ts >= ? GROUP BY strftime('%Y-%m-%d', ts / 1000, 'unixepoch', 'localtime')`,
  );
  const spark = db.query<{ b: number; t: number; h: number }, [number, number]>(
    `SELECT (ts / ${SLOT_MS}) * ${SLOT_MS} AS b, avg(t) AS t, avg(h) AS h FROM readings WHERE device_id = ? AND ts >= ? GROUP BY b`,
  );
  return (at: number) => {
    const latest = new Map(latestAll.all().map((r) => [r.device_id, r]));
    return (d: Device): DeviceLive => {
      const last = latest.get(d.id) ?? null;
      const prevTs = last ? (prev.get(d.id, last.ts)?.ts ?? null) : null;
      const intervalS = expectedIntervalS({
        announced: d.interval_s,
        configured: d.config_interval_s,
        observedS: last && prevTs !== null ? (last.ts - prevTs) / 1000 : null,
      });
      const firstSlot = Math.floor(at / SLOT_MS) * SLOT_MS - (SPARK_SLOTS - 1) * SLOT_MS;
      const rows = spark.all(d.id, firstSlot - SLOT_MS * 8);
      const slots = new Map(rows.map((s) => [s.b, s.t]));
      const sparkValues = Array.from({ length: SPARK_SLOTS }, (_, i) => {
        const v = slots.get(firstSlot + i * SLOT_MS);
        return v === undefined ? null : Math.round(v) / 100;
      });
      const hourAgo = last ? rows.find((s) => s.b === Math.floor((last.ts - 3_600_000) / SLOT_MS) * SLOT_MS) : undefined;
      const trend =
        last && hourAgo
          ? { temperature: Math.round(last.t - hourAgo.t) / 100, humidity: Math.round(last.h - hourAgo.h) / 100 }
          : null;
      const day = today.get(d.id, startOfDay(at));
      const value = last ? { ts: last.ts, temperature: fromCenti(last.t), humidity: fromCenti(last.h) } : null;
      return {
        freshness: freshness({ lastReadingAt: last?.ts ?? null, intervalS, state: d.state, stateAt: d.state_at }, at),
        intervalS,
        last: value,
        today: day && {
          tMin: fromCenti(day.t_min),
          tMax: fromCenti(day.t_max),
          hMin: fromCenti(day.h_min),
          hMax: fromCenti(day.h_max),
        },
        comfort: value ? comfort(value.temperature, value.humidity) : null,
        spark: sparkValues,
        trend,
      };
    };
  };
}

try {
  const readings = seed();
  const config = loadConfig({ env: {}, overrides: { http_port: 0, mqtt_port: 0, host: "127.0.0.1", data_dir: dir } });
  const running = await start(config, { log: quiet });
  const base = `http://127.0.0.1:${running.httpPort}`;
  try {
    // The very first request fills the live summaries from SQLite.
    const first = await time(1, () => fetch(base + "/").then((r) => r.text()));
    const dashboard = await pageWeight(base, "/");
    const room = await pageWeight(base, "/rooms/room-1");
    await time(20, () => fetch(base + "/").then((r) => r.text()));
    const http = await time(200, () => fetch(base + "/").then((r) => r.text()));

    // In-process: the same view from three data sources, on a second connection to the same database.
    const db = openDatabase(join(dir, DB_FILE));
    const store = createStore(db);
    const shell = plainShell(createAssets().urls, now);
    const live = createLive({ store, log: quiet });
    renderDashboard(store, (d) => live.summary(d), shell, 0);
    const warm = await time(500, () => renderDashboard(store, (d) => live.summary(d), shell, 0));
    const cold = await time(50, () => {
      const fresh = createLive({ store, log: quiet });
      renderDashboard(store, (d) => fresh.summary(d), shell, 0);
      fresh.close();
    });
    const naive = naiveSummaries(db);
    const reference = await time(10, () => renderDashboard(store, naive(Date.now()), shell, 0));
    // Both paths render the same cards.
    const ours = renderDashboard(store, (d) => live.summary(d, now), shell, 0);
    const theirs = renderDashboard(store, naive(now), shell, 0);
    live.close();
    db.close();

    console.log(`\nDashboard first load, ${ROOMS} rooms (HTML + JS + CSS):`);
    for (const p of dashboard.parts)
      console.log(`  ${p.name.padEnd(20)} ${kb(p.gzip).padStart(9)} gzip   ${kb(p.raw).padStart(9)} raw`);
    console.log(
      `  ${"total".padEnd(20)} ${kb(dashboard.gzip).padStart(9)} gzip   ${kb(dashboard.raw).padStart(9)} raw   (goal ≤ 100 KB gzip)`,
    );
    console.log(`  room page (adds uPlot + chart.js): ${kb(room.gzip)} gzip, ${kb(room.raw)} raw`);
    console.log(`\nRender GET / with ${ROOMS} rooms and ${readings.toLocaleString("en")} readings (goal ≤ 10 ms):`);
    console.log(`  first request after start (fills the summaries from SQLite): ${first.median.toFixed(1)} ms`);
    console.log(`  HTTP on localhost, gzip included:        ${ms(http)}`);
    console.log(`  in-process, live summaries (warm):       ${ms(warm)}`);
    console.log(`  in-process, summaries read cold:         ${ms(cold)}`);
    console.log(`  reference: GROUP BY over raw rows:       ${ms(reference)}`);
    console.log(`  same cards from both: ${ours === theirs ? "yes" : "NO (differences in the rendered HTML)"}`);
  } finally {
    await running.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
