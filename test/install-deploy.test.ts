// install.sh deploy from a "laptop" to "Pis" over a real sshd on 127.0.0.1
// (test/fixtures/install/sshd.ts, a test key, BatchMode): each host of the
// inventory is a --root tree of the fixtures, the bundles are the per-role
// tarballs of the x64 build with their SHA256SUMS.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, freePorts, run, startServer, tempDir, type TestServer } from "./helpers.ts";
import { cachedBundle, type CachedBundle } from "./fixtures/install/bundles.ts";
import { makeRoot, REPO, type TestRoot } from "./fixtures/install/harness.ts";
import { startSshd, type TestSshd } from "./fixtures/install/sshd.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { openStore } from "../lib/server/store/store.ts";

let bundle: CachedBundle;
let sshd: TestSshd;
let server: TestServer;
const roots: TestRoot[] = [];
const dirs: { cleanup(): void }[] = [];

beforeAll(async () => {
  bundle = await cachedBundle("x64", { tar: true });
  sshd = await startSshd();
  server = await startServer();
}, 300_000);
afterAll(async () => {
  await server?.stop();
  await sshd?.stop();
  for (const r of roots) r.cleanup();
  for (const d of dirs) d.cleanup();
});

function newRoot(): TestRoot {
  const root = makeRoot(bundle.dir);
  roots.push(root);
  return root;
}

/** `install.sh deploy|status ARGS` from the laptop: the source checkout's install.sh, the cached dist/. */
async function laptop(args: string[]) {
  const r = await run(
    ["bash", join(REPO, "install.sh"), ...args, "--dist", join(bundle.sums!, ".."), "--ssh-config", sshd.sshConfig],
    { timeoutMs: 240_000 },
  );
  return { ...r, output: r.stdout + r.stderr };
}

/** A temp file holding `text`. */
function file(text: string): string {
  const dir = tempDir("techtemp-inventory-");
  dirs.push(dir);
  const path = join(dir.path, "hosts.txt");
  writeFileSync(path, text);
  return path;
}

test("deploy 1 server and 2 sensors from an inventory, one host down: the others are installed, the table and the down host's error say so", async () => {
  const [srv, salon, chambre] = [newRoot(), newRoot(), newRoot()];
  const [http, mqtt] = freePorts(2) as [number, number];
  const down = freePort(); // nothing listens there
  const cache = (name: string) => {
    const d = tempDir(`techtemp-cache-${name}-`);
    dirs.push(d);
    return d.path;
  };
  const sensorArgs = `server=127.0.0.1 mqtt-port=${server.mqttPort} http-port=${server.httpPort} simulated`;
  const inventory = file(
    [
      "# the home",
      `server root@127.0.0.1 ssh-port=${sshd.port} root=${srv.path} cache=${cache("srv")} http-port=${http} mqtt-port=${mqtt}`,
      `sensor root@127.0.0.1 ssh-port=${sshd.port} root=${salon.path} cache=${cache("salon")} ${sensorArgs} device-uid=aht20-5a1010`,
      `sensor root@127.0.0.1 ssh-port=${sshd.port} root=${chambre.path} cache=${cache("chambre")} ${sensorArgs} device-uid=aht20-c4a4b4`,
      `sensor root@127.0.0.1 ssh-port=${down} ${sensorArgs} device-uid=aht20-d0d0d0`,
      "",
    ].join("\n"),
  );
  const r = await laptop(["deploy", "--inventory", inventory, "--jobs", "2"]);
  const table = r.stdout.split("\n");
  expect(table[0]).toMatch(/^HOST +ROLE +VERSION +RESULT +TIME +COPIED \(bytes\)$/);
  const size = (role: "server" | "sensor") => String(Bun.file(bundle.tarballs![role]).size);
  const rows = table.slice(1, 5);
  expect(rows[0]).toMatch(new RegExp(`^root@127\\.0\\.0\\.1 +server +none -> 0\\.1\\.0 +ok +\\d+ s +${size("server")}$`));
  expect(rows[1]).toMatch(new RegExp(`^root@127\\.0\\.0\\.1 +sensor +none -> 0\\.1\\.0 +ok +\\d+ s +${size("sensor")}$`));
  expect(rows[2]).toMatch(/ +ok +/);
  expect(rows[3]).toContain(`unreachable: ssh: connect to host 127.0.0.1 port ${down}: Connection refused`);
  expect(r.output).toContain("error: 1 of 4 host(s) failed (their logs above); the others are done");
  expect(r.code).toBe(9);
  // Each Pi got its own role only.
  expect(existsSync(join(srv.path, "opt/techtemp/techtemp-server"))).toBe(true);
  expect(existsSync(join(srv.path, "opt/techtemp/techtemp-sensor"))).toBe(false);
  expect(existsSync(join(salon.path, "opt/techtemp/techtemp-sensor"))).toBe(true);
  expect(existsSync(join(salon.path, "opt/techtemp/techtemp-server"))).toBe(false);
  expect(readFileSync(join(chambre.path, "etc/techtemp/device.conf"), "utf8")).toContain("device_uid = aht20-c4a4b4");
  expect(readFileSync(join(srv.path, "etc/techtemp/server.conf"), "utf8")).toContain(`http_port = ${http}`);

  // Again, the hosts that were done: nothing copied (the same tarball is there), nothing changed.
  const again = await laptop(["deploy", "--inventory", file(readFileSync(inventory, "utf8").split("\n").slice(0, 4).join("\n"))]);
  expect(again.code).toBe(0);
  const againRows = again.stdout.split("\n").slice(1, 4);
  for (const row of againRows) expect(row).toMatch(/ +0\.1\.0 -> 0\.1\.0 +ok \(no change\) +\d+ s +0$/);

  // status over the same inventory.
  const status = await laptop(["status", "--inventory", inventory]);
  expect(status.stdout).toContain(`==== root@127.0.0.1 (server): ok`);
  expect(status.stdout).toContain("TechTemp 0.1.0 (linux-x64) in /opt/techtemp");
  expect(status.stdout).toContain("device aht20-5a1010 -> mqtt://127.0.0.1:");
  expect(status.stdout).toContain(`(sensor): unreachable: ssh: connect to host 127.0.0.1 port ${down}: Connection refused`);
  expect(status.code).toBe(9);

  // inspect: the server's database (made here as a started server would), a sensor's status.
  openStore(join(srv.path, "var/lib/techtemp", DB_FILE)).close();
  const inspect = await laptop([
    "inspect",
    "--inventory",
    file(readFileSync(inventory, "utf8").split("\n").slice(0, 3).join("\n")),
  ]);
  expect(inspect.stdout).toContain("==== root@127.0.0.1 (server): ok");
  expect(inspect.stdout).toContain(`${srv.path}/var/lib/techtemp/techtemp.db`);
  expect(inspect.stdout).toContain("==== root@127.0.0.1 (sensor): ok");
  expect(inspect.code).toBe(0);
}, 400_000);

test("a bad inventory line is refused before any host is reached (exit 2)", async () => {
  for (const [line, message] of [
    ["router root@127.0.0.1", "the role must be server or sensor, not 'router'"],
    ["sensor root@127.0.0.1 room=$(reboot)", "is not key=value"],
    ["sensor 'pi@x;y'", "is not USER@HOST"],
  ]) {
    const r = await laptop(["deploy", "--inventory", file(`${line}\n`)]);
    expect(r.output).toContain(message);
    expect(r.code).toBe(2);
  }
}, 60_000);
