// `bun run build`: the x64 bundle (the arm64 one is tested under qemu in
// arm64.test.ts). The compiled server is copied alone into an empty
// directory and must serve its health, its pages and their static files
// from there: everything it serves is inside the executable.

import { beforeAll, expect, test } from "bun:test";
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "../scripts/build.ts";
import { connectMqtt, endMqtt, readingTopic, run, tempDir, withTimeout } from "./helpers.ts";
import { cachedBundle, type CachedBundle } from "./fixtures/install/bundles.ts";
import { cleanEnv, freePortArgs, makeRoot, REPO, startExecutable } from "./fixtures/install/harness.ts";

let bundle: CachedBundle;

beforeAll(async () => {
  bundle = await cachedBundle("x64", { tar: true });
}, 300_000);

test("one tarball per role: its own executable, install.sh, the units, a README, its BUNDLE card and SHA256SUMS, owned by root", async () => {
  expect(bundle.tarballs!.server).toEndWith("/techtemp-server-0.1.0-linux-x64.tar.gz");
  expect(bundle.tarballs!.sensor).toEndWith("/techtemp-sensor-0.1.0-linux-x64.tar.gz");
  for (const role of ["server", "sensor"] as const) {
    const r = await run(["tar", "-tvzf", bundle.tarballs![role]], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    const entries = r.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/))
      .map((f) => `${f[0]} ${f[1]} ${f[5]}`);
    const top = `techtemp-${role}-0.1.0-linux-x64`;
    expect(entries).toEqual([
      `drwxr-xr-x 0/0 ${top}/`,
      `-rw-r--r-- 0/0 ${top}/BUNDLE`,
      `-rw-r--r-- 0/0 ${top}/README.md`,
      `-rw-r--r-- 0/0 ${top}/SHA256SUMS`,
      `-rwxr-xr-x 0/0 ${top}/install.sh`,
      `drwxr-xr-x 0/0 ${top}/systemd/`,
      `-rw-r--r-- 0/0 ${top}/systemd/techtemp-sensor.service`,
      `-rw-r--r-- 0/0 ${top}/systemd/techtemp-server.service`,
      `-rwxr-xr-x 0/0 ${top}/techtemp-${role}`,
    ]);
  }
  // dist/SHA256SUMS lists both tarballs, and sha256sum agrees with it.
  const sums = readFileSync(bundle.sums!, "utf8");
  expect(sums).toMatch(
    /^[0-9a-f]{64} {2}techtemp-sensor-0\.1\.0-linux-x64\.tar\.gz\n[0-9a-f]{64} {2}techtemp-server-0\.1\.0-linux-x64\.tar\.gz\n$/,
  );
  const check = await run(["sha256sum", "-c", "SHA256SUMS"], { cwd: join(bundle.sums!, ".."), timeoutMs: 60_000 });
  expect(check.stdout).toContain("techtemp-server-0.1.0-linux-x64.tar.gz: OK");
  expect(check.code).toBe(0);
  // The full directory (what tests and source installs use) keeps both executables and its own SHA256SUMS.
  expect(readFileSync(join(bundle.dir, "BUNDLE"), "utf8")).toBe("name=techtemp\nversion=0.1.0\narch=x64\nbun=1.4.5\n");
  expect(readFileSync(join(bundle.dir, "SHA256SUMS"), "utf8")).toContain("  techtemp-sensor\n");
  expect(readFileSync(join(bundle.dir, "install.sh"), "utf8")).toBe(readFileSync(join(REPO, "install.sh"), "utf8"));
  expect(readFileSync(join(bundle.dir, "README.md"), "utf8")).toContain("sudo ./install.sh server");
});

/** The bundle's server copied alone into an empty directory and started there (startExecutable). */
async function startAlone(prefix: string) {
  const dir = tempDir(prefix);
  const exe = join(dir.path, "techtemp-server");
  copyFileSync(join(bundle.dir, "techtemp-server"), exe);
  Bun.spawnSync(["chmod", "755", exe]);
  try {
    const started = await startExecutable(exe, dir.path);
    return { ...started, stop: () => started.stop().finally(() => dir.cleanup()) };
  } catch (err) {
    dir.cleanup();
    throw err;
  }
}

