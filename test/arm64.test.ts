// The Pi build (linux-arm64) on this x64 machine: its executables run under
// qemu-aarch64 (Debian's qemu-user, libraries from libc6-arm64-cross). The
// compiled server stores what the compiled agent reads from an AHT20
// simulated behind the C ABI (test/fixtures/fake-aht20, cross-built with
// Debian's gcc-aarch64-linux-gnu) through its real bun:ffi calls, the agent
// started with the Environment= and ExecStart= arguments of its unit.
// qemu is slow: every wait is generous.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { hashSecret, newSecret } from "../lib/server/auth/secrets.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { openStore } from "../lib/server/store/store.ts";
import { tempDir, waitFor, withTimeout } from "./helpers.ts";
import { buildFakeAht20 } from "./fixtures/fake-aht20/build.ts";
import { cachedBundle, type CachedBundle } from "./fixtures/install/bundles.ts";
import { REPO, cleanEnv } from "./fixtures/install/harness.ts";

const QEMU = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"];
/** ELF e_machine of AArch64. */
const EM_AARCH64 = 0xb7;

let bundle: CachedBundle;
let dir: { path: string; cleanup(): void };
let fakeAht20: string;
const procs: Subprocess[] = [];

beforeAll(async () => {
  dir = tempDir("techtemp-arm64-");
  // The first cross-build fetches Bun's arm64 runtime (from the npm registry) into Bun's cache.
  [bundle, fakeAht20] = await Promise.all([cachedBundle("arm64"), buildFakeAht20(dir.path, "arm64")]);
}, 300_000);

/** The sensor unit's Environment= and the words of its ExecStart=, as systemd reads them. */
function sensorUnit(): { env: Record<string, string>; execStart: string[] } {
  const lines = readFileSync(join(REPO, "systemd/techtemp-sensor.service"), "utf8").split("\n");
  const env: Record<string, string> = {};
  for (const l of lines.filter((l) => l.startsWith("Environment="))) {
    const [k, ...v] = l.slice("Environment=".length).split("=");
    env[k!] = v.join("=");
  }
  const exec = lines.find((l) => l.startsWith("ExecStart="))!;
  return { env, execStart: exec.slice("ExecStart=".length).split(/\s+/) };
}

afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  dir?.cleanup();
});

/** Starts a compiled executable under qemu in `cwd` (no source tree there) and collects its output. */
function spawnQemu(exe: string, args: string[], env: Record<string, string>, cwd: string) {
  const proc = Bun.spawn([...QEMU, join(bundle.dir, exe), ...args], { cwd, env: cleanEnv(env), stdout: "pipe", stderr: "pipe" });
  procs.push(proc);
  const output = { text: "" };
  for (const stream of [proc.stdout, proc.stderr]) {
    (async () => {
      for await (const chunk of stream) output.text += new TextDecoder().decode(chunk);
    })().catch(() => {});
  }
  return { proc, output };
}

test("the Pi executables are AArch64 ELF files", () => {
  for (const exe of ["techtemp-server", "techtemp-sensor"]) {
    const fd = openSync(join(bundle.dir, exe), "r");
    const header = Buffer.alloc(20);
    readSync(fd, header, 0, 20, 0);
    closeSync(fd);
    expect(header.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(`${exe} e_machine=${header.readUInt16LE(18)}`).toBe(`${exe} e_machine=${EM_AARCH64}`);
  }
});

test("under qemu-aarch64 the server stores what the agent reads from an AHT20 through its real FFI calls, started as its unit starts it", async () => {
  const uid = "aht20-a64a64";
  writeFileSync(join(dir.path, "empty.conf"), "");
  const server = spawnQemu(
    "techtemp-server",
    [],
    {
      TECHTEMP_CONFIG: join(dir.path, "empty.conf"),
      TECHTEMP_HTTP_PORT: "0",
      TECHTEMP_MQTT_PORT: "0",
      TECHTEMP_HOST: "127.0.0.1",
      TECHTEMP_DATA_DIR: join(dir.path, "server"),
    },
    dir.path,
  );
  const ports = (await waitFor(
    () => /http=(\d+) mqtt=(\d+)/.exec(server.output.text),
    120_000,
    "the arm64 server to print its ports",
  ))!;
  const base = `http://127.0.0.1:${ports[1]}`;
  expect(await (await fetch(`${base}/health`, { signal: AbortSignal.timeout(30_000) })).json()).toEqual({ status: "ok" });

  // The unit's command line and environment; its two paths on a Pi
  // (/etc/techtemp, /var/lib/techtemp) become this test's directory.
  const unit = sensorUnit();
  expect(unit.execStart).toEqual(["/opt/techtemp/techtemp-sensor", "/etc/techtemp/device.conf"]);
  const onPi = (p: string) => p.replace("/etc/techtemp", dir.path).replace("/var/lib/techtemp", join(dir.path, "sensor"));
  const env = Object.fromEntries(Object.entries(unit.env).map(([k, v]) => [k, onPi(v)]));
  const conf = onPi(unit.execStart[1]!);
  // Its MQTT secret, set beside the running server as enrollment sets it.
  const secret = newSecret();
  const store = openStore(join(dir.path, "server", DB_FILE));
  try {
    store.setDeviceSecret(uid, hashSecret(secret));
  } finally {
    store.close();
  }
  // The earlier agent's format, plus the C library the agent calls: the simulated AHT20.
  writeFileSync(
    conf,
    `[device]\ndevice_uid = ${uid}\n[sensor]\nlibc = ${fakeAht20}\nread_interval_seconds = 60\n[mqtt]\nbroker_host = 127.0.0.1\nbroker_port = ${ports[2]}\nusername = ${uid}\npassword = ${secret}\n`,
  );
  // No /dev/i2c-1 node here; the kernel's answer to adjtimex is replaced by "synchronised" (the call itself still runs).
  const sensor = spawnQemu("techtemp-sensor", [conf], { ...env, FAKE_AHT20_NODE: "none", FAKE_ADJTIMEX: "0" }, dir.path);
  const latest = await waitFor(
    async () => {
      const body = await (
        await fetch(`${base}/api/v1/readings/latest?deviceId=${uid}`, { signal: AbortSignal.timeout(30_000) })
      ).json();
      return body.data?.length ? body.data[0] : null;
    },
    120_000,
    `a reading of ${uid} stored by the arm64 server`,
  ).catch((err) => {
    throw new Error(`${err.message}\nserver output:\n${server.output.text}\nsensor output:\n${sensor.output.text}`);
  });
  expect(latest.device_id).toBe(uid);
  // The simulated AHT20's values, decoded by the arm64 agent from the frames it read.
  expect([latest.temperature, latest.humidity]).toEqual([21.5, 45]);
  const device = await (await fetch(`${base}/api/v1/devices/${uid}`, { signal: AbortSignal.timeout(30_000) })).json();
  expect(device.data.state).toBe("online");
  expect(device.data.sensor_failures).toBe(0);
  expect(sensor.output.text).toContain("clock: the kernel says it is synchronised");

  // Both stop cleanly on SIGTERM, as systemd stops them.
  sensor.proc.kill("SIGTERM");
  expect(await withTimeout(sensor.proc.exited, 60_000, "the arm64 sensor to stop")).toBe(0);
  server.proc.kill("SIGTERM");
  expect(await withTimeout(server.proc.exited, 60_000, "the arm64 server to stop")).toBe(0);
}, 300_000);
