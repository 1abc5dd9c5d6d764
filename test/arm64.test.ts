// The Pi build (linux-arm64) on this x64 machine: its executables run under
// qemu-aarch64 (Debian's qemu-user, libraries from libc6-arm64-cross), and a
// compiled server and a compiled simulated sensor store a reading end to end.
// qemu is slow: every wait is generous.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { openSync, readSync, closeSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { tempDir, waitFor, withTimeout } from "./helpers.ts";
import { buildBundle, cleanEnv } from "./fixtures/install/harness.ts";

const QEMU = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"];
/** ELF e_machine of AArch64. */
const EM_AARCH64 = 0xb7;

let bundle: Awaited<ReturnType<typeof buildBundle>>;
let dir: { path: string; cleanup(): void };
const procs: Subprocess[] = [];

beforeAll(async () => {
  // The first cross-build fetches Bun's arm64 runtime (from the npm registry) into Bun's cache.
  bundle = await buildBundle("arm64");
  dir = tempDir("techtemp-arm64-");
}, 240_000);

afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  dir?.cleanup();
  bundle?.cleanup();
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

test("under qemu-aarch64 the server and a simulated sensor store a reading end to end", async () => {
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

  const conf = join(dir.path, "device.conf");
  // The earlier agent's format; sync_wait_seconds = 0: this machine's clock may not report NTP sync.
  writeFileSync(
    conf,
    `[device]\ndevice_uid = ${uid}\n[sensor]\ndriver = sim\nread_interval_seconds = 60\n[mqtt]\nbroker_host = 127.0.0.1\nbroker_port = ${ports[2]}\n[clock]\nsync_wait_seconds = 0\n`,
  );
  const sensor = spawnQemu("techtemp-sensor", [conf], { TECHTEMP_DATA_DIR: join(dir.path, "sensor") }, dir.path);
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
  expect(latest.temperature).toBeGreaterThan(-40);
  expect(latest.temperature).toBeLessThan(85);
  expect(latest.humidity).toBeGreaterThanOrEqual(0);
  expect(latest.humidity).toBeLessThanOrEqual(100);
  const device = await (await fetch(`${base}/api/v1/devices/${uid}`, { signal: AbortSignal.timeout(30_000) })).json();
  expect(device.data.state).toBe("online");

  // Both stop cleanly on SIGTERM, as systemd stops them.
  sensor.proc.kill("SIGTERM");
  expect(await withTimeout(sensor.proc.exited, 60_000, "the arm64 sensor to stop")).toBe(0);
  server.proc.kill("SIGTERM");
  expect(await withTimeout(server.proc.exited, 60_000, "the arm64 server to stop")).toBe(0);
}, 300_000);
