// The systemd units: `systemd-analyze verify` in a temp tree where their
// executables exist, the exposure score of `systemd-analyze security`
// (goal <= 4.0, printed), and the settings the issue asks for.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, tempDir } from "./helpers.ts";
import { REPO } from "./fixtures/install/harness.ts";

const UNITS = ["techtemp-server.service", "techtemp-sensor.service"] as const;
/** The exposure level `systemd-analyze security` must not exceed (0 = locked down, 10 = exposed). */
const EXPOSURE_GOAL = 4.0;

let tree: { path: string; cleanup(): void };

beforeAll(() => {
  // A tree with the host's stock units (verify resolves sysinit.target…) and stand-in executables.
  tree = tempDir("techtemp-units-");
  cpSync("/usr/lib/systemd/system", join(tree.path, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(tree.path, "opt/techtemp"), { recursive: true });
  mkdirSync(join(tree.path, "etc/systemd/system"), { recursive: true });
  for (const exe of ["techtemp-server", "techtemp-sensor"]) copyFileSync("/bin/true", join(tree.path, "opt/techtemp", exe));
});

afterAll(() => tree?.cleanup());

/** The unit's `Key=value` lines (a key may repeat). */
function directives(unit: string): [string, string][] {
  return readFileSync(join(REPO, "systemd", unit), "utf8")
    .split("\n")
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}
const values = (unit: string, key: string) =>
  directives(unit)
    .filter(([k]) => k === key)
    .map(([, v]) => v);

async function verify(unit: string, text: string) {
  writeFileSync(join(tree.path, "etc/systemd/system", unit), text);
  return run(["systemd-analyze", "verify", "--man=no", `--root=${tree.path}`, unit]);
}

describe.each(UNITS)("%s", (unit) => {
  test("passes systemd-analyze verify", async () => {
    const r = await verify(unit, readFileSync(join(REPO, "systemd", unit), "utf8"));
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  test(`has an exposure level of at most ${EXPOSURE_GOAL.toFixed(1)} in systemd-analyze security`, async () => {
    const r = await run(["systemd-analyze", "security", "--offline=true", "--no-pager", join(REPO, "systemd", unit)]);
    const m = /Overall exposure level for \S+: (\d+\.\d+) (\S+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    const level = Number(m![1]);
    console.log(`systemd-analyze security ${unit}: exposure ${m![1]} ${m![2]} (goal <= ${EXPOSURE_GOAL.toFixed(1)})`);
    expect(level).toBeLessThanOrEqual(EXPOSURE_GOAL);
  });

  test("restarts always, waits for the network, runs as techtemp with its state and config directories, logs to the journal", () => {
    expect(values(unit, "Restart")).toEqual(["always"]);
    expect(values(unit, "After")).toContain("network-online.target");
    expect(values(unit, "Wants")).toContain("network-online.target");
    expect(values(unit, "User")).toEqual(["techtemp"]);
    expect(values(unit, "StateDirectory")).toEqual(["techtemp"]);
    expect(values(unit, "ConfigurationDirectory")).toEqual(["techtemp"]);
    expect(values(unit, "StandardOutput")).toEqual(["journal"]);
    expect(values(unit, "Environment")).toContain("TECHTEMP_DATA_DIR=/var/lib/techtemp");
    expect(values(unit, "WantedBy")).toEqual(["multi-user.target"]);
  });

  test("is hardened without MemoryDenyWriteExecute (Bun's JIT needs W+X memory)", () => {
    expect(values(unit, "MemoryDenyWriteExecute")).toEqual([]);
    expect(values(unit, "NoNewPrivileges")).toEqual(["yes"]);
    expect(values(unit, "ProtectSystem")).toEqual(["strict"]);
    expect(values(unit, "CapabilityBoundingSet")).toEqual([""]);
    expect(values(unit, "DevicePolicy")).toEqual(["closed"]);
  });
});

test("the sensor keeps the I2C devices, its group and the read-only clock query", () => {
  const unit = "techtemp-sensor.service";
  expect(values(unit, "DeviceAllow")).toEqual(["char-i2c rw"]);
  expect(values(unit, "SupplementaryGroups")).toEqual(["i2c"]);
  expect(values(unit, "PrivateDevices")).toEqual([]);
  expect(values(unit, "ExecStart")).toEqual(["/opt/techtemp/techtemp-sensor /etc/techtemp/device.conf"]);
  // Allowed back after ~@privileged: the agent asks adjtimex(2) whether NTP has synchronised the clock.
  expect(values(unit, "SystemCallFilter")).toEqual(["@system-service", "~@privileged", "adjtimex"]);
  expect(values(unit, "ProtectClock")).toEqual([]);
});

test("the server has no devices and reads its config file", () => {
  const unit = "techtemp-server.service";
  expect(values(unit, "PrivateDevices")).toEqual(["yes"]);
  expect(values(unit, "Environment")).toContain("TECHTEMP_CONFIG=/etc/techtemp/server.conf");
  expect(values(unit, "ExecStart")).toEqual(["/opt/techtemp/techtemp-server"]);
});

test("verify catches a broken unit (so a clean verify means something)", async () => {
  const text = readFileSync(join(REPO, "systemd/techtemp-server.service"), "utf8").replace("Restart=always", "Restart=allways");
  const r = await verify("techtemp-broken.service", text);
  expect(r.stdout + r.stderr).toContain("Failed to parse service restart specifier, ignoring: allways");
});
