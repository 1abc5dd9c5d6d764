// Bytes written per reading: what wears out a Pi's SD card. Counted by the
// kernel (/proc/<pid>/io write_bytes: bytes the process sent to the storage
// layer), so the WAL, the database file and every rewrite of a 4 KiB page
// count, whatever SQLite does underneath.
//
// 1. Server: bench/ingest-server.ts in its own process, a fresh database with
//    the sensors enrolled, each sensor an MQTT.js client logged in with its own
//    secret publishing one QoS 1 reading a second for --duration seconds
//    (default 20; the issue measured 60): 50 sensors at random moments, 5
//    sensors at random moments, 10 sensors in step. At the end the WAL is
//    checkpointed (wal_checkpoint(TRUNCATE), by this process, its bytes
//    counted too), so pages written once to the WAL and again to the database
//    both count. Each load runs as before (ingest_commit_window_ms = 0: every
//    turn of the event loop commits; rollups written in every commit; SQLite's
//    default checkpoints: bench/ingest-server.ts --before) and with the
//    defaults, one after the other in the same run.
// 2. Agent: `bun sensor.ts` with the simulated sensor at a 1 s and a 30 s
//    interval, against a server in this process, as before (each PUBACK's
//    reading deleted in a transaction of its own, fsync'd) and as now, the two
//    side by side at the same time: bytes written and the outbox's
//    transactions (fsync'd ones apart) per reading, from the agent's own
//    counters in its "stopped" line. The 30 s run lasts --agent-slow seconds
//    (default 180: 6 readings).
//
//   bun bench/writes.ts [--duration S] [--agent-fast S] [--agent-slow S] [--only server|agent] [--dir DIR]
//
// DIR must be on a disk (not tmpfs: a tmpfs write is no block I/O and counts 0).

import mqtt, { type MqttClient } from "mqtt";
import { Database } from "bun:sqlite";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { enrollSensors } from "./enroll.ts";
import { loadConfig } from "../lib/server/config.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { openStore } from "../lib/server/store/store.ts";
import { createLog } from "../lib/shared/log.ts";
import { commandLine, parseCommandLine, positiveNumber, UsageError } from "../scripts/cli.ts";
import { start } from "../server.ts";
import { waitFor, withTimeout } from "../test/helpers.ts";
import { memory } from "./proc.ts";

const ARGS = commandLine(
  "bun bench/writes.ts [--duration S] [--agent-fast S] [--agent-slow S] [--only server|agent] [--dir DIR]",
  (args) => {
    const { values } = parseCommandLine(args, {
      duration: { type: "string" },
      "agent-fast": { type: "string" },
      "agent-slow": { type: "string" },
      only: { type: "string" },
      dir: { type: "string" },
    });
    if (values.only !== undefined && values.only !== "server" && values.only !== "agent")
      throw new UsageError(`--only: unknown part ${JSON.stringify(values.only)} (known: server, agent)`);
    return {
      duration: positiveNumber("duration", values.duration, 20),
      agentFast: positiveNumber("agent-fast", values["agent-fast"], 30),
      agentSlow: positiveNumber("agent-slow", values["agent-slow"], 180),
      only: values.only ?? null,
      dir: values.dir ?? tmpdir(),
    };
  },
);
const ROOT = join(import.meta.dir, "..");
const KiB = 1024;

/** Bytes a process has sent to the storage layer so far. */
function writeBytes(pid: number | "self"): number {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  return Number(/write_bytes:\s+(\d+)/.exec(io)![1]);
}

const work = mkdtempSync(join(ARGS.dir, "techtemp-bench-writes-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

// ---- 1. the server ----

interface Load {
  name: string;
  sensors: number;
  inStep: boolean;
}
const LOADS: Load[] = [
  { name: "50 sensors x 1/s, unsynchronised", sensors: 50, inStep: false },
  { name: "5 sensors x 1/s, unsynchronised", sensors: 5, inStep: false },
  { name: "10 sensors x 1/s, in step", sensors: 10, inStep: true },
];
const MODES = [
  { name: "before", env: { TECHTEMP_INGEST_COMMIT_WINDOW_MS: "0" } as Record<string, string>, args: ["--before"] },
  { name: "now (defaults)", env: {} as Record<string, string>, args: [] as string[] },
];

/** Enrolls `n` sensors in a fresh database in `dir`; returns their logins. */
function enroll(dir: string, n: number) {
  const store = openStore(join(dir, DB_FILE));
  const logins = enrollSensors(store, n, 3);
  store.close();
  return logins;
}

async function spawnServer(dir: string, env: Record<string, string>, args: string[]) {
  const conf = join(dir, "server.conf");
  writeFileSync(conf, "");
  const proc = Bun.spawn(["bun", join(import.meta.dir, "ingest-server.ts"), ...args], {
    env: {
      ...process.env,
      TECHTEMP_CONFIG: conf,
      TECHTEMP_DATA_DIR: dir,
      TECHTEMP_HOST: "127.0.0.1",
      TECHTEMP_HTTP_PORT: "0",
      TECHTEMP_MQTT_PORT: "0",
      TECHTEMP_LOG_LEVEL: "info",
      ...env,
    },
    stdout: "pipe",
    stderr: "inherit",
  });
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
  })();
  const match = (await waitFor(() => /server running http=(\d+) mqtt=(\d+)/.exec(out), 60_000, "the bench server to start"))!;
  return { proc, url: `http://127.0.0.1:${match[1]}`, mqttPort: Number(match[2]) };
}

