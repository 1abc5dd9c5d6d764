// Sensor agent benchmark: `bun bench/agent.ts [--duration S] [--readings N] [--only footprint|drain]`
//
// 1. Footprint: the agent (--interval, default 1 s; real server over TCP) for
//    --duration seconds (default 150) after a 10 s warm-up: RSS (also
//    anonymous memory and PSS) sampled every second, CPU time per reading.
//    Run as the compiled executable with its unit's Environment= reading the
//    AHT20 simulated behind the C ABI through bun:ffi (test/fixtures/fake-aht20,
//    built with gcc; the driver measures at most every 2 s, as the datasheet
//    asks), and as `bun sensor.ts` and the compiled executable with the
//    simulated driver. Reference, measured side by side: a bare `bun -e` idle
//    process. Goal: RSS ≤ 40 MB.
// 2. Drain: an outbox pre-filled with --readings (default 100,000) readings,
//    as after a long outage; time from the agent's connect until the server
//    has committed them all, at the default drain rate and uncapped.
//    Reference: the same readings published straight from a plain MQTT.js
//    client (QoS 1, 1,000 in flight) to the same server. Goal: ≥ 2,000/s.

import { dropFromPageCache, memory } from "./proc.ts";
import { commandLine, parseCommandLine, positiveNumber, UsageError } from "../scripts/cli.ts";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../lib/server/config.ts";
import { topicFor } from "../lib/shared/contract.ts";
import { DEVICE_DEFAULTS } from "../lib/sensor/device-config.ts";
import { createLog } from "../lib/shared/log.ts";
import { ClockState, openOutbox, outboxPath, type NewReading } from "../lib/sensor/outbox.ts";
import { start } from "../server.ts";
import { buildFakeAht20 } from "../test/fixtures/fake-aht20/build.ts";

const ARGS = commandLine("bun bench/agent.ts [--duration S] [--interval S] [--readings N] [--only footprint|drain]", (args) => {
  const { values } = parseCommandLine(args, {
    duration: { type: "string" },
    interval: { type: "string" },
    readings: { type: "string" },
    only: { type: "string" },
  });
  if (values.only !== undefined && values.only !== "footprint" && values.only !== "drain")
    throw new UsageError(`--only: unknown part ${JSON.stringify(values.only)} (known: footprint, drain)`);
  return {
    duration: positiveNumber("duration", values.duration, 150),
    interval: Math.round(positiveNumber("interval", values.interval, 1)),
    readings: Math.round(positiveNumber("readings", values.readings, 100_000)),
    only: values.only ?? null,
  };
});
const DURATION_S = ARGS.duration;
/** The footprint's reading interval (`--interval`, default 1 s; the unit's default is 30 s). */
const INTERVAL_S = ARGS.interval;
const READINGS = ARGS.readings;
/** `--only footprint` or `--only drain` runs one part. */
const ONLY = ARGS.only;
const WARMUP_S = 10;
const ROOT = join(import.meta.dir, "..");
const CLK_TCK = 100; // USER_HZ on Linux

const work = mkdtempSync(join(tmpdir(), "techtemp-bench-agent-"));
const server = await start(
  loadConfig({ env: {}, overrides: { http_port: 0, mqtt_port: 0, host: "127.0.0.1", data_dir: join(work, "server") } }),
  // MQTT authentication off (a code-only switch, as bench/ingest.ts uses): the agents here have no secrets.
  { log: createLog({ level: "warn" }), insecureOpenMqtt: true },
);
// Count committed readings per device in the server itself (after each group commit).
const committed = new Map<string, number>();
const committedAt = new Map<string, number>();
server.store.on("readings", (batch) => {
  const now = performance.now();
  for (const r of batch) {
    committed.set(r.deviceUid, (committed.get(r.deviceUid) ?? 0) + 1);
    committedAt.set(r.deviceUid, now);
  }
});

