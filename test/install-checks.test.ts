// install.sh's checks, each made to fail in a temp tree (`--root`, with the
// stand-ins of test/fixtures/install/bin): every failure says what to do,
// and nothing is installed.

import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, startServer } from "./helpers.ts";
import { diffSnapshots, freePortArgs, snapshot, type TestRoot } from "./fixtures/install/harness.ts";
import { installWorld } from "./fixtures/install/world.ts";

const { newRoot } = installWorld();

describe("every failing check says what to do, and installs nothing", () => {
  /** Runs a failing install and checks that the tree is untouched (but for the log). */
  async function failing(args: string[], env: Record<string, string> = {}, prepare?: (root: TestRoot) => void) {
    const root = newRoot();
    prepare?.(root);
    const before = snapshot(root.path);
    const r = await root.install(args, { env });
    // Exit code 3: a check failed, nothing changed.
    expect(r.code).toBe(3);
    const changed = diffSnapshots(before, snapshot(root.path, { ignore: ["var/log/techtemp-install.log"] }));
    return { ...r, changed, root };
  }

  test("a 32-bit ARM Pi (armv7l) is refused with the reason", async () => {
    const r = await failing(["server", ...freePortArgs()], { TECHTEMP_STUB_UNAME_M: "armv7l", TECHTEMP_STUB_DPKG_ARCH: "armhf" });
    expect(r.output).toContain("error: this is a 32-bit ARM machine (armv7l): Bun, and so TechTemp, runs on 64-bit ARM only");
    expect(r.output).toContain("fix: use a Pi 3, 4, 5 or Zero 2 W with Raspberry Pi OS (64-bit)");
    expect(r.changed).toEqual([]);
  }, 120_000);

  test("a 32-bit OS on a 64-bit kernel is refused", async () => {
    const r = await failing(["server", ...freePortArgs()], {
      TECHTEMP_STUB_UNAME_M: "aarch64",
      TECHTEMP_STUB_DPKG_ARCH: "armhf",
    });
    expect(r.output).toContain("the operating system is 32-bit (armhf userland on a aarch64 kernel)");
    expect(r.output).toContain("fix: reinstall with Raspberry Pi OS (64-bit)");
  }, 120_000);

  test("a bundle for another architecture is refused", async () => {
    const r = await failing(["server", ...freePortArgs()], {
      TECHTEMP_STUB_UNAME_M: "aarch64",
      TECHTEMP_STUB_DPKG_ARCH: "arm64",
    });
    expect(r.output).toContain("this bundle is for linux-x64 but this machine is linux-arm64");
    expect(r.output).toContain("fix: use techtemp-0.1.0-linux-arm64.tar.gz");
  }, 120_000);

  test("a port taken by another program is named, with how to free it", async () => {
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await failing(["server", "--http-port", String(listener.port), "--mqtt-port", String(freePort())]);
      // ss names the process by its command name: this test process (a `bun test` worker may be named otherwise than "bun").
      const self = `${readFileSync("/proc/self/comm", "utf8").trim()} ${process.pid}`;
      expect(r.output).toContain(`check failed: port ${listener.port} (http) is already used by ${self}`);
      expect(r.output).toContain("fix: stop it, or choose another port with --http-port N");
      expect(r.output).toContain("1 check(s) failed: nothing was installed");
      expect(r.changed).toEqual([]);
    } finally {
      listener.stop(true);
    }
  }, 120_000);

  test("no I2C: it is enabled as raspi-config does, and the missing bus asks for a reboot", async () => {
    const server = await startServer();
    try {
      const root = newRoot();
      const r = await root.install([
        "sensor",
        "--server",
        "127.0.0.1",
        "--mqtt-port",
        String(server.mqttPort),
        "--device-uid",
        "aht20-12c12c",
      ]);
      expect(r.code).toBe(3);
      expect(r.output).toContain("check failed: I2C is enabled in");
      expect(r.output).toContain("but /dev/i2c-1 did not appear");
      expect(r.output).toContain("fix: reboot (sudo reboot), then run install.sh again");
      // The commented line of a fresh image is switched on in place; i2c-dev loads at boot.
      const config = readFileSync(join(root.path, "boot/firmware/config.txt"), "utf8");
      expect(config).toContain(
        "# Uncomment some or all of these to enable the optional hardware interfaces\ndtparam=i2c_arm=on\n",
      );
      expect(config).not.toContain("#dtparam=i2c_arm=on");
      expect(readFileSync(join(root.path, "etc/modules"), "utf8")).toEndWith("\ni2c-dev\n");
      expect(r.stdout).toContain("skipped (--root): modprobe i2c-dev");
      expect(existsSync(join(root.path, "opt/techtemp"))).toBe(false);
    } finally {
      await server.stop();
    }
  }, 120_000);

  test("an AHT20 that does not answer is reported with the wiring to check", async () => {
    const server = await startServer();
    try {
      // I2C enabled and a bus node present in the tree, but no sensor behind it on this machine.
      const r = await failing(
        ["sensor", "--server", "127.0.0.1", "--mqtt-port", String(server.mqttPort), "--device-uid", "aht20-a0a0a0"],
        {},
        (root) => {
          const cfg = join(root.path, "boot/firmware/config.txt");
          writeFileSync(cfg, readFileSync(cfg, "utf8").replace("#dtparam=i2c_arm=on", "dtparam=i2c_arm=on"));
          writeFileSync(join(root.path, "etc/modules"), "i2c-dev\n");
          mkdirSync(join(root.path, "dev"), { recursive: true });
          writeFileSync(join(root.path, "dev/i2c-1"), "");
        },
      );
      expect(r.stdout).toContain("ok  I2C: /dev/i2c-1");
      expect(r.output).toContain("check failed: the AHT20 check failed: PROBLEM: /dev/i2c-1 does not exist");
      expect(r.output).toContain("fix: check the wiring (VIN 3.3 V, GND, SDA pin 3, SCL pin 5)");
      expect(r.changed).toEqual([]);
    } finally {
      await server.stop();
    }
  }, 120_000);

  test("a server that does not answer on its MQTT port", async () => {
    const r = await failing([
      "sensor",
      "--server",
      "127.0.0.1",
      "--mqtt-port",
      String(freePort()),
      "--simulated",
      "--device-uid",
      "aht20-0a0a0a",
    ]);
    expect(r.output).toMatch(/check failed: the server does not answer on MQTT 127\.0\.0\.1:\d+/);
    expect(r.output).toContain("fix: install the server first");
    expect(r.changed).toEqual([]);
  }, 120_000);

  test("a full disk", async () => {
    const r = await failing(["server", ...freePortArgs()], { TECHTEMP_STUB_DF_AVAIL_KB: "20480" });
    expect(r.output).toMatch(/check failed: not enough free disk space on \S+: 20 MB free, \d+ MB needed/);
    expect(r.output).toContain("fix: free some space");
    expect(r.changed).toEqual([]);
  }, 120_000);

  test("an operating system install.sh does not know", async () => {
    const r = await failing(["server", ...freePortArgs()], {}, (root) =>
      writeFileSync(join(root.path, "etc/os-release"), 'ID=fedora\nVERSION_ID="40"\n'),
    );
    expect(r.output).toContain("check failed: unsupported operating system 'fedora'");
    expect(r.output).toContain("fix: use Raspberry Pi OS (64-bit) or Debian 12");
  }, 120_000);

  test("bad options are refused with an example, exit code 2", async () => {
    const root = newRoot();
    for (const [args, message] of [
      [["server", "--http-port", "80a"], "port 80a is not a port number"],
      [["server", "--http-port", "80"], "--http-port 80: ports below 1024 need privileges the hardened service does not have"],
      [["server", "--mqtts-port", "883"], "--mqtts-port 883: ports below 1024"],
      [["sensor"], "the sensor needs the server's address"],
      [["sensor", "--server", "pi; rm -rf /"], "is not a host name or address"],
      [["sensor", "--server", "10.0.0.1", "--interval", "0"], "--interval 0 is not a number of seconds from 1 to 3600"],
      [["sensor", "--server", "10.0.0.1", "--device-uid", "bad uid"], "--device-uid bad uid is not a valid id"],
      [["frobnicate"], "unknown argument: frobnicate"],
    ] as [string[], string][]) {
      const r = await root.install(args);
      expect(r.output).toContain(message);
      expect(r.output).toContain("fix: ");
      expect(r.code).toBe(2);
    }
    expect(existsSync(join(root.path, "opt/techtemp"))).toBe(false);
  }, 120_000);
});
