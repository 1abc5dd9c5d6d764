// The server by name: sensors are pointed at the server's NAME.local (mDNS)
// when that resolves, which survives DHCP moving the server; else at its
// address, and the summaries say which. mDNS answers come from the getent
// stand-in (test/fixtures/install/bin/getent) as libnss-mdns would give them.

import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePortArgs } from "./fixtures/install/harness.ts";
import { installWorld } from "./fixtures/install/world.ts";

const { newRoot } = installWorld();

test("the server's summary points sensors at NAME.local when it resolves, else at its address, and says why", async () => {
  const root = newRoot();
  writeFileSync(join(root.path, "etc/hostname"), "maison\n");
  const ports = freePortArgs();
  const named = await root.install(["server", ...ports], { env: { TECHTEMP_STUB_MDNS: "192.0.2.10" } });
  expect(named.code).toBe(0);
  expect(named.stdout).toMatch(/sensors: +sudo \.\/install\.sh sensor --server maison\.local --enroll TOKEN --room NAME/);
  expect(named.stdout).toContain("(reach this server by name (mDNS): it follows this Pi when DHCP gives it another address");

  const unnamed = await root.install(["server", ...ports]);
  expect(unnamed.code).toBe(0);
  expect(unnamed.stdout).not.toContain("--server maison.local");
  expect(unnamed.stdout).toMatch(/sensors: +sudo \.\/install\.sh sensor --server \S+ --enroll TOKEN/);
  expect(unnamed.stdout).toContain(
    "(reach this server by address: maison.local does not resolve here (install avahi-daemon and libnss-mdns",
  );
}, 120_000);

test("a sensor given a .local name that does not resolve is stopped by a check that says what to install (exit 3)", async () => {
  const root = newRoot();
  const r = await root.install(["sensor", "--server", "nowhere-techtemp.local", "--simulated", "--device-uid", "aht20-10ca11"]);
  expect(r.output).toContain("check failed: the server's name nowhere-techtemp.local does not resolve on this Pi (mDNS)");
  expect(r.output).toContain("fix: install the mDNS resolver (sudo apt-get install libnss-mdns avahi-daemon");
  expect(r.code).toBe(3);
}, 120_000);
