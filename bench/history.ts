// History benchmark: 10 devices × 2 years of 1-minute readings (~10.5 M),
// then, in one run: bytes per reading on disk; a year-long room chart from
// the rollups beside the same chart computed the earlier server's way (GROUP
// BY over raw rows); the last 24 h raw; a year of daily statistics; a CSV
// export of a year for one device (time, and peak RSS of the server process
// streaming it); the dashboard page; the server's RSS with this database.
//
//   bun bench/history.ts           (BENCH_HISTORY_DIR=/tmp/techtemp-bench-history; delete it to regenerate)
//
// The generated database is kept and reused: generating it takes a while.

import { spawnServer } from "../test/helpers.ts";
import { memory } from "./proc.ts";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { DB_FILE, openDatabase } from "../lib/server/store/db.ts";
import { bucketPoint } from "../lib/server/history/history.ts";
import { createHistory } from "../lib/server/history/history.ts";
import { createStats } from "../lib/server/history/stats.ts";
import { createHistoryQueries } from "../lib/server/store/history-queries.ts";
import { createRollups } from "../lib/server/store/rollups.ts";
import { ensureIncrementalVacuum } from "../lib/server/store/retention.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";

// Settings come from the environment; the command line takes nothing.
commandLine("bun bench/history.ts   (BENCH_HISTORY_DIR=/tmp/techtemp-bench-history)", (args) => parseCommandLine(args, {}));

const DIR = process.env.BENCH_HISTORY_DIR ?? "/tmp/techtemp-bench-history";
const DB_PATH = join(DIR, DB_FILE);
const DEVICES = 10;
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const YEAR = 365 * DAY;
const root = join(import.meta.dir, "..");

// ---- generation ----

/** Creates the database: rooms, devices, placements, readings (plain INSERTs), then rollups via the rebuild the server offers. */
function generate(): { readings: number; insertS: number; rollupS: number } {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const db = openDatabase(DB_PATH);
  ensureIncrementalVacuum(db);
  const end = Math.floor(Date.now() / MIN) * MIN;
  const start = end - 2 * YEAR;
  // Generation only: no journal, no fsync. The layout on disk is the same as the server's.
  db.exec("PRAGMA journal_mode = OFF");
  db.exec("PRAGMA synchronous = OFF");
  const rooms = ["Salon", "Cuisine", "Chambre", "Bureau", "Salle de bain"];
  db.transaction(() => {
    rooms.forEach((name, i) =>
      db
        .query("INSERT INTO rooms (id, uid, name, created_at) VALUES (?, ?, ?, ?)")
        .run(i + 1, name.toLowerCase().replace(/ /g, "-"), name, start),
    );
    for (let d = 1; d <= DEVICES; d++) {
      db.query("INSERT INTO devices (id, uid, created_at, interval_s) VALUES (?, ?, ?, 60)").run(
        d,
        `aht20-bench${String(d).padStart(2, "0")}`,
        start,
      );
    }
    // Two devices per room; the last one moves into the living room 200 days before the end, at 10:20.
    const move = Math.floor((end - 200 * DAY) / DAY) * DAY + 10 * HOUR + 20 * MIN;
    for (let d = 1; d <= DEVICES; d++) {
      const room = Math.ceil(d / 2);
      db.query("INSERT INTO placements (device_id, room_id, from_ts, to_ts) VALUES (?, ?, ?, ?)").run(
        d,
        room,
        start,
        d === DEVICES ? move : null,
      );
    }
    db.query("INSERT INTO placements (device_id, room_id, from_ts, to_ts) VALUES (?, 1, ?, NULL)").run(DEVICES, move);
  })();

  const started = performance.now();
  const PER = 50;
  const insert = db.prepare(`INSERT INTO readings (device_id, ts, t, h) VALUES ${Array(PER).fill("(?, ?, ?, ?)").join(", ")}`);
  const spikeAt = end - 100 * DAY + 13 * HOUR + 7 * MIN;
  let seed = 12345;
  const noise = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 41) - 20;
  let count = 0;
  for (let d = 1; d <= DEVICES; d++) {
    const phase = d / 3;
    const values: number[] = [];
    db.exec("BEGIN");
    for (let ts = start; ts < end; ts += MIN) {
      const day = Math.sin((2 * Math.PI * ts) / DAY + phase);
      const season = Math.sin((2 * Math.PI * ts) / YEAR);
      let t = Math.round(2000 + 250 * day + 400 * season + noise());
      if (d === 1 && ts === spikeAt) t = 4500; // one reading at 45 °C: must show in the year-long chart
      values.push(d, ts, t, Math.round(5000 - 600 * day + 800 * season + noise()));
      if (values.length === PER * 4) {
        insert.run(...values);
        values.length = 0;
      }
      count++;
      if (count % 1_000_000 === 0) {
        db.exec("COMMIT");
        db.exec("BEGIN");
        if (process.stdout.isTTY) process.stdout.write(`\r  generating: ${(count / 1e6).toFixed(0)} M readings`);
      }
    }
    // The leftover rows (fewer than one statement's worth).
    for (let i = 0; i < values.length; i += 4)
      db.query("INSERT INTO readings (device_id, ts, t, h) VALUES (?, ?, ?, ?)").run(...values.slice(i, i + 4));
    db.exec("COMMIT");
  }
  const insertS = (performance.now() - started) / 1000;
  if (process.stdout.isTTY) process.stdout.write("\r" + " ".repeat(40) + "\r");
  const rolled = performance.now();
  const readings = createRollups(db).rebuild();
  const rollupS = (performance.now() - rolled) / 1000;
  db.exec("PRAGMA journal_mode = WAL");
  // Written last: a database without it is a generation that did not finish.
  db.query("INSERT INTO history_meta (key, value) VALUES ('bench_end', ?)").run(end);
  db.close();
  return { readings, insertS, rollupS };
}

