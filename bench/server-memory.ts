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

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile, EXECUTABLES, hostArch, projectInfo, recordServerProfile } from "../scripts/build.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";
import { startExecutable } from "../test/fixtures/install/harness.ts";
import { connectMqtt, endMqtt, readingTopic, withTimeout } from "../test/helpers.ts";
import { dropFromPageCache, memory } from "./proc.ts";

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

/** One run of `exe` (the `n`th): memory IDLE_S after the start, and IDLE_S after a busy commit. */
async function measure(exe: string, n: number): Promise<{ idle: Mem; busy: Mem; policy: string }> {
  const dir = join(work, `run-${n}`);
  mkdirSync(dir);
  // As after a boot: the executable's pages dropped from the page cache right before the start.
  const server = await startExecutable(exe, dir, { beforeStart: () => dropFromPageCache(exe) });
  try {
    await Bun.sleep(IDLE_S * 1000); // the measurement: what an idle server holds this long after its start
    const idle = memory(server.proc.pid);
    const client = await connectMqtt(server.mqttPort, { username: server.tokenName, password: server.token });
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
    const busy = memory(server.proc.pid);
    const stats = await fetch(`${server.base}/api/v1/stats`, {
      headers: { authorization: `Bearer ${server.token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const policy = ((await stats.json()) as { data: { runtime: { jit_policy: string } } }).data.runtime.jit_policy;
    return { idle, busy, policy };
  } finally {
    server.proc.kill("SIGTERM");
    await withTimeout(server.proc.exited, 30_000, "the server to stop").catch(() => {});
    await server.stop();
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
  let runs = 0;
  const results = new Map<string, { idle: Mem; busy: Mem; policy: string }[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of round % 2 === 0 ? variants : [...variants].reverse()) results.get(v.name)!.push(await measure(v.exe, runs++));
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
