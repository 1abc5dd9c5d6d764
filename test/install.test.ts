// install.sh, run for real into temp trees (`--root`) with stand-ins for
// systemctl, useradd… that record their calls (test/fixtures/install/bin).
// With `--start` the stand-in systemctl runs the installed executables, so
// health checks, upgrades, rollbacks and the sensor's first reading are real.

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  connectMqtt,
  endMqtt,
  freePort,
  legacyPayload,
  publishAcked,
  readingTopic,
  run,
  startServer,
  tempDir,
} from "./helpers.ts";
import {
  buildBundle,
  diffSnapshots,
  makeRoot,
  passwdEntry,
  REPO,
  snapshot,
  STUB_BIN,
  type TestRoot,
} from "./fixtures/install/harness.ts";

let bundle: Awaited<ReturnType<typeof buildBundle>>;
const roots: TestRoot[] = [];
const dirs: { cleanup(): void }[] = [];

beforeAll(async () => {
  bundle = await buildBundle("x64");
}, 120_000);

afterAll(() => {
  for (const r of roots) r.cleanup();
  for (const d of dirs) d.cleanup();
  bundle?.cleanup();
});

/** A fresh tree, cleaned up after the file (even when a test fails). */
function newRoot(): TestRoot {
  const root = makeRoot(bundle.dir);
  roots.push(root);
  return root;
}

/** A copy of the bundle whose server is another version: a wrapper around the real one, or a broken one. */
function variant(version: string, server: "wrapper" | "broken"): string {
  const dir = tempDir("techtemp-variant-");
  dirs.push(dir);
  const path = join(dir.path, `techtemp-${version}`);
  cpSync(bundle.dir, path, { recursive: true });
  const script =
    server === "wrapper"
      ? `#!/bin/sh\nexec "${bundle.dir}/techtemp-server" "$@"\n`
      : `#!/bin/sh\necho "this build is broken" >&2\nexit 1\n`;
  writeFileSync(join(path, "techtemp-server"), script, { mode: 0o755 });
  writeFileSync(
    join(path, "BUNDLE"),
    readFileSync(join(bundle.dir, "BUNDLE"), "utf8").replace(/^version=.*$/m, `version=${version}`),
  );
  return path;
}

const mode = (path: string) => (statSync(path).mode & 0o7777).toString(8);
const owner = (path: string) => `${statSync(path).uid}:${statSync(path).gid}`;

/** The server installed and started in `root` on two free ports, listening on 127.0.0.1 only. */
async function liveServer(root: TestRoot, extraConf = "") {
  const http = freePort();
  const mqtt = freePort();
  // Lines install.sh does not manage: they must survive every run.
  mkdirSync(join(root.path, "etc/techtemp"), { recursive: true });
  writeFileSync(join(root.path, "etc/techtemp/server.conf"), `host = 127.0.0.1\n${extraConf}`);
  const r = await root.install(["server", "--http-port", String(http), "--mqtt-port", String(mqtt), "--start", "--wait", "30"]);
  expect(r.output).toContain("techtemp-server.service is healthy");
  expect(r.code).toBe(0);
  return { http, mqtt, url: `http://127.0.0.1:${http}` };
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return res.json();
}

async function publishReadings(port: number, uid: string, count: number): Promise<void> {
  const client = await connectMqtt(port);
  try {
    for (let i = 0; i < count; i++)
      await publishAcked(client, readingTopic(uid), legacyPayload(20 + i, 40 + i, Date.now() - (count - i) * 60_000));
  } finally {
    await endMqtt(client);
  }
}

test("install.sh, the stand-ins and the test box pass shellcheck", async () => {
  const files = [
    "install.sh",
    "test/fixtures/box/box-init.sh",
    ...["systemctl", "useradd", "usermod", "groupadd", "userdel", "groupdel", "uname", "dpkg", "df"].map((f) =>
      join(STUB_BIN, f),
    ),
  ];
  const r = await run(["shellcheck", "--severity=style", ...files], { cwd: REPO });
  expect(r.stdout + r.stderr).toBe("");
  expect(r.code).toBe(0);
});

