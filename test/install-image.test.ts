// Image building: an x64 PC prepares an arm64 Pi's tree (`--root --image`, the arm64
// bundle): nothing of the PC is probed (its MAC, ports, I2C, the AHT20, the
// server), and the Pi derives its uid at its first start.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { cachedBundle, type CachedBundle } from "./fixtures/install/bundles.ts";
import { makeRoot, type TestRoot } from "./fixtures/install/harness.ts";

let arm64: CachedBundle;
const roots: TestRoot[] = [];

beforeAll(async () => {
  arm64 = await cachedBundle("arm64");
}, 300_000);
afterAll(() => {
  for (const r of roots) r.cleanup();
});

function newRoot(): TestRoot {
  const root = makeRoot(arm64.dir);
  roots.push(root);
  return root;
}

// The PC is x86-64 (the stand-in uname answers as the real one; these tests assume an x64 machine, as CI is).
const onX64 = process.arch === "x64";

test.if(onX64)(
  "a sensor image: no uid from the PC's MAC, I2C enabled in the tree's files, no probe of the PC",
  async () => {
    const root = newRoot();
    const r = await root.install(["sensor", "--server", "techtemp.local", "--image"]);
    expect(r.output).toContain("preparing an image for another machine (linux-arm64): this one is not probed");
    expect(r.output).toContain("ports, I2C, the AHT20 and the server: checked on the Pi");
    expect(r.output).toContain("device uid: derived from the Pi's own MAC address at its first start");
    expect(r.output).toContain("device     (derived from the Pi's MAC address at its first start)");
    expect(r.output).not.toContain("AHT20: ");
    expect(r.code).toBe(0);
    const conf = readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8");
    expect(conf).not.toContain("device_uid");
    expect(conf).toContain("broker_host = techtemp.local");
    expect(readFileSync(join(root.path, "boot/firmware/config.txt"), "utf8")).toContain("dtparam=i2c_arm=on");
    expect(readFileSync(join(root.path, "etc/modules"), "utf8")).toContain("i2c-dev");
    expect(readFileSync(join(root.path, "opt/techtemp/BUNDLE"), "utf8")).toContain("arch=arm64");
    expect(readlinkSync(join(root.path, "etc/systemd/system/multi-user.target.wants/techtemp-sensor.service"))).toBe(
      "/etc/systemd/system/techtemp-sensor.service",
    );
    // Nothing ran on the PC: no module loaded, no service started.
    expect(root.calls().filter((c) => /modprobe|dtparam|systemctl (start|restart)/.test(c))).toEqual([]);
  },
  120_000,
);

test.if(onX64)(
  "a server image takes its default ports even where the PC uses them; --tls and --enroll without a uid are refused",
  async () => {
    const root = newRoot();
    // Whatever listens on 3000/1883 on the PC says nothing about the Pi.
    const r = await root.install(["server", "--image"]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(root.path, "etc/techtemp/server.conf"), "utf8")).toContain("http_port = 3000");

    const tls = await root.install(["server", "--tls", "--image"]);
    expect(tls.output).toContain(
      "error: --tls in an image: the local CA is made by the server's own executable, which runs on the Pi",
    );
    expect(tls.code).toBe(2);
    const enroll = await newRoot().install(["sensor", "--server", "techtemp.local", "--enroll", "a".repeat(32), "--image"]);
    expect(enroll.output).toContain("error: --enroll in an image needs the device uid");
    expect(enroll.code).toBe(2);
  },
  120_000,
);