// ---- measuring ----

/** Resident memory of a process in MB: all of it, or only its own (anonymous) part. */
const rss = (pid: number, kind: "VmRSS" | "RssAnon" = "VmRSS"): number => (kind === "VmRSS" ? memory(pid).rss : memory(pid).anon);

/** Median milliseconds of `runs` calls after `warm` unmeasured ones. */
async function time(fn: () => unknown, runs = 20, warm = 3): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

/** Starts `bun server.ts` on the benchmark database (retention off: the database is reused between runs). */
const startServer = () => spawnServer(DIR, { TECHTEMP_RETENTION_RAW_DAYS: "0" }, [], 60_000);

/** Downloads `url` to nowhere while sampling `pid`'s RSS every 20 ms: seconds, bytes, peak RSS and peak heap (anonymous RSS). */
async function download(url: string, pid: number) {
  let peak = rss(pid);
  let heap = rss(pid, "RssAnon");
  const timer = setInterval(() => {
    peak = Math.max(peak, rss(pid));
    heap = Math.max(heap, rss(pid, "RssAnon"));
  }, 20);
  const started = performance.now();
  const res = await fetch(url);
  let bytes = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.length;
  }
  clearInterval(timer);
  peak = Math.max(peak, rss(pid));
  return { s: (performance.now() - started) / 1000, bytes, peak, heap };
}

const n = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "-");

let generated: ReturnType<typeof generate> | null = null;
const marker = () => {
  if (!existsSync(DB_PATH)) return null;
  const db = new Database(DB_PATH, { readonly: true });
  try {
    return db.query<{ value: number }, []>("SELECT value FROM history_meta WHERE key = 'bench_end'").get()?.value ?? null;
  } catch {
    return null;
  } finally {
    db.close();
  }
};
if (marker() === null) {
  console.log(`generating ${DEVICES} devices × 2 years of 1-minute readings in ${DIR} (kept for the next runs)…`);
  generated = generate();
}
const end = marker()!;
const from = end - YEAR;

