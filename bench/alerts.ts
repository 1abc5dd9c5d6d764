// Alerts benchmark: the cost of rules to ingestion. The same server (real, in
// this process, ports 0, a fresh data directory each round) is loaded by the
// same generator (bench/ingest-load.ts, its own process: 20 devices in one
// room, QoS 1, each keeping 10 readings in flight) in alternating rounds:
//   none     no rule;
//   quiet    50 rules on the room, none of which fires (the cost of evaluating alone);
//   rules    the same 50 rules (thresholds on temperature, humidity and dew
//            point, stuck, jump, mould), one of which fires and resolves every
//            100 readings of each device, notifying an ntfy channel that answers;
//   hanging  the same, with the ntfy receiver holding every request unanswered.
// It prints the acknowledged rate and PUBACK latency of each, the server's CPU
// per stored reading (the rules' cost per reading is the difference), and how
// long the rules took to catch up once the load stopped.
//
//   bun bench/alerts.ts   (BENCH_SECONDS=8 BENCH_CLIENTS=20 BENCH_WINDOW=10 BENCH_ROUNDS=2)

import { join } from "node:path";
import { enrollSensors, writeLogins } from "./enroll.ts";
import { connectMqtt, endMqtt, startServer, type TestServer } from "../test/helpers.ts";
import { placeDevice } from "../test/web-helpers.ts";
import { httpReceiver } from "../test/alerts-helpers.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";

// Settings come from the environment; the command line takes nothing.
commandLine("bun bench/alerts.ts   (BENCH_SECONDS=8 BENCH_CLIENTS=20 BENCH_WINDOW=10 BENCH_ROUNDS=2)", (args) =>
  parseCommandLine(args, {}),
);

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 20);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const RULES = 50;

type Mode = "none" | "quiet" | "rules" | "hanging";

interface LoadResult {
  acked: number;
  failed: number;
  rate: number;
  p50: number;
  p99: number;
}

/** The 50 rules: one fires (the generator's temperatures cycle 20.0-29.9 °C), the others watch without firing. */
function rules(firing: boolean): Record<string, unknown>[] {
  const list: Record<string, unknown>[] = [
    { name: "Bench warm", kind: "threshold", metric: "temperature", max: firing ? 25 : 35, duration_s: 0 },
    { kind: "jump", metric: "temperature", max: 15 },
    { kind: "jump", metric: "humidity", max: 20 },
    { kind: "stuck", duration_s: 6 * 3600 },
    { kind: "mould", max: 70, duration_s: 3600, dew_margin: 1 },
  ];
  for (let i = 0; list.length < RULES; i++) {
    const metric = (["temperature", "humidity", "dew_point"] as const)[i % 3];
    const band: Record<string, [number, number]> = { temperature: [5, 31], humidity: [10, 80], dew_point: [-20, 30] };
    const [min, max] = band[metric]!;
    list.push({
      name: `Bench ${metric} ${i}`,
      kind: "threshold",
      metric,
      min: min - (i % 5),
      max: max + (i % 7),
      duration_s: 60 * (i % 4),
    });
  }
  return list.map((r) => ({ ...r, room_uid: "bench" }));
}

async function load(port: number, logins: string): Promise<LoadResult> {
  const proc = Bun.spawn(
    ["bun", join(import.meta.dir, "ingest-load.ts"), String(port), String(SECONDS), String(CLIENTS), String(WINDOW), logins],
    { stdout: "pipe", stderr: "inherit" },
  );
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  return JSON.parse(out.trim().split("\n").pop()!);
}

/** Gives each of the generator's devices its own MQTT secret (as enrollment does) and writes their logins to a file. */
function enrollClients(server: TestServer): string {
  return writeLogins(join(server.dataDir, "logins.json"), enrollSensors(server.store, CLIENTS));
}

