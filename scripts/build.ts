// `bun run build`: single executables of the server and the sensor agent for
// the Pis (linux-arm64) and for PCs (linux-x64), and bundles that install
// without internet, one per role and architecture, each verifiable:
//
//   dist/techtemp-<version>-linux-<arch>/          techtemp-server, techtemp-sensor, install.sh,
//                                                 systemd/, README.md, BUNDLE, SHA256SUMS
//   dist/techtemp-<role>-<version>-linux-<arch>.tar.gz
//                                                 what one role needs: its executable, install.sh,
//                                                 systemd/, README.md, BUNDLE (role=…), SHA256SUMS
//   dist/SHA256SUMS                               the tarballs' SHA-256 (sha256sum -c)
//
//   bun scripts/build.ts [--arch arm64,x64|host] [--out DIR] [--no-tar]
//
// Each executable carries the Bun runtime, so a Pi needs neither Bun nor Node.
// The server's views and static files are imported `with { type: "file" }`,
// which `--compile` embeds: the executable serves them from anywhere.

import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { commandLine, parseCommandLine, UsageError } from "./cli.ts";

/** The architectures a bundle is built for, named as `dpkg --print-architecture` and Bun's targets name them. */
export const ARCHS = {
  arm64: { target: "bun-linux-arm64", npmPackage: "@oven/bun-linux-aarch64" },
  x64: { target: "bun-linux-x64", npmPackage: "@oven/bun-linux-x64" },
} as const;
export type Arch = keyof typeof ARCHS;

/** The executables of a bundle and their entry points. */
export const EXECUTABLES = { "techtemp-server": "server.ts", "techtemp-sensor": "sensor.ts" } as const;

const ROOT = resolve(import.meta.dir, "..");

/** What one build produced for one architecture. */
export interface BuiltBundle {
  arch: Arch;
  version: string;
  /** The unpacked bundle directory (what `install.sh --bundle DIR` takes). */
  dir: string;
  /** The .tar.gz of each role, unless built with `tar: false`. */
  tarballs: Record<Role, string> | null;
  /** dist/SHA256SUMS, which lists the tarballs (null without them). */
  sums: string | null;
}

/** The two roles a Pi can have; each gets its own tarball with only its executable. */
export const ROLES = ["server", "sensor"] as const;
export type Role = (typeof ROLES)[number];

/** The SHA-256 of a file, in hex. */
export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Every file under `dir`, relative and sorted. */
function filesUnder(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    if (statSync(join(dir, path)).isDirectory()) out.push(...filesUnder(dir, path));
    else out.push(path);
  }
  return out;
}

/** Writes `dir`/SHA256SUMS for every other file in `dir`, in `sha256sum` format (install.sh checks it). */
export function writeSums(dir: string): void {
  const lines = filesUnder(dir)
    .filter((f) => f !== "SHA256SUMS")
    .map((f) => `${sha256File(join(dir, f))}  ${f}\n`);
  writeFileSync(join(dir, "SHA256SUMS"), lines.join(""));
}

/** The version and the pinned Bun of package.json. */
export function projectInfo(root = ROOT): { version: string; bun: string } {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const bun = /^bun@(.+)$/.exec(pkg.packageManager ?? "")?.[1];
  if (!bun) throw new Error(`package.json: packageManager must be "bun@<version>", got ${JSON.stringify(pkg.packageManager)}`);
  return { version: pkg.version, bun };
}

/**
 * Bun fetches the runtime of a foreign target on first use and keeps it in
 * its cache. Where that fetch is impossible (a proxy, no network), the same
 * runtime ships as the npm package `@oven/bun-linux-<cpu>`: `npm pack` it
 * (npm honours the machine's registry settings) and hand its `bin/bun` to
 * the compiler as `executablePath`.
 */