const db = openDatabase(DB_PATH);
db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
const total = db.query<{ n: number }, []>("SELECT count(*) AS n FROM readings").get()!.n;
const tables = Object.fromEntries(
  db
    .query<{ name: string; bytes: number }, []>("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name")
    .all()
    .map((r) => [r.name, r.bytes]),
);
const fileBytes = statSync(DB_PATH).size + (existsSync(DB_PATH + "-wal") ? statSync(DB_PATH + "-wal").size : 0);
const queries = createHistoryQueries(db);
const history = createHistory(queries);
const stats = createStats(queries, history);
const salon = { kind: "room", id: 1 } as const;

// In process: the functions behind the endpoints, JSON included.
const chart = () => JSON.stringify(history.chart(salon, { from, to: end, points: 800, bucket: "auto" }));
const yearChart = history.chart(salon, { from, to: end, points: 800, bucket: "auto" });
const spikeSeen = Math.max(...yearChart.points.map((p) => ("temperature_max" in p ? p.temperature_max : p.temperature)));
const oursMs = await time(chart);
const statsMs = await time(() => JSON.stringify(stats.room(1, { from, to: end, period: "day", now: end })));
// The earlier server's way: GROUP BY over the raw readings of the room's placements.
const naiveSql = db.query(
  `SELECT (r.ts / 86400000) * 86400000 AS b, avg(r.t) AS t, min(r.t) AS t_min, max(r.t) AS t_max,
     avg(r.h) AS h, min(r.h) AS h_min, max(r.h) AS h_max, count(*) AS n
   FROM placements p JOIN readings r ON r.device_id = p.device_id
    AND r.ts >= max(p.from_ts, ?2) AND r.ts <= ?3 AND (p.to_ts IS NULL OR r.ts < p.to_ts)
   WHERE p.room_id = ?1 AND p.from_ts <= ?3 AND (p.to_ts IS NULL OR p.to_ts > ?2)
   GROUP BY b ORDER BY b`,
);
const naive = () => JSON.stringify(naiveSql.all(1, from, end));
const naiveMs = await time(naive, 3, 1);
const naiveRows = naiveSql.all(1, from, end) as { b: number; n: number }[];
const same =
  naiveRows.length === yearChart.points.length &&
  naiveRows.every((r, i) => (yearChart.points[i] as ReturnType<typeof bucketPoint>).count === r.n);
db.close();

