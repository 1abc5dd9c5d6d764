// The installed units as they run on a Pi: install.sh server and install.sh
// sensor, each in its own booted systemd (test/fixtures/box: PID, mount and
// cgroup namespaces over a copy-on-write /), the sensor reading an AHT20
// simulated behind the C ABI (test/fixtures/fake-aht20) through the agent's
// real bun:ffi dlopen/open/ioctl/read/write, under the unit's exact
// Environment=, ExecStart=, User=, SupplementaryGroups=, UMask=, sandbox,
// system call filter and device policy, all applied by systemd itself.
// The server is installed with --tls (a local CA made by its own command) and
// the sensor enrolls with a token over HTTPS, checking that CA's fingerprint,
// then speaks MQTT over TLS with its own credentials.
// Then one drop-in at a time takes away something the agent needs (the JIT
// for bun:ffi, adjtimex in the system call filter, access to the device):
// the running service (and install.sh's check) must fail, and say why.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync } from "node:fs";
import { basename, join } from "node:path";
import { boxShare, startBox, type Box } from "./fixtures/box/box.ts";
import { buildFakeAht20 } from "./fixtures/fake-aht20/build.ts";
import { cachedBundle } from "./fixtures/install/bundles.ts";
import { freePorts, run, tempDir, waitFor } from "./helpers.ts";

const UID = "aht20-b0c5e1";
const [HTTP_PORT, MQTT_PORT, HTTPS_PORT, MQTTS_PORT] = freePorts(4) as [number, number, number, number];
const API = `http://127.0.0.1:${HTTP_PORT}`;
const SHARE_IN_BOX = "/srv/techtemp-test";
const DROPIN = "/etc/systemd/system/techtemp-sensor.service.d/test.conf";

let share: { path: string; cleanup(): void };
let bundleInBox: string;
let serverPi: Box;
let sensorPi: Box;
/** What the server install printed for sensors: its CA's fingerprint, and the enrollment token the sensor uses. */
let caFingerprint = "";
let enrollToken = "";

beforeAll(async () => {
  share = boxShare();
  const [bundle] = await Promise.all([
    cachedBundle("x64"),
    buildFakeAht20(share.path).then((so) => copyFileSync(so, join(share.path, "fake-aht20.so"))),
  ]);
  // The boxes see the share only (their /tmp is their own): the cached bundle goes in as hard links, as read-only as the cache.
  const linked = await run(["cp", "-al", bundle.dir, share.path]);
  if (linked.code !== 0) throw new Error(`cp -al ${bundle.dir} ${share.path}: ${linked.stderr}`);
  bundleInBox = join(SHARE_IN_BOX, basename(bundle.dir));
  [serverPi, sensorPi] = await Promise.all([startBox(share.path), startBox(share.path)]);
}, 300_000);

afterAll(async () => {
  await Promise.all([serverPi?.stop(), sensorPi?.stop()]);
  share?.cleanup();
}, 60_000);

async function installSh(box: Box, args: string[], env: Record<string, string> = {}) {
  // The box runs commands with a clean environment (env -i): the variables go on the command line.
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return box.exec(["env", ...vars, "bash", `${bundleInBox}/install.sh`, ...args, "--bundle", bundleInBox, "--wait", "60"], {
    timeoutMs: 120_000,
  });
}

const installSensor = () =>
  installSh(sensorPi, [
    "sensor",
    "--server",
    "127.0.0.1",
    "--enroll",
    enrollToken,
    "--tls",
    "--ca-fingerprint",
    caFingerprint,
    "--https-port",
    String(HTTPS_PORT),
    "--mqtts-port",
    String(MQTTS_PORT),
    "--room",
    "Salon",
    "--interval",
    "2",
    "--device-uid",
    UID,
  ]);

/** An enrollment token made on the server Pi with `techtemp-server enroll-token`, run as the service user. */
async function enrollmentTokenOnServer(): Promise<string> {
  const cli = await serverPi.exec(["runuser", "-u", "techtemp", "--", "/opt/techtemp/techtemp-server", "enroll-token"]);
  if (cli.code !== 0) throw new Error(`techtemp-server enroll-token on the server Pi: ${cli.output}`);
  return cli.stdout.trim().split("\n").at(-1)!.trim();
}

