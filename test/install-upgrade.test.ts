// install.sh with `--start` into temp trees: the stand-in systemctl
// (test/fixtures/install/bin) runs the installed executables, so the status,
// the health checks, upgrades and rollbacks are real.

import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePorts } from "./helpers.ts";
import { installWorld, getJson, mode, publishReadings } from "./fixtures/install/world.ts";

const { newRoot, variant, liveServer } = installWorld();

test("status tells what is installed, whether it runs and answers", async () => {
  const root = newRoot();
  try {
    const none = await root.install(["status", "--start"]);
    expect(none.stdout).toContain("TechTemp is not installed in /opt/techtemp");
    expect(none.code).toBe(1);
    const server = await liveServer(root);
    const r = await root.install(["status", "--start"]);
    expect(r.stdout).toContain("TechTemp 0.1.0 (linux-x64) in /opt/techtemp");
    expect(r.stdout).toContain("server: enabled, active");
    expect(r.stdout).toContain(`config /etc/techtemp/server.conf: http_port ${server.http}, mqtt_port ${server.mqtt}`);
    expect(r.stdout).toContain('health: {"status":"ok"}');
    expect(r.code).toBe(0);
    await root.install(["uninstall", "--start"]);
    expect(root.calls()).toContain("systemctl stop techtemp-server.service");
    await expect(fetch(`${server.url}/health`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
  } finally {
    root.cleanup();
  }
}, 90_000);

test("a server install prints the one-time setup link the server makes (techtemp-server setup-link)", async () => {
  const root = newRoot();
  try {
    const [http, mqtt] = freePorts(2) as [number, number];
    mkdirSync(join(root.path, "etc/techtemp"), { recursive: true });
    writeFileSync(join(root.path, "etc/techtemp/server.conf"), "host = 127.0.0.1\n");
    const bundle = variant("0.1.0", "setup-link");
    const r = await root.install(
      ["server", "--bundle", bundle, "--http-port", String(http), "--mqtt-port", String(mqtt), "--start", "--wait", "30"],
      { timeoutMs: 90_000 },
    );
    expect(r.code).toBe(0);
    // Run with the service's data dir, after the server is healthy.
    expect(r.stdout).toContain(
      `setup      http://127.0.0.1:3000/setup#token-for-${root.path}/var/lib/techtemp   (create the owner account; the link works once, for 24 h)`,
    );
  } finally {
    root.cleanup();
  }
}, 120_000);

describe("upgrades", () => {
  test("an upgrade backs the database up first and keeps every reading and the config", async () => {
    const root = newRoot();
    try {
      const server = await liveServer(root, "retention_raw_days = 3650\n");
      await publishReadings(server, "aht20-0ld0ld", 3);
      const v2 = variant("9.9.9", "wrapper");
      const r = await root.install(["server", "--bundle", v2, "--start", "--wait", "30"]);
      expect(r.output).toContain("upgrading techtemp-server 0.1.0 -> 9.9.9");
      expect(r.code).toBe(0);
      expect(readFileSync(join(root.path, "opt/techtemp/BUNDLE"), "utf8")).toContain("version=9.9.9");
      expect(existsSync(join(root.path, "opt/techtemp/previous"))).toBe(false);

      const backup = /database backed up to (\S+)/.exec(r.stdout)![1]!;
      expect(backup).toStartWith(`${root.path}/var/lib/techtemp/backups/techtemp-0.1.0-`);
      expect(mode(backup)).toBe("600");
      const db = new Database(backup, { readonly: true });
      expect((db.query("SELECT count(*) AS n FROM readings").get() as { n: number }).n).toBe(3);
      db.close();

      const readings = await getJson(`${server.url}/api/v1/devices/aht20-0ld0ld/readings?limit=10`);
      expect(readings.data).toHaveLength(3);
      const conf = readFileSync(join(root.path, "etc/techtemp/server.conf"), "utf8");
      expect(conf).toContain("retention_raw_days = 3650");
      expect(conf).toContain("host = 127.0.0.1");
    } finally {
      root.cleanup();
    }
  }, 120_000);

  test("a new version that fails its health check is rolled back with its config (exit 4), with the readings kept", async () => {
    const root = newRoot();
    try {
      const server = await liveServer(root);
      await publishReadings(server, "aht20-b4d0ne", 2);
      const installed = readFileSync(join(root.path, "opt/techtemp/techtemp-server"));
      const conf = readFileSync(join(root.path, "etc/techtemp/server.conf"), "utf8");
      const broken = variant("6.6.6", "broken");
      // The upgrade also moves the web pages to another port: that change goes back with the executable.
      const [otherPort] = freePorts(1) as [number];
      const r = await root.install(["server", "--bundle", broken, "--http-port", String(otherPort), "--start", "--wait", "5"], {
        timeoutMs: 90_000,
      });
      expect(r.code).toBe(4);
      expect(r.stdout).toContain("the health check failed: rolling back to 0.1.0 and its configuration");
      expect(r.stdout).toContain(`restore ${root.path}/etc/techtemp/server.conf`);
      expect(r.output).toContain(
        "the upgrade to 6.6.6 failed its health check; 0.1.0 and its configuration is running again (data kept, backup ",
      );
      expect(r.output).toContain("fix: see why it failed: journalctl -u techtemp-server.service");
      expect(readFileSync(join(root.path, "opt/techtemp/techtemp-server")).equals(installed)).toBe(true);
      expect(readFileSync(join(root.path, "opt/techtemp/BUNDLE"), "utf8")).toContain("version=0.1.0");
      expect(readFileSync(join(root.path, "etc/techtemp/server.conf"), "utf8")).toBe(conf);
      expect((await getJson(`${server.url}/health`)).status).toBe("ok");
      expect((await getJson(`${server.url}/api/v1/devices/aht20-b4d0ne/readings?limit=10`)).data).toHaveLength(2);
    } finally {
      root.cleanup();
    }
  }, 120_000);

  test("a first install that fails its health check says there is nothing to roll back to (exit 5)", async () => {
    const root = newRoot();
    try {
      mkdirSync(join(root.path, "etc/techtemp"), { recursive: true });
      writeFileSync(join(root.path, "etc/techtemp/server.conf"), "host = 127.0.0.1\n");
      const [http, mqtt] = freePorts(2) as [number, number];
      const broken = variant("6.6.6", "broken");
      const r = await root.install(
        ["server", "--bundle", broken, "--http-port", String(http), "--mqtt-port", String(mqtt), "--start", "--wait", "3"],
        { timeoutMs: 90_000 },
      );
      expect(r.output).toContain(
        "error: techtemp-server.service did not become healthy within 3 s (a first install: nothing to roll back to)",
      );
      expect(r.code).toBe(5);
    } finally {
      root.cleanup();
    }
  }, 120_000);
});