function agentEnv(uid: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    TECHTEMP_SENSOR_DRIVER: "sim",
    TECHTEMP_DATA_DIR: join(work, "agent"),
    TECHTEMP_DEVICE_UID: uid,
    TECHTEMP_MQTT_HOST: "127.0.0.1",
    TECHTEMP_MQTT_PORT: String(server.mqttPort),
    // This machine's kernel may report its clock unsynchronised; the footprint is the same either way.
    TECHTEMP_CLOCK_SYNC_WAIT_S: "0",
    TECHTEMP_LOG_LEVEL: "info",
    ...extra,
  };
}

/** CPU time (user + system) of a process, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // After "pid (comm) ": state is field 3, so utime (14) and stime (15) are at 11 and 12.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 1) => n.toFixed(digits);

async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** Spawns a process whose stdout lines are watched for `pattern`; resolves the time the first match arrived. */
function spawnWatching(cmd: string[], env: Record<string, string>, pattern: RegExp) {
  const proc = Bun.spawn(cmd, { env, cwd: ROOT, stdout: "pipe", stderr: "inherit", stdin: "ignore" });
  const lines: string[] = [];
  let resolveMatch: (t: number) => void = () => {};
  const matched = new Promise<number>((resolve) => (resolveMatch = resolve));
  void (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        if (lines.length < 1000) lines.push(line);
        if (pattern.test(line)) resolveMatch(performance.now());
      }
    }
  })();
  return { proc, matched, lines };
}

// ---- 1. footprint at --interval ----

type Mem = ReturnType<typeof memory>;

/** The processes measured side by side: the agent three ways, and the reference. */
async function footprintVariants(): Promise<{ name: string; cmd: string[]; env?: Record<string, string>; uid?: string }[]> {
  const variants: { name: string; cmd: string[]; env?: Record<string, string>; uid?: string }[] = [
    { name: "bun sensor.ts, simulated driver", cmd: ["bun", "sensor.ts"], uid: "bench-idle-source" },
  ];
  // The executable `bun run build` ships (bun build --compile), built here for this machine.
  const exe = join(work, "techtemp-sensor");
  const built = await Bun.build({
    entrypoints: [join(ROOT, "sensor.ts")],
    compile: { outfile: exe },
    throw: false,
  } as Parameters<typeof Bun.build>[0]);
  if (built.success) variants.push({ name: "compiled, simulated driver", cmd: [exe], uid: "bench-idle-compiled" });
  else console.log(`   (could not compile sensor.ts: ${built.logs.map(String).join("; ")})`);
  if (built.success) {
    // As systemd runs it: only the unit's Environment= (no BUN_JSC_* setting) and the real FFI path.
    const unitEnv = Object.fromEntries(
      readFileSync(join(ROOT, "systemd/techtemp-sensor.service"), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("Environment="))
        .map((l) => l.slice("Environment=".length).split(/=(.*)/s).slice(0, 2)),
    );
    const library = await buildFakeAht20(work);
    variants.unshift({
      name: "compiled, unit environment, AHT20 over bun:ffi",
      cmd: [exe],
      env: {
        ...unitEnv,
        TECHTEMP_DATA_DIR: join(work, "agent"),
        TECHTEMP_SENSOR_DRIVER: "aht20",
        TECHTEMP_LIBC: library,
        FAKE_AHT20_NODE: "none",
      },
      uid: "bench-idle-unit",
    });
  }
  variants.push({ name: "bare bun -e (reference)", cmd: ["bun", "-e", "setInterval(() => {}, 1000)"] });
  return variants;
}

