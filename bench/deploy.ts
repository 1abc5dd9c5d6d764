// `bun bench/deploy.ts`: time to deploy 1 server + N sensors (default 5) with
// `install.sh deploy` over loopback SSH (a real sshd, test/fixtures/install/sshd.ts)
// into --root trees, and the bytes copied to each Pi: the per-role bundles beside
// the same deploy with today's full bundle (both executables in every tarball),
// measured in the same run.
//
//   bun bench/deploy.ts [--sensors N] [--dist DIR] [--jobs N]
//
// --dist: a dist/ of `bun scripts/build.ts --arch host` (role tarballs and
// SHA256SUMS); without it, one is built first into a temp dir.

import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commandLine, parseCommandLine, positiveNumber } from "../scripts/cli.ts";
import { sha256File } from "../scripts/build.ts";
import { freePorts, run, startServer } from "../test/helpers.ts";
import { makeRoot, REPO } from "../test/fixtures/install/harness.ts";
import { startSshd } from "../test/fixtures/install/sshd.ts";

const args = commandLine("bun bench/deploy.ts [--sensors N] [--dist DIR] [--jobs N]", (argv) => {
  const { values } = parseCommandLine(argv, { sensors: { type: "string" }, dist: { type: "string" }, jobs: { type: "string" } });
  return {
    sensors: positiveNumber("--sensors", values.sensors, 5),
    jobs: positiveNumber("--jobs", values.jobs, 4),
    dist: values.dist,
  };
});

const work = join(tmpdir(), `techtemp-bench-deploy-${process.pid}`);
mkdirSync(work, { recursive: true });

/** A dist/ with the role tarballs: the given one, or a fresh build for this machine. */
async function roleDist(): Promise<string> {
  if (args.dist) return args.dist;
  const out = join(work, "dist");
  const r = await run(["bun", join(REPO, "scripts/build.ts"), "--arch", "host", "--out", out], { cwd: work, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`build failed: ${r.stderr}`);
  return out;
}

/** Today's full bundle as each role's tarball: both executables in each, as before per-role bundles. */
function fullDist(dist: string): string {
  const out = join(work, "dist-full");
  mkdirSync(out, { recursive: true });
  const sums: string[] = [];
  for (const name of readdirSync(dist).filter((f) => /^techtemp-(server|sensor)-.+\.tar\.gz$/.test(f))) {
    const top = name.replace(/\.tar\.gz$/, "");
    const stage = join(work, "stage", top);
    mkdirSync(stage, { recursive: true });
    Bun.spawnSync(["tar", "-xzf", join(dist, name), "-C", join(work, "stage")]);
    const role = top.startsWith("techtemp-server") ? "server" : "sensor";
    const other = role === "server" ? "techtemp-sensor" : "techtemp-server";
    // The other role's executable, from its own tarball: the full bundle had both.
    const otherTar = name.replace(`techtemp-${role}-`, `${other}-`);
    const tmp = join(work, "other");
    mkdirSync(tmp, { recursive: true });
    Bun.spawnSync(["tar", "-xzf", join(dist, otherTar), "-C", tmp]);
    cpSync(join(tmp, otherTar.replace(/\.tar\.gz$/, ""), other), join(stage, other));
    rmSync(tmp, { recursive: true, force: true });
    const lines = readFileSync(join(stage, "SHA256SUMS"), "utf8") + `${sha256File(join(stage, other))}  ${other}\n`;
    writeFileSync(join(stage, "SHA256SUMS"), lines);
    Bun.spawnSync(["tar", "-czf", join(out, name), "-C", join(work, "stage"), top]);
    sums.push(`${sha256File(join(out, name))}  ${name}\n`);
  }
  writeFileSync(join(out, "SHA256SUMS"), sums.join(""));
  return out;
}

/** One deploy of 1 server + N sensors into fresh trees: wall time, bytes per host, the table. */
async function deploy(dist: string, label: string, sshd: Awaited<ReturnType<typeof startSshd>>, mqttPort: number) {
  const roots = Array.from({ length: args.sensors + 1 }, () => makeRoot(REPO));
  const lines = roots.map((root, i) => {
    const cache = join(work, `cache-${label}-${i}`);
    const base = `root@127.0.0.1 ssh-port=${sshd.port} root=${root.path} cache=${cache}`;
    if (i === 0) {
      const [http, mqtt] = freePorts(2);
      return `server ${base} http-port=${http} mqtt-port=${mqtt}`;
    }
    return `sensor ${base} server=127.0.0.1 mqtt-port=${mqttPort} simulated device-uid=aht20-bench${String(i).padStart(2, "0")}`;
  });
  const inventory = join(work, `hosts-${label}.txt`);
  writeFileSync(inventory, lines.join("\n") + "\n");
  const t0 = performance.now();
  const r = await run(
    [
      "bash",
      join(REPO, "install.sh"),
      "deploy",
      "--inventory",
      inventory,
      "--dist",
      dist,
      "--ssh-config",
      sshd.sshConfig,
      "--jobs",
      String(args.jobs),
    ],
    { timeoutMs: 1_800_000 },
  );
  const seconds = (performance.now() - t0) / 1000;
  for (const root of roots) root.cleanup();
  if (r.code !== 0) throw new Error(`deploy (${label}) failed (${r.code}):\n${r.stdout}${r.stderr}`);
  const bytes = r.stdout
    .split("\n")
    .slice(1)
    .filter(Boolean)
    .map((row) => Number(row.trim().split(/\s+/).at(-1)));
  return { seconds, bytes };
}

const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const sshd = await startSshd();
const server = await startServer();
try {
  const dist = await roleDist();
  const full = fullDist(dist);
  console.log(`deploy 1 server + ${args.sensors} sensors over loopback SSH, ${args.jobs} at a time (load average ${load()})`);
  const perRole = await deploy(dist, "role", sshd, server.mqttPort);
  const whole = await deploy(full, "full", sshd, server.mqttPort);
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  console.log("| bundles | time | copied to the server Pi | copied to each sensor Pi | copied in all |");
  console.log("|---|---|---|---|---|");
  for (const [name, m] of [
    ["per role (now)", perRole],
    ["full, both executables (before)", whole],
  ] as const) {
    const total = m.bytes.reduce((a, b) => a + b, 0);
    console.log(`| ${name} | ${m.seconds.toFixed(1)} s | ${mb(m.bytes[0]!)} | ${mb(m.bytes[1]!)} | ${mb(total)} |`);
  }
  console.log(`(load average after: ${load()})`);
} finally {
  await server.stop();
  await sshd.stop();
  rmSync(work, { recursive: true, force: true });
}
