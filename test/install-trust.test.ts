// An installer whose result can be trusted: every failure stops the run with
// its own exit code, including the failures bash hides (`set -e` is off inside a
// function called as a condition), on real read-only mounts and a chown that
// fails; shellcheck with every optional check; the install log rotated.

import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, linkSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, tempDir } from "./helpers.ts";
import { cleanEnv, freePortArgs, REPO } from "./fixtures/install/harness.ts";
import { installWorld } from "./fixtures/install/world.ts";

const { bundle, newRoot } = installWorld();

/** The functions install.sh's header lists as safe to call as a condition. */
function conditionSafe(script: string): Set<string> {
  const names = new Set<string>();
  let inList = false;
  for (const line of script.split("\n")) {
    if (line.startsWith("# condition-safe")) {
      inList = true;
      continue;
    }
    if (!inList) continue;
    if (!line.startsWith("#   ")) {
      inList = false;
      continue;
    }
    // "#   name name (why)" or "#   name (why)": the names before the parenthesis.
    for (const word of line.slice(4).split("(")[0]!.split(/\s+/)) if (/^[a-z_]+$/.test(word)) names.add(word);
  }
  return names;
}

describe("shellcheck -o all", () => {
  test("install.sh passes every optional check but the ones its header justifies", async () => {
    const r = await run(["shellcheck", "-o", "all", "install.sh"], { cwd: REPO });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, 120_000);

  test("every function called as a condition (SC2310/SC2311) is one the header lists, and no function that writes files is", async () => {
    const script = readFileSync(join(REPO, "install.sh"), "utf8");
    const safe = conditionSafe(script);
    expect(safe.size).toBeGreaterThan(10);
    for (const writer of ["put_file", "put_output", "ensure_dir", "remove_path", "install_files", "backup_db"])
      expect(safe.has(writer)).toBe(false);
    // The same script without its file-wide exclusion of the two checks.
    const dir = tempDir("techtemp-sc-");
    try {
      const copy = join(dir.path, "install.sh");
      writeFileSync(copy, script.replace(/^(# shellcheck disable=.*),SC2310,SC2311$/m, "$1"));
      const r = await run(["shellcheck", "-o", "all", "-f", "json1", "-i", "SC2310,SC2311", copy], { timeoutMs: 120_000 });
      const { comments } = JSON.parse(r.stdout) as { comments: { line: number; column: number; code: number }[] };
      expect(comments.length).toBeGreaterThan(0);
      const lines = script.split("\n");
      const called = new Set(comments.map((c) => /^[a-z_]+/.exec(lines[c.line - 1]!.slice(c.column - 1))?.[0] ?? "?"));
      expect([...called].filter((f) => !safe.has(f))).toEqual([]);
    } finally {
      dir.cleanup();
    }
  }, 120_000);
});

describe("exit codes", () => {
  test("--version names the bundle's version, from a bundle and from the source checkout", async () => {
    const fromBundle = await run(["bash", join(bundle().dir, "install.sh"), "--version"]);
    expect(fromBundle.stdout).toBe("install.sh (TechTemp) 0.1.0\n");
    expect(fromBundle.code).toBe(0);
    const fromSource = await run(["bash", join(REPO, "install.sh"), "--version"]);
    expect(fromSource.stdout).toBe("install.sh (TechTemp) 0.1.0\n");
    const help = await run(["bash", join(REPO, "install.sh"), "--help"]);
    expect(help.stdout).toContain("exit codes:");
    expect(help.stdout).toContain("6  a change could not be made");
  });

  test("the executables name themselves in --help and --version (not `bun server.ts`)", async () => {
    const env = cleanEnv();
    const server = await run([join(bundle().dir, "techtemp-server"), "--version"], { env });
    expect(server.stdout).toBe("techtemp-server (TechTemp) 0.1.0\n");
    const sensor = await run([join(bundle().dir, "techtemp-sensor"), "--version"], { env });
    expect(sensor.stdout).toBe("techtemp-sensor (TechTemp) 0.1.0\n");
    const serverHelp = await run([join(bundle().dir, "techtemp-server"), "--help"], { env });
    expect(serverHelp.stdout).toContain("  techtemp-server enroll-token [--ttl MINUTES] [--uses N]");
    expect(serverHelp.stdout).not.toContain("bun server.ts");
    const sensorHelp = await run([join(bundle().dir, "techtemp-sensor"), "--help"], { env });
    expect(sensorHelp.stdout).toContain("  techtemp-sensor check [device.conf]");
    expect(sensorHelp.stdout).not.toContain("bun sensor.ts");
  });

  test("a read-only /etc/techtemp: the port change fails the run (exit 6) and the config keeps the port it had", async () => {
    const root = newRoot();
    const first = await root.install(["server", ...freePortArgs()]);
    expect(first.code).toBe(0);
    const conf = join(root.path, "etc/techtemp/server.conf");
    const before = readFileSync(conf, "utf8");
    // A real read-only mount of the config directory, in a mount namespace of this run only.
    const etc = join(root.path, "etc/techtemp");
    const r = await root.install(["server", ...freePortArgs()], {
      prefix: ["unshare", "--mount", "--propagation", "private", "bash", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', etc],
    });
    expect(r.output).toContain("Read-only file system");
    expect(r.output).toContain("error: a change could not be made: ");
    expect(r.output).toContain("fix: see the message above (a read-only or full file system?");
    expect(r.output).not.toContain("TechTemp server 0.1.0");
    expect(r.code).toBe(6);
    expect(readFileSync(conf, "utf8")).toBe(before);
  }, 120_000);

  test("a chown that fails on the config file (it was inside `if put_output`) fails the run (exit 6)", async () => {
    const root = newRoot();
    const stubs = tempDir("techtemp-chown-");
    try {
      // Refuses exactly the config file, as a file system without owners would; every other chown is the real one.
      writeFileSync(
        join(stubs.path, "chown"),
        `#!/bin/sh\nfor a in "$@"; do case $a in */etc/techtemp/server.conf*) echo "chown: changing ownership of '$a': Operation not permitted" >&2; exit 1 ;; esac; done\nexec /bin/chown "$@"\n`,
        { mode: 0o755 },
      );
      const r = await root.install(["server", ...freePortArgs()], {
        env: { PATH: `${stubs.path}:${join(REPO, "test/fixtures/install/bin")}:${process.env.PATH}` },
      });
      expect(r.output).toContain("Operation not permitted");
      expect(r.output).toContain("error: a change could not be made: chown");
      expect(r.output).not.toContain("TechTemp server 0.1.0");
      expect(r.code).toBe(6);
      expect(existsSync(join(root.path, "etc/techtemp/server.conf"))).toBe(false);
    } finally {
      stubs.cleanup();
    }
  }, 120_000);
});

test("a bundle whose files do not match its SHA256SUMS is refused before anything changes (exit 8)", async () => {
  const root = newRoot();
  const dir = tempDir("techtemp-tampered-");
  try {
    const copy = join(dir.path, "techtemp-0.1.0-linux-x64");
    cpSync(bundle().dir, copy, { recursive: true, filter: (src) => !/\/techtemp-(server|sensor)$/.test(src) });
    for (const exe of ["techtemp-server", "techtemp-sensor"]) linkSync(join(bundle().dir, exe), join(copy, exe));
    const unit = join(copy, "systemd/techtemp-server.service");
    writeFileSync(unit, readFileSync(unit, "utf8").replace("NoNewPrivileges=yes", "NoNewPrivileges=no"));
    const r = await root.install(["server", ...freePortArgs(), "--bundle", copy]);
    expect(r.output).toContain("error: the bundle's systemd/techtemp-server.service does not match its SHA256SUMS");
    expect(r.output).toContain("nothing was changed");
    expect(r.code).toBe(8);
    expect(existsSync(join(root.path, "opt/techtemp"))).toBe(false);
    expect(existsSync(join(root.path, "etc/techtemp"))).toBe(false);
  } finally {
    dir.cleanup();
  }
}, 120_000);

test("the install log is rotated above 1 MB: three old logs are kept", async () => {
  const root = newRoot();
  const log = join(root.path, "var/log/techtemp-install.log");
  const big = "an old line of the install log\n".repeat(40_000); // 1.2 MB
  writeFileSync(log, big);
  writeFileSync(`${log}.1`, "one\n");
  writeFileSync(`${log}.2`, "two\n");
  writeFileSync(`${log}.3`, "three\n");
  const r = await root.install(["server", ...freePortArgs()]);
  expect(r.code).toBe(0);
  expect(readFileSync(`${log}.1`, "utf8")).toBe(big);
  expect(readFileSync(`${log}.2`, "utf8")).toBe("one\n");
  expect(readFileSync(`${log}.3`, "utf8")).toBe("two\n");
  expect(existsSync(`${log}.4`)).toBe(false);
  const now = readFileSync(log, "utf8");
  expect(now).toStartWith("---- ");
  expect(now.length).toBeLessThan(100_000);
}, 120_000);