async function footprint() {
  const variants = await footprintVariants();
  // As after a boot: the compiled agent (just built, so all of it cached) dropped from the page cache.
  for (const exe of new Set(variants.map((v) => v.cmd[0]!).filter((c) => c !== "bun"))) dropFromPageCache(exe);
  const procs = variants.map((v) =>
    Bun.spawn(v.cmd, {
      env: v.uid
        ? agentEnv(v.uid, { TECHTEMP_INTERVAL_S: String(INTERVAL_S), ...v.env })
        : (process.env as Record<string, string>),
      cwd: ROOT,
      stdout: "ignore",
      stderr: "inherit",
    }),
  );
  try {
    console.log(
      `footprint: ${variants.length} processes side by side at a ${INTERVAL_S} s interval for ${DURATION_S} s after a ${WARMUP_S} s warm-up…`,
    );
    await Bun.sleep(WARMUP_S * 1000);
    const startCpu = procs.map((p) => cpuMs(p.pid));
    const startReadings = variants.map((v) => (v.uid ? (committed.get(v.uid) ?? 0) : 0));
    const startAt = performance.now();
    const samples: Mem[][] = procs.map(() => []);
    while (performance.now() - startAt < DURATION_S * 1000) {
      procs.forEach((p, i) => samples[i]!.push(memory(p.pid, true)));
      await Bun.sleep(1000);
    }
    const elapsedS = (performance.now() - startAt) / 1000;
    return variants.map((v, i) => ({
      name: v.name,
      readings: v.uid ? (committed.get(v.uid) ?? 0) - startReadings[i]! : 0,
      cpuMs: cpuMs(procs[i]!.pid) - startCpu[i]!,
      elapsedS,
      rss: median(samples[i]!.map((x) => x.rss)),
      rssMax: Math.max(...samples[i]!.map((x) => x.rss)),
      anon: median(samples[i]!.map((x) => x.anon)),
      file: median(samples[i]!.map((x) => x.file)),
      pss: median(samples[i]!.map((x) => x.pss)),
    }));
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
  }
}

// ---- 2. drain after an outage ----

/** Readings as an outage of `n` readings at a 1 s interval would have left them (ending an hour ago). */
function outage(n: number): NewReading[] {
  const end = Date.now() - 3_600_000;
  return Array.from({ length: n }, (_, i) => ({
    ts: end - (n - i) * 1000,
    t: 20 + (i % 500) / 100,
    h: 40 + (i % 300) / 100,
    mono: 0,
    boot: "bench",
    state: ClockState.Synced,
  }));
}

