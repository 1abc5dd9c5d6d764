// Login latency on this machine with the chosen password hash (argon2id,
// m = 19 MiB, t = 2, p = 1: OWASP's minimum), over real HTTP to a real
// server process made the way a person makes one (setup link, setup form):
// a single sign-in, and bursts of 20 at once through the hashing bound
// (password_hash_concurrency 2, queue 32), with the server's peak RSS; the
// same bursts with the bound lifted (concurrency 20) to show what it saves.
// Beside it, in the same run: Bun.password.verify alone at our cost, at
// Bun's default argon2id cost and with bcrypt at Bun's default cost.
//
//   bun bench/login.ts [--logins 50] [--bursts 5]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARGON2ID } from "../lib/server/auth/passwords.ts";
import { spawnServer, waitFor, type ChildServer } from "../test/helpers.ts";
import { commandLine, parseCommandLine, positiveNumber } from "../scripts/cli.ts";
import { memory } from "./proc.ts";

const { logins, bursts } = commandLine("bun bench/login.ts [--logins N] [--bursts N]", (args) => {
  const { values } = parseCommandLine(args, { logins: { type: "string" }, bursts: { type: "string" } });
  return { logins: positiveNumber("logins", values.logins, 50), bursts: positiveNumber("bursts", values.bursts, 5) };
});

const BURST = 20;
const PASSWORD = "a password for the benchmark";

/** p50 and p99 of a list of milliseconds. */
function percentiles(ms: number[]): { p50: number; p99: number; n: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99), n: s.length };
}
const fmt = (p: { p50: number; p99: number; n: number }) =>
  `p50 ${p.p50.toFixed(1)} ms   p99 ${p.p99.toFixed(1)} ms   (n=${p.n})`;

/** One sign-in through the form; its time in ms (it must succeed). */
async function signIn(server: ChildServer): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${server.url}/login`, {
    method: "POST",
    body: new URLSearchParams({ name: "owner", password: PASSWORD, next: "/" }),
    headers: { origin: server.url },
    redirect: "manual",
  });
  await res.arrayBuffer();
  if (res.status !== 303) throw new Error(`sign-in answered ${res.status}`);
  return performance.now() - t0;
}

/** Starts a server in a fresh directory and makes its owner through the setup link, as a person would. */
async function serverWithOwner(env: Record<string, string>): Promise<{ server: ChildServer; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "techtemp-bench-login-"));
  const server = await spawnServer(dir, { TECHTEMP_LOG_LEVEL: "info", ...env });
  // The link is logged just after the line spawnServer waits for.
  const token = (await waitFor(() => /\/setup#([A-Za-z0-9_-]{43})/.exec(server.output())?.[1], 10_000, "the setup link"))!;
  const res = await fetch(`${server.url}/setup`, {
    method: "POST",
    body: new URLSearchParams({ token, name: "owner", password: PASSWORD, password2: PASSWORD }),
    headers: { origin: server.url },
    redirect: "manual",
  });
  if (res.status !== 303) throw new Error(`setup answered ${res.status}`);
  return { server, dir };
}

/** Single sign-ins one after the other, then bursts of 20 at once, with the server's peak RSS. */
async function measure(env: Record<string, string>) {
  const { server, dir } = await serverWithOwner(env);
  try {
    for (let i = 0; i < 3; i++) await signIn(server); // warm-up
    const single: number[] = [];
    for (let i = 0; i < logins; i++) single.push(await signIn(server));
    const idle = memory(server.proc.pid).rss;
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, memory(server.proc.pid).rss || 0)), 5);
    const each: number[] = [];
    const walls: number[] = [];
    for (let b = 0; b < bursts; b++) {
      const t0 = performance.now();
      each.push(...(await Promise.all(Array.from({ length: BURST }, () => signIn(server)))));
      walls.push(performance.now() - t0);
    }
    clearInterval(sampler);
    return { single: percentiles(single), burst: percentiles(each), wall: percentiles(walls), idle, peak };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bun.password.verify alone, in this process, for a reference. */
async function verifyAlone(options: Parameters<typeof Bun.password.hash>[1]) {
  const hash = await Bun.password.hash(PASSWORD, options);
  await Bun.password.verify(PASSWORD, hash);
  const times: number[] = [];
  for (let i = 0; i < logins; i++) {
    const t0 = performance.now();
    await Bun.password.verify(PASSWORD, hash);
    times.push(performance.now() - t0);
  }
  return percentiles(times);
}

console.log(`Sign-in over HTTP: POST /login, ${logins} one after the other, then ${bursts} bursts of ${BURST} at once`);
console.log(`password hash: argon2id m=${ARGON2ID.memoryCost} KiB t=${ARGON2ID.timeCost} p=1 (OWASP minimum)\n`);
const bounded = await measure({});
console.log("server as configured (password_hash_concurrency 2, queue 32):");
console.log(`  single sign-in              ${fmt(bounded.single)}`);
console.log(`  in a burst of ${BURST}, each      ${fmt(bounded.burst)}`);
console.log(`  a whole burst of ${BURST}         ${fmt(bounded.wall)}`);
console.log(
  `  server RSS                  ${bounded.idle.toFixed(1)} MB idle, ${bounded.peak.toFixed(1)} MB peak during the bursts`,
);
const unbounded = await measure({ TECHTEMP_PASSWORD_HASH_CONCURRENCY: String(BURST) });
console.log(`the same with the bound lifted (password_hash_concurrency ${BURST}):`);
console.log(`  in a burst of ${BURST}, each      ${fmt(unbounded.burst)}`);
console.log(`  a whole burst of ${BURST}         ${fmt(unbounded.wall)}`);
console.log(
  `  server RSS                  ${unbounded.idle.toFixed(1)} MB idle, ${unbounded.peak.toFixed(1)} MB peak during the bursts`,
);

console.log("\nreference, Bun.password.verify alone in this process:");
console.log(`  argon2id, our cost (19 MiB, t=2)           ${fmt(await verifyAlone(ARGON2ID))}`);
console.log(`  argon2id, Bun's default (64 MiB, t=2)      ${fmt(await verifyAlone({ algorithm: "argon2id" }))}`);
console.log(`  bcrypt, Bun's default (cost 10)            ${fmt(await verifyAlone({ algorithm: "bcrypt" }))}`);