test("the compiled server serves /health, a page and its static files from a directory without the source tree", async () => {
  const server = await startAlone("techtemp-alone-");
  const { proc, base } = server;
  try {
    const health = await fetch(`${base}/health`, { signal: AbortSignal.timeout(10_000) });
    expect(await health.json()).toEqual({ status: "ok" });

    const page = await fetch(`${base}/`, { signal: AbortSignal.timeout(10_000) });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/static\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(3);
    for (const asset of assets) {
      const res = await fetch(base + asset, { signal: AbortSignal.timeout(10_000) });
      expect(`${asset} ${res.status}`).toBe(`${asset} 200`);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    proc.kill("SIGTERM");
    expect(await withTimeout(proc.exited, 20_000, "the server to stop on SIGTERM")).toBe(0);
  } finally {
    await server.stop();
  }
}, 60_000);

test("the compiled server starts from bytecode laid out by its start's profile, keeps idle code in the interpreter, and compiles as usual once busy", async () => {
  const server = await startAlone("techtemp-jit-");
  const { proc, base, token } = server;
  const stats = async () =>
    (
      await (
        await fetch(`${base}/api/v1/stats`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(10_000),
        })
      ).json()
    ).data.runtime;
  try {
    const idle = await stats();
    expect(idle.jit_policy).toBe("until_busy");
    expect(idle.jit_busy_since).toBeNull();
    // Every function the start loaded was in the profile the build recorded from this very tree.
    expect(idle.bytecode.hot).toBeGreaterThan(100);
    expect(idle.bytecode.unknown).toBe(0);
    expect(idle.bytecode.regions.hot).toBeGreaterThan(0);

    // A few readings a minute keep it idle; 150 devices' readings at once are one busy commit (BATCH_NOW = 100).
    const client = await connectMqtt(server.mqttPort, { username: server.tokenName, password: token });
    try {
      const publish = (i: number) =>
        client.publishAsync(
          readingTopic(`aht20-b${String(i).padStart(5, "0")}`),
          JSON.stringify({ temperature_c: 21.5, humidity_pct: 40, ts: Date.now() }),
          { qos: 1 },
        );
      await withTimeout(publish(0), 10_000, "one reading's PUBACK");
      expect((await stats()).jit_policy).toBe("until_busy");
      await withTimeout(Promise.all(Array.from({ length: 150 }, (_, i) => publish(i + 1))), 20_000, "150 PUBACKs");
    } finally {
      await endMqtt(client);
    }
    const busy = await stats();
    expect(busy.jit_policy).toBe("normal");
    expect(Date.parse(busy.jit_busy_since)).toBeGreaterThan(0);
    expect(server.output()).toContain("busy: JavaScript is compiled as usual from now on");
    proc.kill("SIGTERM");
    expect(await withTimeout(proc.exited, 20_000, "the server to stop on SIGTERM")).toBe(0);
  } finally {
    await server.stop();
  }
}, 60_000);

test("install.sh --bundle installs from the role's .tar.gz after checking it against SHA256SUMS", async () => {
  const root = makeRoot(bundle.dir);
  try {
    const r = await root.install(["server", ...freePortArgs(), "--bundle", bundle.tarballs!.server]);
    expect(r.stdout).toContain("ok  techtemp-server-0.1.0-linux-x64.tar.gz matches SHA256SUMS");
    expect(r.stdout).toContain(`unpacking ${bundle.tarballs!.server}`);
    expect(r.stdout).toMatch(/ok {2}bundle files match SHA256SUMS \(\d+ checked\)/);
    expect(r.code).toBe(0);
    expect(
      readFileSync(join(root.path, "opt/techtemp/techtemp-server")).equals(readFileSync(join(bundle.dir, "techtemp-server"))),
    ).toBe(true);
    const truncated = join(root.path, "truncated.tar.gz");
    writeFileSync(truncated, readFileSync(bundle.tarballs!.server).subarray(0, 1_000_000));
    const bad = await root.install(["server", ...freePortArgs(), "--bundle", truncated]);
    expect(bad.code).toBe(8);
    expect(bad.output).toContain(`error: cannot unpack ${truncated}`);
    expect(bad.output).toContain("fix: download it again (it may be truncated)");
  } finally {
    root.cleanup();
  }
}, 60_000);

