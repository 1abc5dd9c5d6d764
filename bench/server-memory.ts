// Server memory benchmark (issue 17): the release executable as scripts/build.ts
// compiles it (bytecode laid out by a profile of its start, idle code in the
// interpreter from the first instruction: lib/server/jit.ts) beside the same
// tree compiled plainly (`bun build --compile`, as releases were before; its
// command line still keeps idle code in the interpreter once it runs), in
// alternating rounds. Each starts as after a boot: the executable's pages
// dropped from the page cache first (the kernel maps pages around each fault
// from what is cached, so a warm cache inflates the file-backed part), an
// empty config, a fresh data directory. Measured: RSS with its anonymous and
// file-backed parts IDLE_S after the start, then again IDLE_S after a busy
// commit (150 devices' readings at once; the JIT policy returns to normal).
//
//   bun bench/server-memory.ts   (BENCH_ROUNDS=2 BENCH_IDLE_S=10)

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile, EXECUTABLES, hostArch, projectInfo, recordServerProfile } from "../scripts/build.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";
import { connectMqtt, endMqtt, readingTopic, waitFor, withTimeout } from "../test/helpers.ts";
import { memory } from "./proc.ts";

commandLine("bun bench/server-memory.ts   (BENCH_ROUNDS=2 BENCH_IDLE_S=10)", (args) => parseCommandLine(args, {}));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
/** How long after the start, and after the busy commit, memory is read: one $SYS publication (every 10 s) included. */
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 10);
/** Readings of as many devices published at once: more than BATCH_NOW (100), so one commit makes the server busy. */
const BUSY_READINGS = 150;

const arch = hostArch();
if (arch === null) throw new Error(`no Bun executable for ${process.arch}`);
const work = mkdtempSync(join(tmpdir(), "techtemp-bench-memory-"));
const { bun } = projectInfo();
type Mem = ReturnType<typeof memory>;

/** Drops `file`'s pages from the page cache (GNU dd: `iflag=nocache count=0` asks for the whole file). */
function evict(file: string): void {
  const r = Bun.spawnSync(["dd", `if=${file}`, "iflag=nocache", "count=0", "status=none"], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`dd: ${r.stderr.toString().trim()}`);
}

/** One run of `exe`: memory IDLE_S after the start, and IDLE_S after a busy commit. */
async function measure(exe: string, name: string): Promise<{ idle: Mem; busy: Mem; policy: string }> {
  const dir = join(work, `run-${name}-${Date.now()}`);
  writeFileSync(`${dir}.conf`, "");
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    TECHTEMP_CONFIG: `${dir}.conf`,
    TECHTEMP_DATA_DIR: dir,
    TECHTEMP_HTTP_PORT: "0",
    TECHTEMP_MQTT_PORT: "0",
    TECHTEMP_HOST: "127.0.0.1",
  };
  const made = Bun.spawnSync([exe, "token", "create", "bench", "--scope", "write"], { env, stdout: "pipe", stderr: "pipe" });
  const token = /tt_[A-Za-z0-9_-]+/.exec(made.stdout.toString())?.[0];
  if (!token) throw new Error(`token create: ${made.stdout}${made.stderr}`);
  evict(exe);
  const proc = Bun.spawn([exe], { env, stdout: "pipe", stderr: "inherit" });
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
  })();
  try {
    const ports = await waitFor(() => /http=(\d+) mqtt=(\d+)/.exec(out), 60_000, `${name} to start`);
    await Bun.sleep(IDLE_S * 1000); // the measurement: what an idle server holds this long after its start
    const idle = memory(proc.pid);
    const client = await connectMqtt(Number(ports![2]), { username: "bench", password: token });
    const payload = JSON.stringify({ temperature_c: 21.5, humidity_pct: 40, ts: Date.now() });
    await withTimeout(
      Promise.all(
        Array.from({ length: BUSY_READINGS }, (_, i) =>
          client.publishAsync(readingTopic(`aht20-m${String(i).padStart(5, "0")}`), payload, { qos: 1 }),
        ),
      ),
      30_000,
      "the readings' PUBACKs",
    );
    await endMqtt(client);
    await Bun.sleep(IDLE_S * 1000);
    const busy = memory(proc.pid);
    const stats = await fetch(`http://127.0.0.1:${ports![1]}/api/v1/stats`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const policy = ((await stats.json()) as { data: { runtime: { jit_policy: string } } }).data.runtime.jit_policy;
    return { idle, busy, policy };
  } finally {
    proc.kill("SIGTERM");
    await withTimeout(proc.exited, 30_000, `${name} to stop`).catch(() => proc.kill("SIGKILL"));
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  console.log(`Server memory, ${ROUNDS} alternating rounds (linux-${arch}, Bun ${Bun.version}); building both executables…`);
  const release = join(work, "techtemp-server-release");
  const plain = join(work, "techtemp-server-plain");
  const order = await recordServerProfile(work, bun, () => {});
  await compile(EXECUTABLES["techtemp-server"], release, arch, bun, work, { order });
  await compile(EXECUTABLES["techtemp-server"], plain, arch, bun, work);
  const variants = [
    { name: "release: profile-ordered bytecode, JIT policy from the start", exe: release },
    { name: "plain --compile (reference; JIT policy once main runs)", exe: plain },
  ];
  const results = new Map<string, { idle: Mem; busy: Mem; policy: string }[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of round % 2 === 0 ? variants : [...variants].reverse()) results.get(v.name)!.push(await measure(v.exe, v.name));
  }
  const mb = (n: number) => `${n.toFixed(1)} MB`.padStart(9);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `\n  ${"".padEnd(58)} ${"idle RSS".padStart(9)} ${"anon".padStart(9)} ${"file".padStart(9)}   ${"busy RSS".padStart(9)} ${"anon".padStart(9)} ${"file".padStart(9)}`,
  );
  for (const v of variants) {
    const runs = results.get(v.name)!;
    const m = (pick: (r: (typeof runs)[number]) => number) => mb(median(runs.map(pick)));
    console.log(
      `  ${v.name.padEnd(58)} ${m((r) => r.idle.rss)} ${m((r) => r.idle.anon)} ${m((r) => r.idle.file)}   ${m((r) => r.busy.rss)} ${m((r) => r.busy.anon)} ${m((r) => r.busy.file)}`,
    );
    console.log(
      `    each run, idle RSS: ${runs.map((r) => r.idle.rss.toFixed(1)).join(", ")} MB; JIT policy after the busy commit: ${[...new Set(runs.map((r) => r.policy))].join(", ")}`,
    );
  }
  const idle = median(results.get(variants[0]!.name)!.map((r) => r.idle.rss));
  console.log(
    `\n  goal: server idle RSS ≤ 60 MB (issue 17): ${idle <= 60 ? "met" : "NOT met"} by the release executable (${idle.toFixed(1)} MB)`,
  );
  console.log(`  idle = ${IDLE_S} s after the start; busy = ${IDLE_S} s after ${BUSY_READINGS} devices' readings in one commit`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
