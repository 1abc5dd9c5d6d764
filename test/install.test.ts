// install.sh, run for real into temp trees (`--root`) with stand-ins for
// systemctl, useradd… that record their calls (test/fixtures/install/bin):
// the script itself, the server role, uninstall, and a source checkout.
// The other install files: install-sensor (the sensor role), install-checks
// (every failing check), install-upgrade (status, upgrades and rollbacks with
// `--start`, where the stand-in systemctl runs the installed executables).
// They are separate files so that `bun test --parallel` runs them side by side.

import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { freePorts, run, startServer, tempDir } from "./helpers.ts";
import { diffSnapshots, freePortArgs, passwdEntry, REPO, snapshot, STUB_BIN } from "./fixtures/install/harness.ts";
import { installWorld, mode, owner } from "./fixtures/install/world.ts";

const { bundle, newRoot } = installWorld();

test("install.sh, the stand-ins and the test box pass shellcheck", async () => {
  const files = [
    "install.sh",
    "test/fixtures/box/box-init.sh",
    ...["systemctl", "useradd", "usermod", "groupadd", "userdel", "groupdel", "uname", "dpkg", "df", "getent"].map((f) =>
      join(STUB_BIN, f),
    ),
  ];
  const r = await run(["shellcheck", "--severity=style", ...files], { cwd: REPO });
  expect(r.stdout + r.stderr).toBe("");
  expect(r.code).toBe(0);
}, 120_000);

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
    const [http, mqtt] = freePorts(2);
    const r = await root.install(["server", "--http-port", String(http), "--mqtt-port", String(mqtt)]);
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

    expect(Bun.spawnSync(["cmp", p("opt/techtemp/techtemp-server"), join(bundle().dir, "techtemp-server")]).exitCode).toBe(0);
    expect(`${mode(p("opt/techtemp/techtemp-server"))} ${owner(p("opt/techtemp/techtemp-server"))}`).toBe("755 0:0");
    expect(existsSync(p("opt/techtemp/techtemp-sensor"))).toBe(false);
    expect(existsSync(p("opt/techtemp/install.sh"))).toBe(true);
    expect(`${mode(p("etc/techtemp"))} ${owner(p("etc/techtemp"))}`).toBe(`750 0:${gid}`);
    // Readable by root and the service only.
    expect(`${mode(p("etc/techtemp/server.conf"))} ${owner(p("etc/techtemp/server.conf"))}`).toBe(`640 0:${gid}`);
    expect(readFileSync(p("etc/techtemp/server.conf"), "utf8")).toMatch(new RegExp(`^http_port = ${http}$`, "m"));
    expect(readFileSync(p("etc/techtemp/server.conf"), "utf8")).toMatch(new RegExp(`^mqtt_port = ${mqtt}$`, "m"));
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
  }, 120_000);

  test("the installed unit passes systemd-analyze verify in the installed tree", async () => {
    const root = newRoot();
    expect((await root.install(["server", ...freePortArgs()])).code).toBe(0);
    // verify resolves the unit's dependencies (sysinit.target…) inside the tree.
    cpSync("/usr/lib/systemd/system", join(root.path, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
    const r = await run(["systemd-analyze", "verify", "--man=no", `--root=${root.path}`, "techtemp-server.service"]);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, 120_000);

  test("a second identical run changes no file, restarts nothing and says no change", async () => {
    const root = newRoot();
    const ports = freePortArgs();
    expect((await root.install(["server", ...ports])).code).toBe(0);
    const log = "var/log/techtemp-install.log";
    const before = snapshot(root.path, { ignore: [log] });
    const callsBefore = root.calls().length;
    const r = await root.install(["server", ...ports]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("no change: TechTemp");
    expect(diffSnapshots(before, snapshot(root.path, { ignore: [log] }))).toEqual([]);
    const calls = root.calls().slice(callsBefore);
    expect(calls.filter((c) => !c.includes(" is-enabled "))).toEqual([]);

    // /opt/techtemp is a bundle too: its install.sh re-applies the same install.
    const installed = await root.install(["server"], { script: join(root.path, "opt/techtemp/install.sh") });
    expect(installed.stdout).toContain("no change: TechTemp");
    expect(diffSnapshots(before, snapshot(root.path, { ignore: [log] }))).toEqual([]);
  }, 120_000);

  test("--dry-run lists every change and makes none", async () => {
    const root = newRoot();
    const before = snapshot(root.path);
    const r = await root.install(["server", ...freePortArgs(), "--dry-run"]);
    expect(r.code).toBe(0);
    expect(diffSnapshots(before, snapshot(root.path))).toEqual([]);
    expect(r.stdout).toContain("would run: useradd");
    expect(r.stdout).toContain(`would install ${root.path}/opt/techtemp/techtemp-server (new, 755 root:root)`);
    expect(r.stdout).toContain(`would install ${root.path}/etc/techtemp/server.conf (new, 640 root:techtemp)`);
    expect(r.stdout).toContain(`would run: systemctl --root=${root.path} enable techtemp-server.service`);
    expect(r.stdout).toMatch(/dry run: \d+ change\(s\) listed above, none made/);
    expect(root.calls().filter((c) => !c.includes(" is-enabled "))).toEqual([]);
  }, 120_000);

  test("--watchdog sets up the hardware watchdog as the earlier deployment did", async () => {
    const root = newRoot();
    // The watchdog package, as apt-get would have installed it (apt-get does not run into a --root tree).
    mkdirSync(join(root.path, "usr/lib/systemd/system"), { recursive: true });
    writeFileSync(
      join(root.path, "usr/lib/systemd/system/watchdog.service"),
      "[Service]\nExecStart=/usr/sbin/watchdog\n[Install]\nWantedBy=multi-user.target\n",
    );
    const ports = freePortArgs();
    const r = await root.install(["server", ...ports, "--watchdog"]);
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
    // Never apt-get: the Pis need no internet.
    expect(root.calls().filter((c) => c.startsWith("apt-get"))).toEqual([]);
    expect(existsSync(join(root.path, "etc/systemd/system.conf.d/techtemp-watchdog.conf"))).toBe(false);
    expect(r.stdout).toContain("skipped (--root): systemctl start watchdog");
    // Once set up, a second run leaves it alone.
    const again = await root.install(["server", ...ports, "--watchdog"]);
    expect(again.stdout).toContain("no change: TechTemp");
  }, 120_000);

  test("--watchdog without the watchdog package: systemd feeds the hardware watchdog, nothing is downloaded", async () => {
    const root = newRoot();
    const ports = freePortArgs();
    const r = await root.install(["server", ...ports, "--watchdog"]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(root.path, "etc/systemd/system.conf.d/techtemp-watchdog.conf"), "utf8")).toBe(
      "# Written by TechTemp install.sh --watchdog: systemd feeds the hardware watchdog.\n" +
        "[Manager]\nRuntimeWatchdogSec=15s\nRebootWatchdogSec=2min\n",
    );
    expect(readFileSync(join(root.path, "boot/firmware/config.txt"), "utf8")).toEndWith("[all]\ndtparam=watchdog=on\n");
    expect(existsSync(join(root.path, "etc/watchdog.conf"))).toBe(false);
    expect(root.calls().filter((c) => c.startsWith("apt-get"))).toEqual([]);
    expect(r.stdout).toContain("skipped (--root): systemctl daemon-reexec");
    const again = await root.install(["server", ...ports, "--watchdog"]);
    expect(again.stdout).toContain("no change: TechTemp");
  }, 120_000);
});

describe("server --tls", () => {
  test("makes the local CA and certificate with the server's own command, owned by the service; a second run changes nothing", async () => {
    const root = newRoot();
    const [http, mqtt, https, mqtts] = freePorts(4);
    const args = [
      "server",
      "--http-port",
      String(http),
      "--mqtt-port",
      String(mqtt),
      "--tls",
      "--https-port",
      String(https),
      "--mqtts-port",
      String(mqtts),
    ];
    const r = await root.install(args);
    expect(r.output).not.toMatch(/error|warning/);
    expect(r.code).toBe(0);
    const p = (rel: string) => join(root.path, rel);
    const uid = passwdEntry(root.path, "passwd", "techtemp")![2];
    const gid = passwdEntry(root.path, "group", "techtemp")![2];
    expect(`${mode(p("var/lib/techtemp/tls"))} ${owner(p("var/lib/techtemp/tls"))}`).toBe(`700 ${uid}:${gid}`);
    for (const [f, m] of [
      ["ca.key", "600"],
      ["ca.crt", "644"],
      ["server.key", "600"],
      ["server.crt", "644"],
    ]) {
      expect(`${f} ${mode(p(`var/lib/techtemp/tls/${f}`))} ${owner(p(`var/lib/techtemp/tls/${f}`))}`).toBe(
        `${f} ${m} ${uid}:${gid}`,
      );
    }
    const conf = readFileSync(p("etc/techtemp/server.conf"), "utf8");
    for (const line of [`https_port = ${https}`, `mqtts_port = ${mqtts}`, "data_dir = /var/lib/techtemp"])
      expect(conf.split("\n")).toContain(line);
    const fingerprint = new X509Certificate(readFileSync(p("var/lib/techtemp/tls/ca.crt"))).fingerprint256;
    expect(r.stdout).toContain(`local CA   /var/lib/techtemp/tls/ca.crt   SHA-256 ${fingerprint}`);
    expect(r.stdout).toMatch(
      new RegExp(
        `sensors: +sudo ./install.sh sensor --server \\S+ --enroll TOKEN --room NAME --tls --ca-fingerprint ${fingerprint}`,
      ),
    );

    const log = "var/log/techtemp-install.log";
    const before = snapshot(root.path, { ignore: [log] });
    const again = await root.install(args);
    expect(again.stdout).toContain("no change: TechTemp");
    expect(diffSnapshots(before, snapshot(root.path, { ignore: [log] }))).toEqual([]);
  }, 120_000);

  test("the HTTPS and MQTT over TLS ports are checked like the others", async () => {
    const root = newRoot();
    const listener = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
    try {
      const r = await root.install(["server", ...freePortArgs(), "--tls", "--mqtts-port", String(listener.port)]);
      expect(r.code).toBe(3);
      expect(r.output).toContain(`check failed: port ${listener.port} (mqtts) is already used`);
      expect(r.output).toContain("choose another port with --mqtts-port N");
    } finally {
      listener.stop(true);
    }
  }, 120_000);
});

describe("uninstall", () => {
  test("removes what install added and keeps config and data; --purge removes them and the user too", async () => {
    const root = newRoot();
    const pristine = snapshot(root.path, { contentOnly: true });
    const server = await startServer();
    try {
      expect((await root.install(["server", ...freePortArgs()])).code).toBe(0);
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
  }, 120_000);

  test("--purge keeps the database backups unless confirmed: asked on a terminal; without one and without --delete-backups, exit 2 and nothing removed", async () => {
    const root = newRoot();
    expect((await root.install(["server", ...freePortArgs()])).code).toBe(0);
    const serverBackups = join(root.path, "var/lib/techtemp/db-backups");
    const installBackups = join(root.path, "var/lib/techtemp/backups");
    mkdirSync(serverBackups, { recursive: true });
    mkdirSync(installBackups, { recursive: true });
    writeFileSync(join(serverBackups, "techtemp-20261128T023000Z.db"), "a backup");
    writeFileSync(join(installBackups, "techtemp-0.1.0-20261127T010000Z.db"), "another");
    const before = snapshot(root.path, { ignore: ["var/log/techtemp-install.log"], contentOnly: true });

    // The test's stdin is not a terminal, as in CI or `ssh host sudo …` without -t.
    const refused = await root.install(["uninstall", "--purge"]);
    expect(refused.code).toBe(2);
    expect(refused.output).toContain("uninstall --purge would delete 2 database backup(s) in /var/lib/techtemp");
    expect(refused.output).toContain("the newest /var/lib/techtemp/");
    expect(refused.output).toContain("copy them elsewhere first");
    expect(refused.output).toContain("add --delete-backups to confirm");
    expect(diffSnapshots(before, snapshot(root.path, { ignore: ["var/log/techtemp-install.log"], contentOnly: true }))).toEqual(
      [],
    );
    expect(root.calls().some((c) => c.includes("disable"))).toBe(false);

    const misplaced = await root.install(["uninstall", "--delete-backups"]);
    expect(misplaced.code).toBe(2);
    expect(misplaced.output).toContain("--delete-backups goes with uninstall --purge");

    // On a terminal (`script` gives install.sh one): the backups listed and a question; anything but y keeps them.
    const onTty = join(root.path, "..", "on-tty.sh");
    writeFileSync(onTty, `#!/bin/bash\nexec script -qec "$(printf '%q ' "$@")" /dev/null\n`, { mode: 0o755 });
    const declined = await root.install(["uninstall", "--purge"], { prefix: [onTty], stdin: "n\n" });
    expect(declined.code).toBe(2);
    expect(declined.output).toContain("uninstall --purge deletes 2 database backup(s) in /var/lib/techtemp");
    expect(declined.output).toContain("  /var/lib/techtemp/db-backups/techtemp-20261128T023000Z.db");
    expect(declined.output).toContain("  /var/lib/techtemp/backups/techtemp-0.1.0-20261127T010000Z.db");
    expect(declined.output).toContain("delete them? [y/N]");
    expect(declined.output).toContain("error: uninstall --purge not confirmed: nothing was removed");
    expect(diffSnapshots(before, snapshot(root.path, { ignore: ["var/log/techtemp-install.log"], contentOnly: true }))).toEqual(
      [],
    );
    const yes = await root.install(["uninstall", "--purge"], { prefix: [onTty], stdin: "y\n" });
    expect(yes.code).toBe(0);
    expect(existsSync(join(root.path, "var/lib/techtemp"))).toBe(false);
    // Installed again to try --delete-backups.
    expect((await root.install(["server", ...freePortArgs()])).code).toBe(0);
    mkdirSync(serverBackups, { recursive: true });
    writeFileSync(join(serverBackups, "techtemp-20261128T023000Z.db"), "a backup");
    writeFileSync(join(serverBackups, "techtemp-20261129T023000Z.db"), "a newer one");

    const confirmed = await root.install(["uninstall", "--purge", "--delete-backups"]);
    expect(confirmed.code).toBe(0);
    expect(confirmed.stdout).toContain("--purge --delete-backups: deleting 2 database backup(s)");
    expect(existsSync(join(root.path, "var/lib/techtemp"))).toBe(false);
    expect(existsSync(join(root.path, "etc/techtemp"))).toBe(false);
  }, 120_000);
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
    const r = await root.install(["server", ...freePortArgs()], {
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