async function device(): Promise<any> {
  const res = await fetch(`${API}/api/v1/devices/${UID}`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()).data;
}

/** The device once its agent reports sensor failures. */
const failingDevice = () =>
  waitFor(
    async () => {
      const d = await device();
      return d.sensor_failures > 0 ? d : null;
    },
    60_000,
    "the sensor to report failures",
  );

async function readingCount(): Promise<number> {
  const res = await fetch(`${API}/api/v1/devices/${UID}/readings?limit=10000`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()).data.length;
}

/** Replaces the sensor unit's test drop-in (none when `body` is null) and restarts the service. */
async function withDropIn(body: string | null): Promise<void> {
  await sensorPi.sh(
    body === null ? `rm -f ${DROPIN}` : `mkdir -p $(dirname ${DROPIN}) && printf '%s\\n' '[Service]' '${body}' > ${DROPIN}`,
  );
  await sensorPi.sh("systemctl daemon-reload && systemctl restart techtemp-sensor.service");
}

describe("install.sh in a booted systemd", () => {
  test("the server unit starts under its hardening and answers, over HTTPS too with the local CA install.sh made", async () => {
    const r = await installSh(serverPi, [
      "server",
      "--http-port",
      String(HTTP_PORT),
      "--mqtt-port",
      String(MQTT_PORT),
      "--tls",
      "--https-port",
      String(HTTPS_PORT),
      "--mqtts-port",
      String(MQTTS_PORT),
    ]);
    expect(r.output).toContain("techtemp-server.service is healthy");
    expect(r.code).toBe(0);
    expect(await (await fetch(`${API}/health`)).json()).toEqual({ status: "ok" });
    // Run by the service user, in its state directory, created with UMask=0077.
    expect(await serverPi.sh("stat -c '%U %a' /var/lib/techtemp/techtemp.db")).toBe("techtemp 600\n");
    // The certificate the service reads, its key the service's alone.
    expect(await serverPi.sh("stat -c '%U %a' /var/lib/techtemp/tls/server.key")).toBe("techtemp 600\n");
    caFingerprint = /local CA +\/var\/lib\/techtemp\/tls\/ca\.crt +SHA-256 (\S+)/.exec(r.stdout)![1]!;
    const ca = tempDir();
    try {
      await Bun.write(join(ca.path, "ca.crt"), await serverPi.sh("cat /var/lib/techtemp/tls/ca.crt"));
      const https = await run(["curl", "-sS", "--cacert", join(ca.path, "ca.crt"), `https://127.0.0.1:${HTTPS_PORT}/health`]);
      expect(https.stdout).toBe('{"status":"ok"}');
    } finally {
      ca.cleanup();
    }
    enrollToken = await enrollmentTokenOnServer();
  }, 120_000);

  test("the sensor's AHT20 check runs under the sensor unit, then the unit reads the AHT20 over the real FFI path and the server stores it", async () => {
    // A person's edits to device.conf are kept by install.sh: here the C library
    // the agent calls is the simulated AHT20, and the clock is waited for 2 s only.
    await sensorPi.sh(
      `mkdir -p /etc/techtemp && printf '%s\\n' '[sensor]' 'libc = ${SHARE_IN_BOX}/fake-aht20.so' '[clock]' 'sync_wait_seconds = 2' > /etc/techtemp/device.conf`,
    );
    const r = await installSensor();
    // On a first install the service user does not exist yet: the check ran as a dynamic user with the same sandbox.
    expect(r.output).toMatch(/ok {2}AHT20: OK: AHT20 at 0x38 on \/dev\/i2c-1: 21\.50 °C, 45\.00 %RH; OK: clock: the kernel says/);
    expect(r.output).toContain("ok  the server's CA matches --ca-fingerprint");
    expect(r.output).toContain("enrolled aht20-b0c5e1: its MQTT username and password go to /etc/techtemp/device.conf");
    expect(r.output).toContain("techtemp-sensor.service is healthy");
    expect(r.code).toBe(0);
    // Its credentials and the CA it trusts, readable by root and the service only.
    expect(await sensorPi.sh("stat -c '%U %G %a' /etc/techtemp/device.conf /etc/techtemp/ca.crt")).toBe(
      "root techtemp 640\nroot techtemp 640\n",
    );
    expect(await sensorPi.sh("grep -E '^(username|tls|ca_file) =' /etc/techtemp/device.conf")).toBe(
      `tls = true\nca_file = /etc/techtemp/ca.crt\nusername = ${UID}\n`,
    );

    await waitFor(async () => (await readingCount()) >= 3, 60_000, "three readings stored");
    const latest = (await (await fetch(`${API}/api/v1/readings/latest?deviceId=${UID}`)).json()).data[0];
    // The simulated AHT20's values (FAKE_AHT20_VALUES default), decoded from its frames by the agent.
    expect([latest.temperature, latest.humidity]).toEqual([21.5, 45]);
    const d = await device();
    expect(d.room).toEqual({ uid: "salon", name: "Salon" });
    expect(d.sensor_failures).toBe(0);
    expect(d.last_error).toBeNull();

    const journal = await sensorPi.journal("techtemp-sensor.service");
    // MQTT over TLS to the server's port, logged in as itself.
    expect(journal).toContain(`connected broker=mqtts://127.0.0.1:${MQTTS_PORT}`);
    // The clock probe answered through adjtimex(2) under the unit's system call filter.
    expect(journal).toMatch(/clock: the kernel says it is (not synchronised yet|synchronised)/);
    expect(journal).not.toContain("cannot read the sensor");
    // The unit's user, group and UMask: the outbox in the state directory is the service's alone.
    const pid = (await sensorPi.sh("systemctl show -p MainPID --value techtemp-sensor.service")).trim();
    expect(await sensorPi.sh(`stat -c '%U' /proc/${pid}`)).toBe("techtemp\n");
    expect(await sensorPi.sh(`stat -c '%U %a' /var/lib/techtemp/outbox-${UID}.db`)).toBe("techtemp 600\n");
  }, 120_000);

  test("BUN_JSC_useJIT=0 in the unit: the service cannot open the bus and install.sh's check refuses, both naming the JIT", async () => {
    await withDropIn("Environment=BUN_JSC_useJIT=0");
    try {
      const d = await failingDevice();
      expect(d.last_error).toContain("bun:ffi requires the JIT; remove BUN_JSC_useJIT=0");
      const r = await installSensor();
      expect(r.code).not.toBe(0);
      expect(r.output).toContain("check failed: the AHT20 check failed");
      expect(r.output).toContain("bun:ffi requires the JIT");
      expect(r.output).toContain("nothing was installed");
    } finally {
      await withDropIn(null);
    }
    // Without the drop-in it reads again.
    await waitFor(async () => (await device()).sensor_failures === 0, 60_000, "the sensor to work again");
  }, 120_000);

  test("adjtimex taken out of the system call filter: the clock probe says it was refused, and the check fails", async () => {
    await withDropIn("SystemCallFilter=~adjtimex");
    try {
      await waitFor(
        async () => (await sensorPi.journal("techtemp-sensor.service")).includes("adjtimex(2) refused (EPERM)"),
        60_000,
        "the agent to log that adjtimex was refused",
        250, // each check runs journalctl in the box
      );
      const r = await installSensor();
      expect(r.code).not.toBe(0);
      expect(r.output).toContain("cannot tell whether the clock is synchronised: adjtimex(2) refused (EPERM)");
    } finally {
      await withDropIn(null);
    }
  }, 120_000);

  test("a bus the service's groups may not open: refused with EACCES, and the message names the i2c group", async () => {
    // As when the udev rule that gives /dev/i2c-* to group i2c is missing.
    await sensorPi.sh("chgrp root /dev/i2c-1 && systemctl restart techtemp-sensor.service");
    try {
      const d = await failingDevice();
      expect(d.last_error).toContain("permission denied opening /dev/i2c-1: add the agent's user to the i2c group");
    } finally {
      await sensorPi.sh("chgrp i2c /dev/i2c-1");
    }
    await waitFor(async () => (await device()).sensor_failures === 0, 60_000, "the sensor to work again");
  }, 120_000);
});