test("install.sh is all functions: nothing runs before the last line", () => {
  const lines = readFileSync(join(REPO, "install.sh"), "utf8").trimEnd().split("\n");
  expect(lines.at(-1)).toBe('main "$@"');
  // Outside functions only comments, blank lines, `set` and function definitions.
  let depth = 0;
  for (const line of lines.slice(0, -1)) {
    if (depth === 0 && !/^(#|$|set -|[a-z0-9_]+\(\) \{|\}$)/.test(line)) throw new Error(`top-level statement: ${line}`);
    if (/^[a-z0-9_]+\(\) \{/.test(line) && !/\}\s*$/.test(line)) depth++;
    else if (line === "}") depth--;
  }
});

describe("server role into a --root tree", () => {
  test("installs the executable, config, user, directories and the enabled unit, and starts nothing", async () => {
    const root = newRoot();
    const r = await root.install(["server", "--http-port", "3080", "--mqtt-port", "1884"]);
    expect(r.output).not.toMatch(/error|warning/);
    expect(r.code).toBe(0);
    const p = (rel: string) => join(root.path, rel);

    const user = passwdEntry(root.path, "passwd", "techtemp")!;
    expect(user).toBeDefined();
    expect(user[5]).toBe("/var/lib/techtemp");
    expect(user[6]).toBe("/usr/sbin/nologin");
    expect(Number(user[2])).toBeLessThan(1000); // a system user
    const group = passwdEntry(root.path, "group", "techtemp")!;
    const [uid, gid] = [user[2], group[2]];

    expect(Bun.spawnSync(["cmp", p("opt/techtemp/techtemp-server"), join(bundle.dir, "techtemp-server")]).exitCode).toBe(0);
    expect(`${mode(p("opt/techtemp/techtemp-server"))} ${owner(p("opt/techtemp/techtemp-server"))}`).toBe("755 0:0");
    expect(existsSync(p("opt/techtemp/techtemp-sensor"))).toBe(false);
    expect(existsSync(p("opt/techtemp/install.sh"))).toBe(true);
    expect(`${mode(p("etc/techtemp"))} ${owner(p("etc/techtemp"))}`).toBe(`750 0:${gid}`);
    // Readable by root and the service only.
    expect(`${mode(p("etc/techtemp/server.conf"))} ${owner(p("etc/techtemp/server.conf"))}`).toBe(`640 0:${gid}`);
    expect(readFileSync(p("etc/techtemp/server.conf"), "utf8")).toMatch(/^http_port = 3080$/m);
    expect(readFileSync(p("etc/techtemp/server.conf"), "utf8")).toMatch(/^mqtt_port = 1884$/m);
    expect(`${mode(p("var/lib/techtemp"))} ${owner(p("var/lib/techtemp"))}`).toBe(`750 ${uid}:${gid}`);

    const unit = "etc/systemd/system/techtemp-server.service";
    expect(readFileSync(p(unit), "utf8")).toBe(readFileSync(join(REPO, "systemd/techtemp-server.service"), "utf8"));
    expect(readlinkSync(p("etc/systemd/system/multi-user.target.wants/techtemp-server.service"))).toBe(
      "/etc/systemd/system/techtemp-server.service",
    );

    const calls = root.calls();
    expect(calls.some((c) => c.startsWith(`useradd --root ${root.path} --system --user-group`))).toBe(true);
    expect(calls).toContain(`systemctl --root=${root.path} enable techtemp-server.service`);
    expect(calls.some((c) => /systemctl (start|restart|daemon-reload)/.test(c))).toBe(false);
    expect(r.stdout).toContain("skipped (--root): systemctl restart techtemp-server.service");
    expect(r.stdout).toContain(`log: ${root.path}/var/log/techtemp-install.log`);
    expect(readFileSync(p("var/log/techtemp-install.log"), "utf8")).toContain("install /");
  });

  test("the installed unit passes systemd-analyze verify in the installed tree", async () => {
    const root = newRoot();
    expect((await root.install(["server"])).code).toBe(0);
    // verify resolves the unit's dependencies (sysinit.target…) inside the tree.
    cpSync("/usr/lib/systemd/system", join(root.path, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
    const r = await run(["systemd-analyze", "verify", "--man=no", `--root=${root.path}`, "techtemp-server.service"]);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  test("a second identical run changes no file, restarts nothing and says no change", async () => {
    const root = newRoot();
    expect((await root.install(["server", "--http-port", "3080"])).code).toBe(0);
    const log = "var/log/techtemp-install.log";
    const before = snapshot(root.path, { ignore: [log] });
    const callsBefore = root.calls().length;
    const r = await root.install(["server", "--http-port", "3080"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("no change: TechTemp");
    expect(diffSnapshots(before, snapshot(root.path, { ignore: [log] }))).toEqual([]);
    const calls = root.calls().slice(callsBefore);
    expect(calls.filter((c) => !c.includes(" is-enabled "))).toEqual([]);

    // /opt/techtemp is a bundle too: its install.sh re-applies the same install.
    const installed = await root.install(["server"], { script: join(root.path, "opt/techtemp/install.sh") });
    expect(installed.stdout).toContain("no change: TechTemp");
    expect(diffSnapshots(before, snapshot(root.path, { ignore: [log] }))).toEqual([]);
  });

  test("--dry-run lists every change and makes none", async () => {
    const root = newRoot();
    const before = snapshot(root.path);
    const r = await root.install(["server", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(diffSnapshots(before, snapshot(root.path))).toEqual([]);
    expect(r.stdout).toContain("would run: useradd");
    expect(r.stdout).toContain(`would install ${root.path}/opt/techtemp/techtemp-server (new, 755 root:root)`);
    expect(r.stdout).toContain(`would install ${root.path}/etc/techtemp/server.conf (new, 640 root:techtemp)`);
    expect(r.stdout).toContain(`would run: systemctl --root=${root.path} enable techtemp-server.service`);
    expect(r.stdout).toMatch(/dry run: \d+ change\(s\) listed above, none made/);
    expect(root.calls().filter((c) => !c.includes(" is-enabled "))).toEqual([]);
  });

  test("--watchdog sets up the hardware watchdog as the earlier deployment did", async () => {
    const root = newRoot();
    // The watchdog package, as apt-get would have installed it (apt-get does not run into a --root tree).
    mkdirSync(join(root.path, "usr/lib/systemd/system"), { recursive: true });
    writeFileSync(
      join(root.path, "usr/lib/systemd/system/watchdog.service"),
      "[Service]\nExecStart=/usr/sbin/watchdog\n[Install]\nWantedBy=multi-user.target\n",
    );
    const r = await root.install(["server", "--watchdog"]);
    expect(r.code).toBe(0);
    // Exactly `key = value` with single spaces: watchdog 5.16 ignores aligned lines. No ping on a server.
    expect(readFileSync(join(root.path, "etc/watchdog.conf"), "utf8")).toBe(
      '# Written by TechTemp install.sh --watchdog: exactly "key = value" (watchdog ignores aligned lines).\n' +
        "watchdog-device = /dev/watchdog\ninterval = 10\nrealtime = yes\npriority = 1\n",
    );
    expect(readFileSync(join(root.path, "boot/firmware/config.txt"), "utf8")).toEndWith("[all]\ndtparam=watchdog=on\n");
    expect(root.calls()).toContain(`systemctl --root=${root.path} enable watchdog.service`);
    expect(readlinkSync(join(root.path, "etc/systemd/system/multi-user.target.wants/watchdog.service"))).toBe(
      "/usr/lib/systemd/system/watchdog.service",
    );
    expect(r.stdout).toContain("skipped (--root): modprobe bcm2835_wdt");
    expect(r.stdout).toContain("skipped (--root): apt-get install -y watchdog");
    expect(r.stdout).toContain("skipped (--root): systemctl start watchdog");
    // Once set up, a second run leaves it alone.
    const again = await root.install(["server", "--watchdog"]);
    expect(again.stdout).toContain("no change: TechTemp");
  });
});

describe("sensor role", () => {
  test("installs into a --root tree: user in group i2c, device.conf in the earlier format, device placed in its room", async () => {
    const server = await startServer();
    try {
      const root = newRoot();
      const r = await root.install([
        "sensor",
        "--server",
        "127.0.0.1",
        "--mqtt-port",
        String(server.mqttPort),
        "--http-port",
        String(server.httpPort),
        "--room",
        "Salon d'été",
        "--interval",
        "120",
        "--home",
        "maison",
        "--device-uid",
        "aht20-c0ffee",
        "--simulated",
      ]);
      expect(r.output).not.toMatch(/error|warning/);
      expect(r.code).toBe(0);
      expect(passwdEntry(root.path, "group", "i2c")![3]!.split(",")).toEqual(["pi", "techtemp"]);
      const conf = readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8");
      for (const line of [
        "device_uid = aht20-c0ffee",
        "home_id = maison",
        "read_interval_seconds = 120",
        "driver = sim",
        "broker_host = 127.0.0.1",
        `broker_port = ${server.mqttPort}`,
      ]) {
        expect(conf.split("\n")).toContain(line);
      }
      expect(conf).toMatch(/^\[device\][^[]*device_uid = aht20-c0ffee/m);
      expect(mode(join(root.path, "etc/techtemp/device.conf"))).toBe("640");
      expect(readFileSync(join(root.path, "etc/systemd/system/techtemp-sensor.service"), "utf8")).toBe(
        readFileSync(join(REPO, "systemd/techtemp-sensor.service"), "utf8"),
      );
      expect(readlinkSync(join(root.path, "etc/systemd/system/multi-user.target.wants/techtemp-sensor.service"))).toBe(
        "/etc/systemd/system/techtemp-sensor.service",
      );
      const device = await server.api("/api/v1/devices/aht20-c0ffee");
      expect(device.body.data.room).toEqual({ uid: "salon-d-ete", name: "Salon d'été" });
      expect(r.stdout).toContain("device     aht20-c0ffee");
      expect(r.stdout).toContain("room       Salon d'été");

      // Run again with another room: the device moves, no file changes but install.conf's room.
      const again = await root.install(["sensor", "--room", "Cuisine"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("moved aht20-c0ffee to room 'Cuisine'");
      expect((await server.api("/api/v1/devices/aht20-c0ffee")).body.data.room.name).toBe("Cuisine");
      expect(readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8")).toBe(conf);
    } finally {
      await server.stop();
    }
  });

  test("a live install waits for the first reading stored by the server, and a second run changes nothing", async () => {
    const server = await startServer();
    const root = newRoot();
    try {
      // The test machine's clock may not report NTP sync: trust it (a key install.sh keeps).
      mkdirSync(join(root.path, "etc/techtemp"), { recursive: true });
      writeFileSync(join(root.path, "etc/techtemp/device.conf"), "[clock]\nsync_wait_seconds = 0\n");
      const args = [
        "sensor",
        "--server",
        "127.0.0.1",
        "--mqtt-port",
        String(server.mqttPort),
        "--http-port",
        String(server.httpPort),
        "--room",
        "Bureau",
        "--device-uid",
        "aht20-5e5e5e",
        "--simulated",
        "--start",
        "--wait",
        "60",
      ];
      const r = await root.install(args, { timeoutMs: 90_000 });
      expect(r.output).toContain("techtemp-sensor.service is healthy");
      expect(r.code).toBe(0);
      const latest = await server.api("/api/v1/readings/latest?deviceId=aht20-5e5e5e");
      expect(latest.body.data).toHaveLength(1);
      expect(latest.body.data[0].room_id).toBe("bureau");
      expect(readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8")).toStartWith("[clock]\nsync_wait_seconds = 0\n");

      const callsBefore = root.calls().length;
      const again = await root.install(args, { timeoutMs: 90_000 });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("no change: TechTemp");
      expect(
        root
          .calls()
          .slice(callsBefore)
          .filter((c) => /restart|start|stop|useradd|daemon-reload/.test(c)),
      ).toEqual([]);
    } finally {
      root.cleanup();
      await server.stop();
    }
  }, 120_000);
});

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

test("a sensor on a system without an i2c group gets one", async () => {
  const server = await startServer();
  try {
    const root = newRoot();
    const group = join(root.path, "etc/group");
    writeFileSync(group, readFileSync(group, "utf8").replace(/^i2c:.*\n/m, ""));
    const r = await root.install([
      "sensor",
      "--server",
      "127.0.0.1",
      "--mqtt-port",
      String(server.mqttPort),
      "--simulated",
      "--device-uid",
      "aht20-9e9e9e",
    ]);
    expect(r.code).toBe(0);
    expect(root.calls()).toContain(`groupadd --root ${root.path} --system i2c`);
    expect(passwdEntry(root.path, "group", "i2c")![3]).toBe("techtemp");
  } finally {
    await server.stop();
  }
});

describe("upgrades", () => {
  test("an upgrade backs the database up first and keeps every reading and the config", async () => {
    const root = newRoot();
    try {
      const server = await liveServer(root, "retention_raw_days = 3650\n");
      await publishReadings(server.mqtt, "aht20-0ld0ld", 3);
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

  test("a new version that fails its health check is rolled back, with the readings kept", async () => {
    const root = newRoot();
    try {
      const server = await liveServer(root);
      await publishReadings(server.mqtt, "aht20-b4d0ne", 2);
      const installed = readFileSync(join(root.path, "opt/techtemp/techtemp-server"));
      const broken = variant("6.6.6", "broken");
      const r = await root.install(["server", "--bundle", broken, "--start", "--wait", "5"], { timeoutMs: 90_000 });
      expect(r.code).toBe(1);
      expect(r.stdout).toContain("the new version failed its health check: rolling back to 0.1.0");
      expect(r.output).toContain(
        "the upgrade to 6.6.6 failed its health check; 0.1.0 is running again (config and data kept, backup ",
      );
      expect(r.output).toContain("fix: see why the new version failed: journalctl -u techtemp-server.service");
      expect(readFileSync(join(root.path, "opt/techtemp/techtemp-server")).equals(installed)).toBe(true);
      expect(readFileSync(join(root.path, "opt/techtemp/BUNDLE"), "utf8")).toContain("version=0.1.0");
      expect((await getJson(`${server.url}/health`)).status).toBe("ok");
      expect((await getJson(`${server.url}/api/v1/devices/aht20-b4d0ne/readings?limit=10`)).data).toHaveLength(2);
    } finally {
      root.cleanup();
    }
  }, 120_000);
});

describe("uninstall", () => {
  test("removes what install added and keeps config and data; --purge removes them and the user too", async () => {
    const root = newRoot();
    const pristine = snapshot(root.path, { contentOnly: true });
    const server = await startServer();
    try {
      expect((await root.install(["server"])).code).toBe(0);
      // No --device-uid: the agent derives it from this machine's MAC, as on a Pi.
      const sensorArgs = ["sensor", "--server", "127.0.0.1", "--mqtt-port", String(server.mqttPort), "--simulated"];
      expect((await root.install(sensorArgs)).code).toBe(0);
      expect(readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8")).toMatch(/^device_uid = aht20-[0-9a-f]{6}$/m);
      writeFileSync(join(root.path, "var/lib/techtemp/techtemp.db"), "readings");

      const r = await root.install(["uninstall"]);
      expect(r.code).toBe(0);
      const log = "var/log/techtemp-install.log";
      expect(diffSnapshots(pristine, snapshot(root.path, { ignore: [log], contentOnly: true }))).toEqual([
        "added etc/techtemp",
        "added etc/techtemp/device.conf",
        "added etc/techtemp/install.conf",
        "added etc/techtemp/server.conf",
        "added var/lib/techtemp",
        "added var/lib/techtemp/techtemp.db",
        "changed etc/group",
        "changed etc/passwd",
      ]);
      expect(root.calls()).toContain(`systemctl --root=${root.path} disable techtemp-server.service`);
      expect(root.calls()).toContain(`systemctl --root=${root.path} disable techtemp-sensor.service`);
      expect(r.stdout).toContain("uninstall --purge removes them");

      const purge = await root.install(["uninstall", "--purge"]);
      expect(purge.code).toBe(0);
      expect(diffSnapshots(pristine, snapshot(root.path, { ignore: [log], contentOnly: true }))).toEqual([]);
      expect(root.calls().some((c) => c.startsWith(`userdel --root ${root.path} techtemp`))).toBe(true);
      expect((await root.install(["uninstall"])).stdout).toContain("no change: TechTemp is not installed");
    } finally {
      await server.stop();
    }
  });
});

describe("every failing check says what to do, and installs nothing", () => {
  /** Runs a failing install and checks that the tree is untouched (but for the log). */
  async function failing(args: string[], env: Record<string, string> = {}, prepare?: (root: TestRoot) => void) {
    const root = newRoot();
    prepare?.(root);
    const before = snapshot(root.path);
    const r = await root.install(args, { env });
    expect(r.code).toBe(1);
    const changed = diffSnapshots(before, snapshot(root.path, { ignore: ["var/log/techtemp-install.log"] }));
    return { ...r, changed, root };
  }

  test("a 32-bit ARM Pi (armv7l) is refused with the reason", async () => {
    const r = await failing(["server"], { TECHTEMP_STUB_UNAME_M: "armv7l", TECHTEMP_STUB_DPKG_ARCH: "armhf" });
    expect(r.output).toContain("error: this is a 32-bit ARM machine (armv7l): Bun, and so TechTemp, runs on 64-bit ARM only");
    expect(r.output).toContain("fix: use a Pi 3, 4, 5 or Zero 2 W with Raspberry Pi OS (64-bit)");
    expect(r.changed).toEqual([]);
  });

  test("a 32-bit OS on a 64-bit kernel is refused", async () => {
    const r = await failing(["server"], { TECHTEMP_STUB_UNAME_M: "aarch64", TECHTEMP_STUB_DPKG_ARCH: "armhf" });
    expect(r.output).toContain("the operating system is 32-bit (armhf userland on a aarch64 kernel)");
    expect(r.output).toContain("fix: reinstall with Raspberry Pi OS (64-bit)");
  });

  test("a bundle for another architecture is refused", async () => {
    const r = await failing(["server"], { TECHTEMP_STUB_UNAME_M: "aarch64", TECHTEMP_STUB_DPKG_ARCH: "arm64" });
    expect(r.output).toContain("this bundle is for linux-x64 but this machine is linux-arm64");
    expect(r.output).toContain("fix: use techtemp-0.1.0-linux-arm64.tar.gz");
  });

  test("a port taken by another program is named, with how to free it", async () => {
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await failing(["server", "--http-port", String(listener.port)]);
      expect(r.output).toMatch(new RegExp(`check failed: port ${listener.port} \\(http\\) is already used by bun \\d+`));
      expect(r.output).toContain("fix: stop it, or choose another port with --http-port N");
      expect(r.output).toContain("1 check(s) failed: nothing was installed");
      expect(r.changed).toEqual([]);
    } finally {
      listener.stop(true);
    }
  });

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
      expect(r.code).toBe(1);
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
  });

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
  });

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
  });

  test("a full disk", async () => {
    const r = await failing(["server"], { TECHTEMP_STUB_DF_AVAIL_KB: "20480" });
    expect(r.output).toMatch(/check failed: not enough free disk space on \S+: 20 MB free, \d+ MB needed/);
    expect(r.output).toContain("fix: free some space");
    expect(r.changed).toEqual([]);
  });

  test("an operating system install.sh does not know", async () => {
    const r = await failing(["server"], {}, (root) =>
      writeFileSync(join(root.path, "etc/os-release"), 'ID=fedora\nVERSION_ID="40"\n'),
    );
    expect(r.output).toContain("check failed: unsupported operating system 'fedora'");
    expect(r.output).toContain("fix: use Raspberry Pi OS (64-bit) or Debian 12");
  });

  test("bad options are refused with an example", async () => {
    const root = newRoot();
    for (const [args, message] of [
      [["server", "--http-port", "80a"], "port 80a is not a port number"],
      [["sensor"], "the sensor needs the server's address"],
      [["sensor", "--server", "pi; rm -rf /"], "is not a host name or address"],
      [["sensor", "--server", "10.0.0.1", "--interval", "0"], "--interval 0 is not a number of seconds from 1 to 3600"],
      [["sensor", "--server", "10.0.0.1", "--device-uid", "bad uid"], "--device-uid bad uid is not a valid id"],
      [["frobnicate"], "unknown argument: frobnicate"],
    ] as [string[], string][]) {
      const r = await root.install(args);
      expect(r.output).toContain(message);
      expect(r.output).toContain("fix: ");
      expect(r.code).not.toBe(0);
    }
    expect(existsSync(join(root.path, "opt/techtemp"))).toBe(false);
  });
});

test("from a source checkout install.sh builds a bundle with the pinned Bun and installs it", async () => {
  const checkout = tempDir("techtemp-checkout-");
  const root = newRoot();
  try {
    // The tracked sources and the untracked new files, without dist/ or node_modules (linked).
    const files = Bun.spawnSync(["git", "ls-files", "--cached", "--others", "--exclude-standard"], { cwd: REPO })
      .stdout.toString()
      .split("\n")
      .filter(Boolean);
    for (const f of files) if (existsSync(join(REPO, f))) cpSync(join(REPO, f), join(checkout.path, f), { recursive: true });
    symlinkSync(join(REPO, "node_modules"), join(checkout.path, "node_modules"));
    const r = await root.install(["server", "--http-port", "3090"], {
      script: join(checkout.path, "install.sh"),
      timeoutMs: 120_000,
    });
    expect(r.stdout).toContain(`building TechTemp for linux-x64 from ${checkout.path}`);
    expect(r.code).toBe(0);
    const built = join(checkout.path, "dist/techtemp-0.1.0-linux-x64/techtemp-server");
    expect(Bun.spawnSync(["cmp", built, join(root.path, "opt/techtemp/techtemp-server")]).exitCode).toBe(0);
    expect(lstatSync(join(root.path, "opt/techtemp/techtemp-server")).isFile()).toBe(true);
  } finally {
    checkout.cleanup();
  }
}, 150_000);
