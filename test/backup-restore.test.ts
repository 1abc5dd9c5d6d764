// `techtemp-server backup` and `restore FILE` through the real command line,
// every bad input refused with a clear message and nothing changed; a really
// damaged database stops the server with one message naming the newest good
// backup and the restore command, and that command brings it back.

import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, openSync, readdirSync, statSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_DIR } from "../lib/server/backup/backups.ts";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  run,
  spawnServer,
  startServer,
  tempDir,
} from "./helpers.ts";

let cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const ROOT = join(import.meta.dir, "..");
const T0 = Date.UTC(2026, 0, 10, 12);

/** `bun server.ts ARGS` on the data dir, the environment of a real install otherwise ignored. */
const cli = (dataDir: string, args: string[], env: Record<string, string> = {}) =>
  run(["bun", "server.ts", ...args], {
    cwd: ROOT,
    env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: dataDir, TECHTEMP_HTTP_PORT: "0", TECHTEMP_MQTT_PORT: "0", ...env },
  });

const readings = (path: string): number => {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ n: number }, []>("SELECT count(*) AS n FROM readings").get()!.n;
  } finally {
    db.close();
  }
};

/** A data dir holding a database with `n` readings of one device (the server stopped again). */
async function dataWith(n: number, dir = tempDir()): Promise<string> {
  cleanup.push(() => dir.cleanup());
  const s = await startServer({ backup_time: "off" }, { dataDir: dir.path });
  const c = await connectMqtt(s.mqttPort);
  for (let i = 0; i < n; i++) await publishAcked(c, readingTopic("aht20-aaaaaa"), legacyPayload(20, 50, T0 + i * 60_000));
  await endMqtt(c);
  await s.stop({ keepData: true });
  return dir.path;
}

/** Overwrites the middle of a file with garbage: a disk that lost pages. */
function damage(path: string): void {
  const size = statSync(path).size;
  const fd = openSync(path, "r+");
  const junk = Buffer.alloc(Math.floor(size / 2), 0xa5);
  writeSync(fd, junk, 0, junk.length, Math.floor(size / 4));
  closeSync(fd);
}