// Over HTTP, against the real server on this database.
const server = await startServer();
const { proc, url } = server;
try {
  await Bun.sleep(1000);
  const idleRss = rss(proc.pid);
  const idleHeap = rss(proc.pid, "RssAnon");
  const get = (path: string) => fetch(url + path).then((r) => r.text());
  const httpChartMs = await time(() => get(`/api/v1/rooms/salon/history?from=${from}&to=${end}`));
  const rawMs = await time(() => get(`/api/v1/rooms/salon/history?from=${end - DAY}&to=${end}&bucket=raw`));
  const rawPoints = JSON.parse(await get(`/api/v1/rooms/salon/history?from=${end - DAY}&to=${end}&bucket=raw`)).data.points
    .length;
  const httpStatsMs = await time(() => get(`/api/v1/rooms/salon/stats?from=${from}&to=${end}&period=day`));
  const page = await fetch(url + "/");
  const pageOk =
    page.ok &&
    (page.headers.get("content-type") ?? "").includes("html") &&
    existsSync(join(root, "lib/server/http/pages/web.ts"));
  await page.text();
  const pageMs = pageOk ? await time(() => get("/"), 10, 2) : NaN;
  const afterRequests = rss(proc.pid);
  const afterHeap = rss(proc.pid, "RssAnon");
  const year = await download(`${url}/api/v1/devices/aht20-bench01/export?format=csv&from=${from}&to=${end}`, proc.pid);
  const finalRss = rss(proc.pid);
  // Flat memory: the same export over 1 month, 1 year and 2 years, each in a fresh server process.
  const sizes: { label: string; days: number; bytes: number; growth: number }[] = [];
  for (const [label, days] of [
    ["1 month", 30],
    ["1 year", 365],
    ["2 years", 730],
  ] as const) {
    const fresh = await startServer();
    try {
      await Bun.sleep(500);
      const idle = rss(fresh.proc.pid, "RssAnon");
      const d = await download(
        `${fresh.url}/api/v1/devices/aht20-bench01/export?format=csv&from=${end - days * DAY}&to=${end}`,
        fresh.proc.pid,
      );
      sizes.push({ label, days, bytes: d.bytes, growth: d.heap - idle });
    } finally {
      await fresh.stop();
    }
  }

  const rows: [string, string, string, string][] = [
    ["measure", "TechTemp", "earlier way / detail", "goal"],
    [
      "bytes per reading on disk (whole file)",
      n(fileBytes / total, 1),
      `readings table ${n(tables.readings / total, 1)} B; rollups ${n(((tables.rollup_hour ?? 0) + (tables.rollup_day ?? 0)) / 1e6, 1)} MB`,
      "",
    ],
    [
      "year-long room chart, in process",
      `${n(oursMs, 2)} ms`,
      `${n(naiveMs, 0)} ms GROUP BY over raw (${n(naiveMs / oursMs, 0)}× slower)`,
      "≤ 20 ms, ≥ 50×",
    ],
    [
      "year-long room chart, HTTP",
      `${n(httpChartMs, 2)} ms`,
      `${yearChart.bucket}, ${yearChart.points.length} points, max ${spikeSeen} °C (spike 45)`,
      "≤ 20 ms",
    ],
    ["last 24 h raw, room, HTTP", `${n(rawMs, 2)} ms`, `${rawPoints} points`, ""],
    ["year of daily statistics, room", `${n(statsMs, 2)} ms`, `HTTP ${n(httpStatsMs, 2)} ms, 365 days`, ""],
    [
      "CSV export, 1 year, 1 device, HTTP",
      `${n(year.s, 2)} s`,
      `${n(year.bytes / 1e6, 1)} MB, ${n(year.bytes / 1e6 / year.s, 1)} MB/s`,
      "",
    ],
    ["  server peak RSS during it", `${n(year.peak, 1)} MB`, `heap ${n(year.heap, 1)} MB (idle ${n(idleHeap, 1)})`, ""],
    [
      "  peak heap growth, fresh server",
      sizes.map((x) => `+${n(x.growth, 0)}`).join(" / ") + " MB",
      sizes.map((x) => `${x.label} (${n(x.bytes / 1e6, 0)} MB)`).join(" / "),
      "flat",
    ],
    [
      "dashboard page, HTTP",
      pageOk ? `${n(pageMs, 2)} ms` : "-",
      pageOk ? "GET /" : "lib/server/http/pages/web.ts not there yet (or / is not a page)",
      "",
    ],
    [
      "server RSS after the requests above",
      `${n(afterRequests, 1)} MB`,
      `idle ${n(idleRss, 1)} MB; heap ${n(afterHeap, 1)} MB`,
      "≤ 100 MB",
    ],
    [
      "server RSS after the export too",
      `${n(finalRss, 1)} MB`,
      `heap ${n(rss(proc.pid, "RssAnon"), 1)} MB; the rest is the Bun executable's pages`,
      "",
    ],
  ];
  console.log(
    `History: ${DEVICES} devices × 2 years of 1-minute readings = ${total.toLocaleString("en-US")} readings, ${n(fileBytes / 1e6, 0)} MB, in ${DIR}` +
      (generated
        ? ` (generated: inserts ${n(generated.insertS, 0)} s, rollups rebuilt ${n(generated.rollupS, 0)} s)`
        : " (reused)"),
  );
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    console.log(
      "  " +
        r
          .map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
          .join("  ")
          .trimEnd(),
    );
  const ok = oursMs <= 20 && httpChartMs <= 20 && naiveMs / oursMs >= 50 && afterRequests <= 100 && same && spikeSeen === 45;
  console.log(`  rollup chart = GROUP BY chart (counts per day): ${same ? "yes" : "NO"}; goals ${ok ? "met" : "NOT met"}`);
} finally {
  proc.kill("SIGTERM");
  await proc.exited;
}