test("a tarball that does not match SHA256SUMS beside it is refused before it is unpacked (exit 8); the sensor's has no server", async () => {
  const root = makeRoot(bundle.dir);
  const dir = tempDir("techtemp-sums-");
  try {
    const copy = join(dir.path, "techtemp-server-0.1.0-linux-x64.tar.gz");
    copyFileSync(bundle.tarballs!.server, copy);
    writeFileSync(join(dir.path, "SHA256SUMS"), `${"0".repeat(64)}  techtemp-server-0.1.0-linux-x64.tar.gz\n`);
    const before = readdirSync(root.path).sort();
    const r = await root.install(["server", ...freePortArgs(), "--bundle", copy]);
    expect(r.output).toContain(`error: ${copy} does not match ${dir.path}/SHA256SUMS (SHA-256 `);
    expect(r.output).toContain("nothing was changed");
    expect(r.output).not.toContain("unpacking");
    expect(r.code).toBe(8);
    expect(existsSync(join(root.path, "opt/techtemp"))).toBe(false);
    expect(readdirSync(root.path).sort()).toEqual(before);

    const wrongRole = await root.install(["server", ...freePortArgs(), "--bundle", bundle.tarballs!.sensor]);
    expect(wrongRole.output).toContain("error: this bundle has no techtemp-server");
    expect(wrongRole.code).toBe(8);
  } finally {
    root.cleanup();
    dir.cleanup();
  }
}, 60_000);

test("the compiled agent prints its uid and checks a simulated AHT20", async () => {
  const dir = tempDir("techtemp-agent-");
  try {
    const conf = join(dir.path, "device.conf");
    writeFileSync(conf, "[device]\ndevice_uid = aht20-b0b0b0\n[sensor]\ndriver = sim\n");
    const env = cleanEnv({ TECHTEMP_DATA_DIR: dir.path });
    const uid = await run([join(bundle.dir, "techtemp-sensor"), "uid", conf], { env, cwd: dir.path });
    expect(uid.stdout.trim()).toBe("aht20-b0b0b0");
    const check = await run([join(bundle.dir, "techtemp-sensor"), "check", conf], { env, cwd: dir.path });
    expect(check.code).toBe(0);
  } finally {
    dir.cleanup();
  }
});

test("the build command line: architectures by name or host, unknown ones refused", () => {
  expect(parseArgs([]).archs).toEqual(["arm64", "x64"]);
  expect(parseArgs(["--arch", "arm64", "--no-tar", "--out", "/tmp/x"])).toEqual({
    archs: ["arm64"],
    outDir: "/tmp/x",
    tar: false,
  });
  expect(parseArgs(["--arch", "host"]).archs).toEqual([process.arch === "arm64" ? "arm64" : "x64"]);
  expect(() => parseArgs(["--arch", "armv7"])).toThrow("--arch: unknown armv7 (known: arm64, x64, host)");
  expect(() => parseArgs(["--bogus"])).toThrow('unknown argument "--bogus"');
});

test("a build without its entry points fails naming the missing file", async () => {
  const dir = tempDir("techtemp-nosensor-");
  try {
    cpSync(join(REPO, "scripts"), join(dir.path, "scripts"), { recursive: true });
    copyFileSync(join(REPO, "package.json"), join(dir.path, "package.json"));
    const r = await run(["bun", "scripts/build.ts", "--arch", "x64", "--no-tar"], { cwd: dir.path });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("build: server.ts is missing");
  } finally {
    dir.cleanup();
  }
});