export async function runtimeFromNpm(arch: Arch, bunVersion: string, workDir: string): Promise<string> {
  const spec = `${ARCHS[arch].npmPackage}@${bunVersion}`;
  const dir = join(workDir, `runtime-${arch}`);
  mkdirSync(dir, { recursive: true });
  const pack = Bun.spawnSync(["npm", "pack", "--silent", spec], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  const tgz = pack.stdout.toString().trim().split("\n").pop();
  if (pack.exitCode !== 0 || !tgz) throw new Error(`npm pack ${spec} failed: ${pack.stderr.toString().trim()}`);
  const untar = Bun.spawnSync(["tar", "-xzf", tgz, "-C", dir], { cwd: dir, stderr: "pipe" });
  if (untar.exitCode !== 0) throw new Error(`unpack ${tgz}: ${untar.stderr.toString().trim()}`);
  const bin = join(dir, "package", "bin", "bun");
  if (!existsSync(bin)) throw new Error(`${spec} has no bin/bun`);
  return bin;
}

/**
 * How the server is compiled (`server`: its profile or null), beside the agent's plain build: with
 * bytecode (no parsing at start), laid out by a profile of its start (compile.bytecodeOrder: what the
 * start uses together at the front, so fewer pages of the executable are touched), and with idle code
 * in the interpreter from the first instruction (compile.jitPolicy, lib/server/jit.ts). ~9 MB less RSS
 * idle (bench/server-memory.ts).
 */
async function compileOptions(server: { order: string | null } | undefined) {
  if (!server) return { compile: {}, build: {} };
  // Imported here: a tree without the server (the build's own check names what is missing) still loads this script.
  const { SERVER_JIT_POLICY } = await import("../lib/server/jit.ts");
  return {
    compile: { jitPolicy: SERVER_JIT_POLICY, ...(server.order ? { bytecodeOrder: server.order } : {}) },
    build: { bytecode: true, format: "esm" },
  };
}

/** Compiles one entry point into one executable, fetching the target's runtime from npm if Bun cannot. */
export async function compile(
  entry: string,
  outfile: string,
  arch: Arch,
  bunVersion: string,
  workDir: string,
  server?: { order: string | null },
): Promise<void> {
  const extra = await compileOptions(server);
  const attempt = (executablePath?: string) =>
    Bun.build({
      entrypoints: [join(ROOT, entry)],
      compile: { target: ARCHS[arch].target, outfile, ...(executablePath ? { executablePath } : {}), ...extra.compile },
      ...extra.build,
      // Readable stack traces in the journal matter more than 1 % of the size (the runtime is ~100 MB).
      minify: false,
      throw: false,
    } as Parameters<typeof Bun.build>[0]);
  let result = await attempt();
  if (!result.success && arch !== hostArch()) {
    console.error(`build: Bun could not fetch the ${arch} runtime itself (${result.logs.map(String).join("; ")}); trying npm`);
    result = await attempt(await runtimeFromNpm(arch, bunVersion, workDir));
  }
  if (!result.success) throw new Error(`compile ${entry} for ${arch}:\n${result.logs.map(String).join("\n")}`);
}

/** How long the profile run may take to start, and to stop (ms). */
const PROFILE_START_MS = 60_000;
const PROFILE_STOP_MS = 30_000;

/**
 * Records which functions the server's start uses, for compile.bytecodeOrder: a host build with bytecode
 * runs with BUN_BYTECODE_ORDER_OUT on free loopback ports, in a scratch data directory and with an empty
 * config file (nothing of the machine's), until it serves; then it is stopped. The same tree records the
 * same profile (two runs compared byte for byte); it applies to every architecture. Returns the profile's
 * path, or null on a machine Bun has no Linux build for.
 */
export async function recordServerProfile(
  workDir: string,
  bunVersion: string,
  log: (line: string) => void,
): Promise<string | null> {
  const arch = hostArch();
  if (arch === null) {
    log(`build: no bytecode profile (no Bun for ${process.arch} to run the server on); its bytecode keeps the default layout`);
    return null;
  }
  // Imported here, as in compileOptions.
  const { withTimeout } = await import("../lib/sensor/timeout.ts");
  const dir = join(workDir, "profile");
  mkdirSync(join(dir, "data"), { recursive: true });
  const exe = join(dir, "techtemp-server");
  await compile(EXECUTABLES["techtemp-server"], exe, arch, bunVersion, workDir, { order: null });
  const out = join(dir, "bytecode-order.txt");
  writeFileSync(join(dir, "server.conf"), "");
  const proc = Bun.spawn([exe], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      TECHTEMP_CONFIG: join(dir, "server.conf"),
      TECHTEMP_DATA_DIR: join(dir, "data"),
      TECHTEMP_HTTP_PORT: "0",
      TECHTEMP_MQTT_PORT: "0",
      TECHTEMP_HOST: "127.0.0.1",
      BUN_BYTECODE_ORDER_OUT: out,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const started = await withTimeout(untilLine(proc.stdout, "TechTemp server running"), PROFILE_START_MS, "start").catch(
    () => false,
  );
  proc.kill("SIGTERM");
  const code = await withTimeout(proc.exited, PROFILE_STOP_MS, "stop").catch(() => null);
  if (code === null) proc.kill("SIGKILL");
  const stderr = await new Response(proc.stderr).text();
  if (!started || code !== 0 || !existsSync(out) || statSync(out).size === 0)
    throw new Error(
      `build: the server's profile run failed (${started ? `exit ${code ?? "timeout"}` : "it never said it was running"}): ${stderr.trim().slice(-2000)}`,
    );
  return out;
}

/** Whether `stream` brings a line containing `text` before it ends (the rest of it is read and dropped). */
async function untilLine(stream: ReadableStream<Uint8Array>, text: string): Promise<boolean> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  for (;;) {
    const next = await reader.read();
    if (next.done) return false;
    seen = (seen + decoder.decode(next.value, { stream: true })).slice(-4096);
    if (seen.includes(text)) {
      // Keep the pipe drained until the process ends.
      void (async () => {
        while (!(await reader.read()).done);
      })().catch(() => {});
      return true;
    }
  }
}

/** This machine's architecture in our names, or null when Bun has no Linux build for it. */
export function hostArch(): Arch | null {
  return process.arch === "arm64" ? "arm64" : process.arch === "x64" ? "x64" : null;
}

/** The README inside a bundle: what is in it and the one command that installs it. */
function bundleReadme(version: string, arch: Arch): string {
  return `# TechTemp ${version} for linux-${arch}

Self-contained executables (the Bun runtime is inside: no Bun or Node needed; a role's
bundle, techtemp-<role>-…tar.gz, holds only its own):

- \`techtemp-server\`: MQTT broker, SQLite database, JSON API and web pages in one process
- \`techtemp-sensor\`: the sensor agent (AHT20 over I2C, publishes over MQTT)
- \`SHA256SUMS\`: the files' SHA-256, which install.sh checks before changing anything
- \`install.sh\`: installs either role as a hardened systemd service, upgrades, uninstalls
- \`systemd/\`: the units install.sh installs

Install (as root, on Raspberry Pi OS 64-bit or Debian 12):

    sudo ./install.sh server                                  # the server Pi
    sudo ./install.sh sensor --server 192.168.1.10 --room Salon   # each sensor Pi

Run it again with a newer bundle to upgrade (the database is backed up first,
and the previous version comes back if the new one fails its health check).
\`sudo ./install.sh status\`, \`sudo ./install.sh uninstall [--purge]\`,
\`./install.sh --help\` for every option.
`;
}

/** Packs `dir` reproducibly: sorted names, root-owned, fixed time, gzip without a timestamp. */
function pack(dir: string, tarball: string, mtime: number): void {
  const parent = resolve(dir, "..");
  const name = dir.slice(parent.length + 1);
  const tar = Bun.spawnSync(
    ["tar", "--sort=name", `--mtime=@${mtime}`, "--owner=0", "--group=0", "--numeric-owner", "-cf", "-", name],
    { cwd: parent, stdout: "pipe", stderr: "pipe" },
  );
  if (tar.exitCode !== 0) throw new Error(`tar ${dir}: ${tar.stderr.toString().trim()}`);
  const gzip = Bun.spawnSync(["gzip", "-n", "-6"], { stdin: tar.stdout, stdout: "pipe", stderr: "pipe" });
  if (gzip.exitCode !== 0) throw new Error(`gzip ${tarball}: ${gzip.stderr.toString().trim()}`);
  writeFileSync(tarball, gzip.stdout);
}

/** Builds the bundles of `archs` into `outDir`. */
export async function build(
  options: { archs?: Arch[]; outDir?: string; tar?: boolean; log?: (line: string) => void } = {},
): Promise<BuiltBundle[]> {
  const archs = options.archs ?? (Object.keys(ARCHS) as Arch[]);
  const outDir = resolve(options.outDir ?? join(ROOT, "dist"));
  const log = options.log ?? ((line: string) => console.log(line));
  const { version, bun } = projectInfo();
  for (const entry of Object.values(EXECUTABLES)) {
    if (!existsSync(join(ROOT, entry))) throw new Error(`build: ${entry} is missing`);
  }
  // The bundle's files carry the time of the last commit (or 2026-01-01 outside git), so two builds of one tree are identical.
  const git = Bun.spawnSync(["git", "log", "-1", "--format=%ct"], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
  const mtime = Number(process.env.SOURCE_DATE_EPOCH ?? git.stdout.toString().trim()) || 1_767_225_600;

  const workDir = join(tmpdir(), `techtemp-build-${process.pid}`);
  const built: BuiltBundle[] = [];
  try {
    const t0 = performance.now();
    const order = await recordServerProfile(workDir, bun, log);
    if (order) log(`build: bytecode profile of the server's start (${Math.round(performance.now() - t0)} ms)`);
    for (const arch of archs) {
      const dir = join(outDir, `techtemp-${version}-linux-${arch}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(join(dir, "systemd"), { recursive: true });
      for (const [exe, entry] of Object.entries(EXECUTABLES)) {
        const t0 = performance.now();
        await compile(entry, join(dir, exe), arch, bun, workDir, exe === "techtemp-server" ? { order } : undefined);
        log(`build: ${arch}/${exe} (${Math.round(performance.now() - t0)} ms)`);
      }
      cpSync(join(ROOT, "install.sh"), join(dir, "install.sh"));
      chmodSync(join(dir, "install.sh"), 0o755);
      for (const unit of ["techtemp-server.service", "techtemp-sensor.service"])
        cpSync(join(ROOT, "systemd", unit), join(dir, "systemd", unit));
      writeFileSync(join(dir, "README.md"), bundleReadme(version, arch));
      // install.sh reads this to check the bundle fits the machine and to name backups.
      writeFileSync(join(dir, "BUNDLE"), `name=techtemp\nversion=${version}\narch=${arch}\nbun=${bun}\n`);
      writeSums(dir);
      let tarballs: Record<Role, string> | null = null;
      if (options.tar !== false) {
        tarballs = { server: "", sensor: "" };
        for (const role of ROLES) {
          tarballs[role] = packRole(dir, outDir, role, { version, arch, bun, mtime, workDir });
          log(`build: ${tarballs[role]}`);
        }
      }
      built.push({ arch, version, dir, tarballs, sums: null });
    }
    if (options.tar !== false) {
      const sums = writeTarballSums(outDir);
      for (const b of built) b.sums = sums;
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  return built;
}

/** The tarball of one role: the full bundle's files but the other role's executable, BUNDLE saying role=…, its own SHA256SUMS. */
function packRole(
  full: string,
  outDir: string,
  role: Role,
  o: { version: string; arch: Arch; bun: string; mtime: number; workDir: string },
): string {
  const name = `techtemp-${role}-${o.version}-linux-${o.arch}`;
  const stage = join(o.workDir, "roles", name);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, "systemd"), { recursive: true });
  const other = role === "server" ? "techtemp-sensor" : "techtemp-server";
  for (const f of filesUnder(full)) {
    if (f === other || f === "SHA256SUMS" || f === "BUNDLE") continue;
    // A hard link where it can (the executables are ~100 MB), a copy across file systems.
    try {
      linkSync(join(full, f), join(stage, f));
    } catch {
      cpSync(join(full, f), join(stage, f));
    }
  }
  writeFileSync(join(stage, "BUNDLE"), `name=techtemp\nversion=${o.version}\narch=${o.arch}\nbun=${o.bun}\nrole=${role}\n`);
  writeSums(stage);
  const tarball = join(outDir, `${name}.tar.gz`);
  pack(stage, tarball, o.mtime);
  rmSync(stage, { recursive: true, force: true });
  return tarball;
}

/** dist/SHA256SUMS: every role tarball in `outDir` (both architectures when both were built there). */
function writeTarballSums(outDir: string): string {
  const tarballs = readdirSync(outDir)
    .filter((f) => /^techtemp-(server|sensor)-.+\.tar\.gz$/.test(f))
    .sort();
  const path = join(outDir, "SHA256SUMS");
  writeFileSync(path, tarballs.map((f) => `${sha256File(join(outDir, f))}  ${f}\n`).join(""));
  return path;
}

/** How `bun scripts/build.ts` is called. */
export const USAGE = "bun scripts/build.ts [--arch arm64,x64|host] [--out DIR] [--no-tar]";

/** Parses the command line of `bun scripts/build.ts`; a bad argument throws a UsageError that names it. */
export function parseArgs(argv: string[]): { archs: Arch[]; outDir?: string; tar: boolean } {
  const { values } = parseCommandLine(argv, {
    arch: { type: "string" },
    out: { type: "string" },
    "no-tar": { type: "boolean" },
  });
  let archs = Object.keys(ARCHS) as Arch[];
  if (values.arch !== undefined) {
    const wanted = values.arch.split(",").map((a) => (a === "host" ? hostArch() : a));
    const unknown = wanted.filter((a) => !(a && a in ARCHS));
    if (unknown.length)
      throw new UsageError(`--arch: unknown ${unknown.join(", ")} (known: ${Object.keys(ARCHS).join(", ")}, host)`);
    archs = wanted as Arch[];
  }
  return { archs, outDir: values.out, tar: !values["no-tar"] };
}

if (import.meta.main) {
  const args = commandLine(USAGE, parseArgs);
  try {
    await build({ archs: args.archs, outDir: args.outDir, tar: args.tar });
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