async function connect(port: number, login: { username: string; password: string }): Promise<MqttClient> {
  const c = mqtt.connect({
    host: "127.0.0.1",
    port,
    clientId: `techtemp-${login.username}`,
    username: login.username,
    password: login.password,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("error", reject);
    }),
    30_000,
    `${login.username} to connect`,
  );
  return c;
}

async function runServerLoad(load: Load, mode: (typeof MODES)[number]) {
  const dir = join(work, `server-${load.sensors}-${load.inStep}-${mode.env.TECHTEMP_INGEST_COMMIT_WINDOW_MS ?? "d"}`);
  mkdirSync(dir, { recursive: true });
  const logins = enroll(dir, load.sensors);
  const server = await spawnServer(dir, mode.env, mode.args);
  await Bun.sleep(2000);
  const idle = memory(server.proc.pid);
  const clients = await Promise.all(logins.map((l) => connect(server.mqttPort, l)));
  await Bun.sleep(1000); // connections settled, their writes (none expected) done
  const before = writeBytes(server.proc.pid);
  const latencies: number[] = [];
  let sent = 0;
  let acked = 0;
  const base = Date.now();
  const publish = (i: number, seq: number) => {
    const c = clients[i]!;
    const payload = `{"temperature_c":${(20 + (seq % 50) / 10).toFixed(2)},"humidity_pct":45.50,"ts":${base + seq * 1000}}`;
    const t0 = performance.now();
    sent++;
    c.publish(`home/bench/sensors/${logins[i]!.username}/reading`, payload, { qos: 1 }, (err) => {
      if (err) return;
      acked++;
      latencies.push(performance.now() - t0);
    });
  };
  const timers: ReturnType<typeof setTimeout>[] = [];
  const startAt = performance.now();
  const seconds = ARGS.duration;
  for (let i = 0; i < clients.length; i++) {
    // In step: every sensor at the same moment of each second; otherwise each at its own moment.
    const phase = load.inStep ? 0 : Math.random() * 1000;
    let seq = 0;
    const tick = () => {
      if (seq >= seconds) return;
      publish(i, seq++);
      // On the grid (not drifting): the next second after startAt + phase.
      timers.push(setTimeout(tick, Math.max(0, startAt + phase + seq * 1000 - performance.now())));
    };
    timers.push(setTimeout(tick, phase));
  }
  await waitFor(() => sent === clients.length * seconds && acked === sent, (seconds + 60) * 1000, "every reading acknowledged");
  for (const t of timers) clearTimeout(t);
  const written = writeBytes(server.proc.pid) - before;
  const stats = (await (await fetch(`${server.url}/api/v1/stats`)).json()) as { data: { ingest: { batches: number } } };
  // The checkpoint the server would run later, run now by this process and counted.
  const selfBefore = writeBytes("self");
  const db = new Database(join(dir, DB_FILE));
  db.exec("PRAGMA busy_timeout = 10000");
  const cp = db.query("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number };
  const stored = (db.query("SELECT count(*) AS n FROM readings").get() as { n: number }).n;
  db.close();
  const checkpointed = writeBytes("self") - selfBefore;
  for (const c of clients) c.end(true);
  server.proc.kill("SIGTERM");
  await withTimeout(server.proc.exited, 30_000, "the bench server to stop");
  rmSync(dir, { recursive: true, force: true });
  if (stored !== acked) throw new Error(`${acked} readings acknowledged but ${stored} stored`);
  return {
    idle,
    readings: stored,
    commits: stats.data.ingest.batches,
    perReading: written / stored,
    withCheckpoint: (written + checkpointed) / stored,
    checkpointBusy: cp.busy,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

async function benchServer(): Promise<void> {
  console.log(`\nServer: bytes written per reading (${ARGS.duration} s per load, fresh database, /proc/<pid>/io write_bytes)`);
  console.log(
    "| load | mode | readings | commits | written/reading | with checkpoint | PUBACK p50 | PUBACK p99 |\n|---|---|---|---|---|---|---|---|",
  );
  const idle: string[] = [];
  for (const load of LOADS) {
    for (const mode of MODES) {
      const r = await runServerLoad(load, mode);
      idle.push(`${r.idle.rss.toFixed(1)} MB (anon ${r.idle.anon.toFixed(1)}, file ${r.idle.file.toFixed(1)})`);
      console.log(
        `| ${load.name} | ${mode.name} | ${r.readings} | ${r.commits} | ${(r.perReading / KiB).toFixed(2)} KiB | ${(r.withCheckpoint / KiB).toFixed(2)} KiB${r.checkpointBusy ? " (busy)" : ""} | ${r.p50.toFixed(0)} ms | ${r.p99.toFixed(0)} ms |`,
      );
    }
  }
  console.log(
    `server RSS idle, 2 s after start, each run: ${idle.join("; ")} (the source tree run by bun; the release executable against the 60 MB goal: bench/server-memory.ts)`,
  );
}

// ---- 2. the agent ----

const AGENT_MODES = [
  { name: "before (each PUBACK's reading deleted in its own commit)", args: ["--before"] },
  { name: "now", args: [] as string[] },
];

async function benchAgent(): Promise<void> {
  const server = await start(
    loadConfig({ env: {}, overrides: { http_port: 0, mqtt_port: 0, host: "127.0.0.1", data_dir: join(work, "agent-server") } }),
    { log: createLog({ level: "warn" }), insecureOpenMqtt: true },
  );
  console.log("\nAgent: outbox writes per reading (bun sensor.ts, simulated sensor, /proc/<pid>/io write_bytes)");
  console.log(
    "| interval | mode | run | readings | written/reading | transactions/reading | fsync'd/reading |\n|---|---|---|---|---|---|---|",
  );
  try {
    for (const [interval, seconds] of [
      [1, ARGS.agentFast],
      [30, ARGS.agentSlow],
    ] as const) {
      // Both modes at the same time: the same machine load for each.
      const runs = AGENT_MODES.map(async (mode, i) => {
        const uid = `bench-agent-${interval}-${i}`;
        const proc = Bun.spawn(["bun", join(import.meta.dir, "writes-agent.ts"), ...mode.args], {
          env: {
            ...(process.env as Record<string, string>),
            TECHTEMP_SENSOR_DRIVER: "sim",
            TECHTEMP_DATA_DIR: join(work, "agent", uid),
            TECHTEMP_DEVICE_UID: uid,
            TECHTEMP_MQTT_HOST: "127.0.0.1",
            TECHTEMP_MQTT_PORT: String(server.mqttPort),
            TECHTEMP_CLOCK_SYNC_WAIT_S: "0",
            TECHTEMP_INTERVAL_S: String(interval),
            TECHTEMP_LOG_LEVEL: "info",
          },
          cwd: ROOT,
          stdout: "pipe",
          stderr: "inherit",
        });
        let out = "";
        void (async () => {
          for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
        })();
        await waitFor(() => out.includes("connected"), 60_000, `${uid} to connect`, 50);
        const before = writeBytes(proc.pid);
        await Bun.sleep(seconds * 1000);
        // The PUBACK of the last reading (if it is on its way) before the stop.
        await Bun.sleep(Math.min(1000, interval * 500));
        const written = writeBytes(proc.pid) - before;
        proc.kill("SIGTERM");
        await withTimeout(proc.exited, 30_000, `${uid} to stop`);
        const stopped = out.split("\n").find((l) => l.includes("stopped") && l.includes("commits="));
        if (!stopped) throw new Error(`${uid}: no "stopped" line with its counters:\n${out.slice(-2000)}`);
        const field = (k: string) => Number(new RegExp(`\\b${k}=(\\d+)`).exec(stopped)?.[1] ?? NaN);
        const readings = field("readings");
        return {
          mode: mode.name,
          readings,
          written,
          commits: field("commits"),
          synced: field("synced_commits"),
          unsent: field("unsent"),
        };
      });
      for (const r of await Promise.all(runs)) {
        console.log(
          `| ${interval} s | ${r.mode} | ${seconds} s | ${r.readings} | ${(r.written / r.readings / KiB).toFixed(2)} KiB | ${(r.commits / r.readings).toFixed(2)} | ${(r.synced / r.readings).toFixed(2)} |`,
        );
      }
    }
  } finally {
    await server.close();
  }
}

console.log(
  `machine: ${navigator.hardwareConcurrency} cores, load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
);
if (ARGS.only !== "agent") await benchServer();
if (ARGS.only !== "server") await benchAgent();
process.exit(0);