async function setUp(server: TestServer, mode: Mode, receiverUrl: string): Promise<void> {
  const client = await connectMqtt(server.mqttPort);
  try {
    // The generator's devices, placed in the room before its readings (a day old) begin.
    for (let i = 0; i < CLIENTS; i++) {
      const uid = `bench-${String(i).padStart(4, "0")}`;
      await placeDevice(server, client, { uid, room: "Bench", placedAt: Date.now() - 2 * 86_400_000 });
    }
  } finally {
    await endMqtt(client);
  }
  if (mode === "none") return;
  const channel = await server.api("/api/v1/alerts/channels", {
    body: { name: "phone", kind: "ntfy", url: receiverUrl, topic: "bench" },
  });
  if (channel.status !== 201) throw new Error(`channel: ${channel.status} ${JSON.stringify(channel.body)}`);
  for (const body of rules(mode !== "quiet")) {
    const res = await server.api("/api/v1/alerts/rules", { body });
    if (res.status !== 201) throw new Error(`rule: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

async function round(mode: Mode) {
  const receiver = httpReceiver();
  const server = await startServer({}, { logLevel: "warn" });
  try {
    await setUp(server, mode, receiver.url);
    const logins = enrollClients(server);
    if (mode === "hanging") receiver.hang();
    const cpuBefore = process.cpuUsage();
    const result = await load(server.mqttPort, logins);
    const cpu = process.cpuUsage(cpuBefore);
    const stored = (await server.api("/api/v1/stats")).body.data.ingest;
    // Catching up: the rules' queue evaluated, and what is due sent (a hanging receiver is let go first).
    const caughtUpFrom = performance.now();
    if (mode === "hanging") receiver.release();
    // A hung channel's backlog drains one send at a time, each waiting out its timeout and retries: on a fast
    // machine (many incidents) that can take longer than the round should, so it is reported, not waited for.
    let catchUp = NaN;
    try {
      if (mode !== "none") await server.alerts.idle(mode === "hanging" ? 60_000 : 300_000);
      catchUp = (performance.now() - caughtUpFrom) / 1000;
    } catch {}
    const incidents = mode === "none" ? 0 : (await server.api("/api/v1/alerts/incidents?limit=1000")).body.data.length;
    return {
      ...result,
      // Server-side CPU (this process: the server, the receiver; the generator is another process) per acknowledged reading.
      cpuUs: ((cpu.user + cpu.system) / Math.max(1, result.acked)) | 0,
      catchUp,
      incidents,
      notified: receiver.got.length,
      batches: stored.batches,
    };
  } finally {
    receiver.release();
    await server.stop();
    receiver.stop();
  }
}

const all: Record<Mode, Awaited<ReturnType<typeof round>>[]> = { none: [], quiet: [], rules: [], hanging: [] };
// A round not counted first: the first server of the process starts cold (JIT, page cache).
await round("none");
for (let r = 1; r <= ROUNDS; r++) {
  for (const mode of ["none", "quiet", "rules", "hanging"] as const) {
    const res = await round(mode);
    all[mode].push(res);
    console.log(
      `round ${r} ${mode.padEnd(7)} ${res.rate.toFixed(0).padStart(6)} readings/s  p50 ${res.p50.toFixed(1)} ms  p99 ${res.p99.toFixed(1)} ms  ` +
        `server CPU ${res.cpuUs} µs/reading  ${Number.isNaN(res.catchUp) ? "not caught up within 60 s" : `caught up ${res.catchUp.toFixed(1)} s`}  incidents ${res.incidents}  ntfy got ${res.notified}`,
    );
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const m = (mode: Mode, f: (x: (typeof all)["none"][number]) => number) => median(all[mode].map(f));
console.log(`\nmedians of ${ROUNDS} rounds, ${CLIENTS} devices × ${WINDOW} in flight, ${SECONDS} s each, ${RULES} rules:`);
const ratio = (a: Mode, b: Mode) => (m(a, (x) => x.rate) / m(b, (x) => x.rate)).toFixed(3);
const cpu = (mode: Mode) => m(mode, (x) => x.cpuUs);
console.log(`  ingest rate, ${RULES} rules none firing / no rule: ${ratio("quiet", "none")} (goal ≥ 0.95)`);
console.log(`  ingest rate, ${RULES} rules one firing every 100 readings / no rule: ${ratio("rules", "none")}`);
console.log(
  `  server CPU per reading: no rule ${cpu("none")} µs, ${RULES} rules ${cpu("quiet")} µs, one firing ${cpu("rules")} µs`,
);
console.log(
  `  PUBACK p99: no rule ${m("none", (x) => x.p99).toFixed(1)} ms, rules ${m("quiet", (x) => x.p99).toFixed(1)} ms, ` +
    `one firing ${m("rules", (x) => x.p99).toFixed(1)} ms, its ntfy receiver hanging ${m("hanging", (x) => x.p99).toFixed(1)} ms`,
);
console.log(`  ingest rate with the ntfy receiver hanging / answering: ${ratio("hanging", "rules")}`);
process.exit(0);