async function drainAgent(uid: string, extra: Record<string, string>) {
  const outbox = openOutbox(outboxPath(join(work, "agent"), uid), {
    maxReadings: READINGS * 2,
    log: createLog({ level: "warn" }),
  });
  outbox.addMany(outage(READINGS));
  outbox.close();
  // A 1 s interval, as during the outage (its bound, 30 days of readings, holds them all); live readings join the queue.
  const { proc, matched } = spawnWatching(
    ["bun", "sensor.ts"],
    agentEnv(uid, { TECHTEMP_INTERVAL_S: "1", ...extra }),
    /mqtt: connected/,
  );
  let peakRss = 0;
  const sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, memory(proc.pid).rss);
    } catch {}
  }, 200);
  try {
    const connectedAt = await matched;
    const cpuBefore = cpuMs(proc.pid);
    await waitUntil(() => (committed.get(uid) ?? 0) >= READINGS, 600_000, `${READINGS} readings from ${uid}`);
    const seconds = (committedAt.get(uid)! - connectedAt) / 1000;
    return { seconds, rate: READINGS / seconds, cpuMs: cpuMs(proc.pid) - cpuBefore, peakRss };
  } finally {
    clearInterval(sampler);
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

async function drainReference(uid: string) {
  const script = `
    import mqtt from "mqtt";
    const topic = ${JSON.stringify(topicFor("home-001", uid, "reading"))};
    const count = ${READINGS};
    const end = Date.now() - 3_600_000;
    const client = mqtt.connect({ host: "127.0.0.1", port: ${server.mqttPort}, protocolVersion: 4, clientId: "bench-reference", reconnectPeriod: 0 });
    client.on("connect", () => {
      console.log("connected");
      // 1,000 in flight: MQTT packet ids are 16 bits, so 100,000 cannot all be outstanding at once.
      let next = 0, acked = 0;
      const send = () => {
        while (next < count && next - acked < 1000) {
          const i = next++;
          const payload = JSON.stringify({ temperature_c: 20 + (i % 500) / 100, humidity_pct: 40 + (i % 300) / 100, ts: end - (count - i) * 1000 });
          client.publish(topic, payload, { qos: 1 }, (err) => { if (err) throw err; acked++; if (acked === count) client.end(); else send(); });
        }
      };
      send();
    });`;
  const { proc, matched } = spawnWatching(["bun", "-e", script], process.env as Record<string, string>, /^connected$/);
  const connectedAt = await matched;
  const cpuBefore = cpuMs(proc.pid);
  let cpuAfter = cpuBefore;
  await waitUntil(
    () => {
      try {
        cpuAfter = cpuMs(proc.pid);
      } catch {}
      return (committed.get(uid) ?? 0) >= READINGS;
    },
    600_000,
    `${READINGS} readings from the reference client`,
  );
  const seconds = (committedAt.get(uid)! - connectedAt) / 1000;
  await proc.exited;
  return { seconds, rate: READINGS / seconds, cpuMs: cpuAfter - cpuBefore };
}

try {
  if (ONLY !== "drain") await reportFootprint();
  if (ONLY !== "footprint") await reportDrain();
} finally {
  await server.close();
  rmSync(work, { recursive: true, force: true });
}

async function reportFootprint() {
  const rows = await footprint();
  console.log(`\n1. footprint at a ${INTERVAL_S} s interval (${fmt(rows[0]!.elapsedS, 0)} s measured; medians of 1 s samples)`);
  console.log(`   ${"".padEnd(48)} RSS      RSS max  anon     file     PSS      CPU/reading  CPU`);
  for (const r of rows) {
    const perReading = r.readings > 0 ? `${fmt(r.cpuMs / r.readings, 2)} ms` : "-";
    console.log(
      `   ${r.name.padEnd(48)} ${fmt(r.rss).padStart(5)} MB ${fmt(r.rssMax).padStart(5)} MB ${fmt(r.anon).padStart(5)} MB ${fmt(r.file).padStart(5)} MB ` +
        `${fmt(r.pss).padStart(5)} MB ${perReading.padStart(11)}  ${fmt((r.cpuMs / (r.elapsedS * 1000)) * 100, 2)} %` +
        (r.readings > 0 ? `  (${r.readings} readings)` : ""),
    );
  }
  const agent = rows[0]!;
  console.log(
    `   goal RSS ≤ 36 MB (issue 17): ${agent.rss <= 36 ? "met" : `NOT met by ${agent.name} (+${fmt(agent.rss - 36)} MB)`}`,
  );
  console.log("   anon = the process's own memory; file = pages of the Bun executable it touched (shared, clean, reclaimable)");
}

async function reportDrain() {
  console.log(`\n2. drain of ${READINGS.toLocaleString("en")} readings after an outage, to the same server`);
  const ref = await drainReference("bench-reference");
  const capped = await drainAgent("bench-drain", {});
  const uncapped = await drainAgent("bench-drain-uncapped", { TECHTEMP_OUTBOX_DRAIN_RATE: "100000" });
  const line = (name: string, r: { seconds: number; rate: number; cpuMs: number; peakRss?: number }) =>
    console.log(
      `   ${name.padEnd(44)} ${fmt(r.seconds, 2).padStart(7)} s ${Math.round(r.rate).toLocaleString("en").padStart(8)} readings/s  ` +
        `CPU ${fmt(r.cpuMs / 1000, 2)} s${r.peakRss ? `  peak RSS ${fmt(r.peakRss)} MB` : ""}`,
    );
  line("plain MQTT.js client, no outbox (reference)", ref);
  line(`agent, default drain_rate ${DEVICE_DEFAULTS.outbox_drain_rate}/s`, capped);
  line("agent, drain_rate 100000/s (uncapped)", uncapped);
  console.log(`   goal ≥ 2,000 readings/s: ${capped.rate >= 2000 ? "met" : "NOT met"} (default settings)`);
}