describe("techtemp-server backup", () => {
  test("makes a checked backup beside a running server and prints its path", async () => {
    const dir = await dataWith(30);
    const s = await spawnServer(dir, { TECHTEMP_BACKUP_TIME: "off" });
    cleanup.push(async () => void (await s.stop()));
    const r = await cli(dir, ["backup"]);
    expect(r.stderr).toContain("backup made and checked");
    expect(r.code).toBe(0);
    const file = r.stdout.trim();
    expect(file.startsWith(join(dir, DEFAULT_DIR, "techtemp-"))).toBe(true);
    expect(readings(file)).toBe(30);
    // The server is unharmed and sees the record.
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  test("bad usage and a missing database are refused with what to do", async () => {
    const dir = tempDir();
    cleanup.push(() => dir.cleanup());
    const extra = await cli(dir.path, ["backup", "now"]);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('backup: unexpected argument "now"');
    const none = await cli(dir.path, ["backup"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("there is no database at");
    expect(existsSync(join(dir.path, "techtemp.db"))).toBe(false);
  });

  test("a second target that is not there fails the command (exit 1) after the local backup is made", async () => {
    const dir = await dataWith(3);
    const r = await cli(dir, ["backup"], { TECHTEMP_BACKUP_SECOND_DIR: "/nonexistent/usb" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("backup_second_dir /nonexistent/usb does not exist");
    expect(readdirSync(join(dir, DEFAULT_DIR))).toHaveLength(1);
  });
});

describe("techtemp-server restore FILE", () => {
  test("refuses, changing nothing: no file, a missing file, not a database, a damaged backup, not TechTemp's, a newer schema, a running server", async () => {
    const dir = await dataWith(10);
    const db = join(dir, "techtemp.db");
    const before = statSync(db).mtimeMs;
    const made = await cli(dir, ["backup"]);
    const good = made.stdout.trim();

    const cases: [string[], number, string][] = [
      [["restore"], 2, "restore: which backup? name its file"],
      [["restore", "a", "b"], 2, 'unexpected argument "b"'],
      [["restore", "--force", good], 2, 'unexpected argument "--force"'],
      [["restore", join(dir, "nope.db")], 1, "nope.db: no such file"],
      [["restore", dir], 1, "is not a file"],
      [["restore", db], 1, "is the database itself"],
    ];
    const text = join(dir, "notes.txt");
    writeFileSync(text, "this is not a database, but long enough to have a header of sorts ".repeat(10));
    cases.push([["restore", text], 1, "is not a SQLite database"]);
    const damaged = join(dir, "damaged.db");
    copyFileSync(good, damaged);
    damage(damaged);
    cases.push([["restore", damaged], 1, "fails the integrity check"]);
    const other = join(dir, "other.db");
    new Database(other, { create: true }).exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    cases.push([["restore", other], 1, "is not a TechTemp database"]);
    const newer = join(dir, "newer.db");
    copyFileSync(good, newer);
    const n = new Database(newer);
    n.exec("PRAGMA user_version = 99");
    n.close();
    cases.push([["restore", newer], 1, "comes from a newer TechTemp (database schema 99; this one knows up to"]);
    // Independent refusals of a read-only kind: run side by side (each is a process start).
    const results = await Promise.all(cases.map(([args]) => cli(dir, args)));
    cases.forEach(([args, code, message], i) => {
      const r = results[i]!;
      expect({ args, code: r.code, says: r.stderr.includes(message) }).toEqual({ args, code, says: true });
    });
    // A running server holds the database: refused.
    const s = await spawnServer(dir, { TECHTEMP_BACKUP_TIME: "off" });
    const busy = await cli(dir, ["restore", good]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain("is in use");
    expect(busy.stderr).toContain("stop the server first");
    await s.stop();
    // Nothing was changed by any of them.
    expect(readdirSync(dir).filter((f) => f.includes("before-restore"))).toEqual([]);
    expect(readings(db)).toBe(10);
    expect(statSync(db).mtimeMs).toBeGreaterThanOrEqual(before);
  }, 60_000); // a dozen process starts and a server: slow on a loaded machine

  test("puts the backup in place, keeps the current database aside with its readings, and the server starts on it", async () => {
    const dir = await dataWith(10);
    const good = (await cli(dir, ["backup"])).stdout.trim();
    // More readings after the backup: they stay in the database kept aside.
    const s = await startServer({ backup_time: "off" }, { dataDir: dir });
    const c = await connectMqtt(s.mqttPort);
    for (let i = 0; i < 5; i++) await publishAcked(c, readingTopic("aht20-bbbbbb"), legacyPayload(19, 45, T0 + i * 60_000));
    await endMqtt(c);
    await s.stop({ keepData: true });

    const r = await cli(dir, ["restore", good]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("the previous database is kept as");
    const aside = readdirSync(dir).find((f) => /^techtemp\.db\.before-restore-\d{8}T\d{6}Z$/.test(f))!;
    expect(readings(join(dir, aside))).toBe(15);
    expect(readings(join(dir, "techtemp.db"))).toBe(10);
    const back = await startServer({ backup_time: "off" }, { dataDir: dir });
    cleanup.push(() => back.stop({ keepData: true }));
    expect((await back.api("/api/v1/devices")).body.data.map((d: { uid: string }) => d.uid)).toEqual(["aht20-aaaaaa"]);
  });
});

describe("a damaged database at start", () => {
  test("stops the server with one message naming the newest good backup and the restore command; the restore brings it back", async () => {
    const dir = await dataWith(400);
    const first = (await cli(dir, ["backup"])).stdout.trim();
    expect(first).not.toBe("");
    const db = join(dir, "techtemp.db");
    damage(db);
    const failed = await cli(dir, []);
    expect(failed.code).toBe(1);
    const message = failed.stderr.trim().split("\n");
    expect(message).toHaveLength(1);
    expect(message[0]).toStartWith(`cannot start: the database ${db} is damaged (quick_check: `);
    expect(message[0]).toContain(`The newest good backup is ${first}`);
    expect(message[0]).toContain(`Restore it with the server stopped: bun server.ts restore ${first}`);
    // The damaged file is left as it was for the restore to keep aside.
    expect(existsSync(db)).toBe(true);

    const restored = await cli(dir, ["restore", first]);
    expect(restored.code).toBe(0);
    const s = await spawnServer(dir, { TECHTEMP_BACKUP_TIME: "off" });
    cleanup.push(async () => void (await s.stop()));
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    // The damaged database is kept aside, byte for byte.
    expect(readdirSync(dir).some((f) => /^techtemp\.db\.before-restore-\d{8}T\d{6}Z$/.test(f))).toBe(true);
  });

  test("without any good backup, the message says so and how to start afresh, keeping the file", async () => {
    const dir = await dataWith(400);
    damage(join(dir, "techtemp.db"));
    const failed = await cli(dir, []);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("No good backup was found in");
    expect(failed.stderr).toContain(".damaged");
  });
});
