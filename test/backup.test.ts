// Backups of a running server: an online copy that ingestion keeps
// acknowledging through, checked, recorded, rotated, copied to a second
// target (a missing or unwritable one is a failure that shows); rotation and
// the schedule on the home's calendar.

import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import * as fs from "node:fs";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  backupName,
  backupTime,
  calendar,
  copyPaced,
  nextRun,
  removeGradually,
  REMOVE_STEP_BYTES,
  toKeep,
} from "../lib/server/backup/files.ts";
import { DEFAULT_DIR } from "../lib/server/backup/backups.ts";
import { copyDatabase, FLUSH_BYTES, pacedCopy } from "../lib/server/store/backup.ts";
import { openDatabase } from "../lib/server/store/db.ts";
import { loadConfig } from "../lib/server/config.ts";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  deferAfterEach,
  startServer,
  startServerWithoutBackups,
  tempDir,
  type TestServer,
} from "./helpers.ts";

const defer = deferAfterEach();
const server = (overrides: Parameters<typeof startServer>[0] = {}) => startServerWithoutBackups(defer, overrides);

const T0 = Date.UTC(2026, 0, 10, 12);

async function publish(s: TestServer, uid: string, n: number, from = T0): Promise<void> {
  const c = await connectMqtt(s.mqttPort);
  for (let i = 0; i < n; i++) await publishAcked(c, readingTopic(uid), legacyPayload(20 + (i % 10) / 10, 50, from + i * 60_000));
  await endMqtt(c);
}

const readingsIn = (path: string): number => {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ n: number }, []>("SELECT count(*) AS n FROM readings").get()!.n;
  } finally {
    db.close();
  }
};

describe("a backup of a running server", () => {
  test("is a checked copy with every reading, recorded with its size and duration, and readings keep being acknowledged meanwhile", async () => {
    const s = await server();
    // A copy a crash left half-made: removed by the next backup.
    mkdirSync(join(s.dataDir, DEFAULT_DIR), { recursive: true });
    writeFileSync(join(s.dataDir, DEFAULT_DIR, "techtemp-20260101T033000Z.db.partial"), Buffer.alloc(100_000));
    await publish(s, "aht20-000001", 200);
    const c = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(c));
    // Readings published while the backup runs are acknowledged (the copy runs on its own thread).
    const during = s.backups.run("manual");
    const acks: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) acks.push(publishAcked(c, readingTopic("aht20-000002"), legacyPayload(21, 40, T0 + i * 60_000)));
    await Promise.all(acks);
    const record = await during;
    expect(record.error).toBeNull();
    expect(record.integrity).toBe("ok");
    const dir = join(s.dataDir, DEFAULT_DIR);
    const file = join(dir, record.file!);
    expect(existsSync(file)).toBe(true);
    expect(record.size_bytes).toBeGreaterThan(0);
    expect(record.duration_ms).toBeGreaterThanOrEqual(0);
    // Everything acknowledged before the backup started is in it.
    expect(readingsIn(file)).toBeGreaterThanOrEqual(200);
    // No half-made file is left (the crash's either), and the copy is the owner's only.
    expect(readdirSync(dir).filter((n) => n.endsWith(".partial"))).toEqual([]);
    expect(s.store.backups.recent(5).map((r) => r.file)).toEqual([record.file]);
    expect(s.backups.status()).toMatchObject({
      last: { id: record.id },
      lastOk: { id: record.id },
      totals: { ok: 1, failed: 0 },
    });
  });

  test("a second run during a backup joins it; a later one the same day replaces it (the newest of each day is kept)", async () => {
    const s = await server();
    await publish(s, "aht20-000001", 5);
    const [a, b] = await Promise.all([s.backups.run("manual"), s.backups.run("manual")]);
    expect(a.id).toBe(b.id);
    const c = await s.backups.run("manual");
    // Possibly within the same second: its own name all the same.
    expect(c.file).not.toBe(a.file);
    expect(s.backups.files().primary.map((f) => f.name)).toEqual([c.file!]);
  });

  test("a second target gets an atomic copy; a missing one is a failure shown in the status, never skipped quietly", async () => {
    const usb = tempDir();
    defer(() => usb.cleanup());
    const target = join(usb.path, "techtemp");
    const s = await server({ backup_second_dir: target });
    await publish(s, "aht20-000001", 5);
    // The USB stick is not mounted: the directory is not there, and TechTemp does not create it.
    const missing = await s.backups.run("manual");
    expect(missing.error).toBeNull();
    expect(missing.second_target).toContain("does not exist");
    expect(existsSync(target)).toBe(false);
    expect(s.backups.status().second!.problem).toContain(`backup_second_dir ${target} does not exist`);
    expect(s.logs.some((l) => l.includes("ERROR") && l.includes("second target"))).toBe(true);
    // Mounted: the next backup lands there whole.
    mkdirSync(target);
    const ok = await s.backups.run("manual");
    expect(ok.second_target).toBe("ok");
    expect(readdirSync(target)).toEqual([ok.file!]);
    expect(readingsIn(join(target, ok.file!))).toBe(5);
    expect(s.backups.status().second).toMatchObject({ dir: target, problem: null });
    if (process.getuid?.() !== 0) {
      chmodSync(target, 0o500);
      const ro = await s.backups.run("manual");
      expect(ro.second_target).toContain("not writable");
      chmodSync(target, 0o700);
    }
  });

  test("a backup directory that cannot be made is a recorded failure with the reason", async () => {
    const s = await server();
    const blocker = join(s.dataDir, "not-a-dir");
    writeFileSync(blocker, "x");
    const t = await startServer({ backup_time: "off", backup_dir: join(blocker, "sub") }, { dataDir: s.dataDir });
    defer(() => t.stop({ keepData: true }));
    const r = await t.backups.run("manual");
    expect(r.error).toContain(`backup to ${join(blocker, "sub")} failed`);
    expect(r.file).toBeNull();
    expect(t.backups.status().totals).toEqual({ ok: 0, failed: 1 });
    // The owner sees it on every page until a backup works again.
    const home = await (await t.fetch("/")).text();
    expect(home).toContain('id="banner-backup"');
    expect(home).toContain(`The last backup failed: backup to ${join(blocker, "sub")} failed`);
  });
});

test("the copy runs on a thread at the lowest CPU and I/O priority, as the kernel reports for that thread", async () => {
  const dir = tempDir();
  defer(() => dir.cleanup());
  const source = join(dir.path, "source.db");
  const db = openDatabase(source);
  db.exec("CREATE TABLE filler (x)");
  db.exec(
    "INSERT INTO filler SELECT randomblob(100) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) SELECT i FROM n)",
  );
  const copied = await copyDatabase(source, join(dir.path, "copy.db"));
  db.close();
  expect(copied.integrity).toBe("ok");
  expect(copied.priority).toEqual({ nice: 19, ioClass: "idle" });
  const copy = new Database(join(dir.path, "copy.db"), { readonly: true });
  expect(copy.query("SELECT count(*) AS n FROM filler").get()).toEqual({ n: 1000 });
  copy.close();
  // The test's own thread (the event loop's) kept its priority.
  const stat = readFileSync("/proc/thread-self/stat", "utf8");
  expect(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])).toBe(0);
});

describe("the paced copy", () => {
  /** Every object's definition and every row of every table, in key order: two equal dumps are the same database. */
  function dump(db: Database): string {
    const out: unknown[] = [];
    for (const p of ["page_size", "auto_vacuum", "user_version", "application_id"]) out.push(db.query(`PRAGMA ${p}`).get());
    const objects = db.query("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name").all() as {
      type: string;
      name: string;
    }[];
    out.push(objects);
    for (const o of objects) {
      if (o.type !== "table") continue;
      const rowid = (db.query(`PRAGMA table_list("${o.name.replace(/"/g, '""')}")`).get() as { wr: number }).wr ? "" : "rowid, ";
      out.push(o.name, db.query(`SELECT ${rowid}* FROM "${o.name.replace(/"/g, '""')}" ORDER BY 1, 2`).values());
    }
    return JSON.stringify(out);
  }

  /** A database with what VACUUM INTO keeps and a plain insert would lose: settings, sequences, statistics, rowids. */
  function unusual(path: string): Database {
    const db = new Database(path);
    db.exec("PRAGMA page_size = 8192; PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL");
    db.exec("PRAGMA user_version = 42; PRAGMA application_id = 1414808916");
    db.exec(`CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT UNIQUE)`);
    db.exec(`CREATE TABLE "odd ""name""" (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID`);
    db.exec(`CREATE TABLE pair (a INTEGER NOT NULL, b INTEGER NOT NULL, v REAL, PRIMARY KEY (a, b)) WITHOUT ROWID`);
    db.exec(`CREATE TABLE no_key (x, y)`);
    // A rowid table's TEXT primary key may hold NULLs: more of them than one chunk of the copy.
    db.exec(`CREATE TABLE nullable (k TEXT PRIMARY KEY, v INTEGER)`);
    db.exec(
      `INSERT INTO nullable SELECT CASE WHEN i % 4 = 0 THEN 'k' || i END, i FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) SELECT i FROM n)`,
    );
    db.exec(`CREATE INDEX no_key_y ON no_key (y) WHERE y IS NOT NULL`);
    db.exec(`CREATE VIEW pair_sum AS SELECT a, sum(v) AS s FROM pair GROUP BY a`);
    db.exec(`CREATE TRIGGER seq_log AFTER INSERT ON seq BEGIN INSERT INTO no_key VALUES ('seq', NEW.id); END`);
    for (let i = 1; i <= 30; i++) db.query("INSERT INTO seq (v) VALUES (?)").run(`v${i}`);
    db.exec("DELETE FROM seq WHERE id > 20"); // the sequence stays at 30
    db.exec("DELETE FROM no_key WHERE rowid % 3 = 0"); // gaps in the rowids a copy must keep
    db.exec(
      `INSERT INTO pair SELECT i / 100, i % 100, i * 0.5 FROM (WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999) SELECT i FROM n)`,
    );
    db.query(`INSERT INTO "odd ""name""" VALUES (?, ?), (?, ?)`).run("a", new Uint8Array([0, 1, 2]), "b", null);
    db.exec("ANALYZE");
    return db;
  }

  const fsOf = (onFlush: () => void = () => {}) => ({
    ...fs,
    fsyncSync(fd: number) {
      fs.fsyncSync(fd);
      onFlush();
    },
  });

  test("keeps page size, auto_vacuum, user_version, application_id, sequences, statistics, rowids, NULL keys, views and triggers", () => {
    const dir = tempDir();
    defer(() => dir.cleanup());
    const db = unusual(join(dir.path, "source.db"));
    const dest = join(dir.path, "copy.db");
    const stats = pacedCopy(db, dest, fsOf(), { flushBytes: 16 * 1024, diskShare: 0.5, chunkRows: 100, cacheKiB: 64 });
    const copy = new Database(dest, { readonly: true });
    expect(copy.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    expect(dump(copy)).toBe(dump(db));
    expect(copy.query("SELECT seq FROM sqlite_sequence WHERE name = 'seq'").get()).toEqual({ seq: 30 });
    expect(copy.query("SELECT count(*) AS n FROM sqlite_stat1").get()).toEqual(
      db.query("SELECT count(*) AS n FROM sqlite_stat1").get(),
    );
    // A file of its own: not in WAL mode, no -wal beside it.
    expect(copy.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "delete" });
    // 10,000 rows of ~20 bytes in chunks of 100, flushed every 16 KiB: the copy went to the disk in steps.
    expect(stats.flushes).toBeGreaterThan(5);
    copy.close();
    // The source connection is as before: nothing attached, no transaction left open.
    expect(
      db
        .query("PRAGMA database_list")
        .all()
        .map((d: any) => d.name),
    ).toEqual(["main"]);
    expect(db.inTransaction).toBe(false);
    db.close();
  });

  test("is the database as it was when it began, while another connection writes between its chunks", () => {
    const dir = tempDir();
    defer(() => dir.cleanup());
    const path = join(dir.path, "source.db");
    const db = unusual(path);
    const before = dump(db);
    const writer = new Database(path);
    let writes = 0;
    const dest = join(dir.path, "copy.db");
    // At each flush of the copy, another connection commits: new rows, a deletion, an update across the tables.
    pacedCopy(
      db,
      dest,
      fsOf(() => {
        writes++;
        writer.query("INSERT INTO pair VALUES (?, 0, 1)").run(1000 + writes);
        writer.exec("DELETE FROM pair WHERE a = 0; UPDATE seq SET v = v || 'x'; INSERT INTO seq (v) VALUES (random())");
      }),
      { flushBytes: 8 * 1024, diskShare: 0.5, chunkRows: 50, cacheKiB: 64 },
    );
    expect(writes).toBeGreaterThan(3);
    const copy = new Database(dest, { readonly: true });
    expect(dump(copy)).toBe(before);
    expect(dump(db)).not.toBe(before);
    copy.close();
    writer.close();
    db.close();
  });

  test("a failure leaves the source as it was and says why", () => {
    const dir = tempDir();
    defer(() => dir.cleanup());
    const db = unusual(join(dir.path, "source.db"));
    const dest = join(dir.path, "copy.db");
    writeFileSync(dest, "taken");
    expect(() => pacedCopy(db, dest, fsOf(), { flushBytes: 8192, diskShare: 0.5, chunkRows: 50, cacheKiB: 64 })).toThrow(
      /EEXIST/,
    );
    let flushes = 0;
    const full = join(dir.path, "full.db");
    expect(() =>
      pacedCopy(
        db,
        full,
        fsOf(() => {
          if (++flushes === 2) throw Object.assign(new Error("ENOSPC: no space left on device, fsync"), { code: "ENOSPC" });
        }),
        { flushBytes: 8192, diskShare: 0.5, chunkRows: 50, cacheKiB: 64 },
      ),
    ).toThrow(/ENOSPC/);
    expect(db.inTransaction).toBe(false);
    expect(
      db
        .query("PRAGMA database_list")
        .all()
        .map((d: any) => d.name),
    ).toEqual(["main"]);
    expect(db.query("SELECT count(*) AS n FROM pair").get()).toEqual({ n: 10000 });
    db.close();
  });
});

test("a copy to the second target goes a step of FLUSH_BYTES at a time: the same bytes; never over a file that is there", async () => {
  const dir = tempDir();
  defer(() => dir.cleanup());
  const from = join(dir.path, "techtemp-20260101T033000Z.db");
  const bytes = Buffer.alloc(4 * FLUSH_BYTES + 777);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
  writeFileSync(from, bytes);
  const to = join(dir.path, "copy.db");
  expect(await copyPaced(from, to)).toBe(5);
  expect(fs.readFileSync(to).equals(bytes)).toBe(true);
  // An existing file is not written over, and stays as it was.
  writeFileSync(to, "mine");
  await expect(copyPaced(from, to)).rejects.toThrow(/EEXIST/);
  expect(fs.readFileSync(to, "utf8")).toBe("mine");
  await expect(copyPaced(join(dir.path, "missing.db"), join(dir.path, "other.db"))).rejects.toThrow(/ENOENT/);
  expect(existsSync(join(dir.path, "other.db"))).toBe(false);
});

test("an old backup is removed a step at a time, then unlinked; a missing one is an error to log", async () => {
  const dir = tempDir();
  defer(() => dir.cleanup());
  const path = join(dir.path, "techtemp-20260101T033000Z.db");
  writeFileSync(path, Buffer.alloc(2 * REMOVE_STEP_BYTES + 12345, 1));
  const sizes: number[] = [];
  // Watch the file shrink while it is removed (each step rests 10 ms: the watcher sees the steps).
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      try {
        sizes.push(fs.statSync(path).size);
      } catch {}
      await Bun.sleep(2);
    }
  })();
  await removeGradually(path);
  watching = false;
  await watcher;
  expect(existsSync(path)).toBe(false);
  expect(sizes).toContain(REMOVE_STEP_BYTES + 12345);
  expect(sizes.every((size, i) => i === 0 || size <= sizes[i - 1]!)).toBe(true);
  await expect(removeGradually(path)).rejects.toThrow(/ENOENT/);
});

describe("rotation and schedule", () => {
  test("names carry the UTC time and read back", () => {
    const at = Date.UTC(2026, 5, 1, 3, 30, 5);
    expect(backupName(at)).toBe("techtemp-20260601T033005Z.db");
    expect(backupName(at, 2)).toBe("techtemp-20260601T033005Z-2.db");
    expect(backupTime("techtemp-20260601T033005Z-2.db")).toBe(at);
    expect(backupTime("techtemp-0.1.0-20260601.db")).toBeNull();
    expect(backupTime("../etc/passwd")).toBeNull();
  });

  test("ISO weeks and months in the home's time zone", () => {
    // 2026-01-01 is a Thursday: week 1. 2027-01-01 is a Friday: week 53 of 2026.
    expect(calendar(Date.UTC(2026, 0, 1, 12), "UTC").week).toBe("2026-W01");
    expect(calendar(Date.UTC(2027, 0, 1, 12), "UTC").week).toBe("2026-W53");
    expect(calendar(Date.UTC(2026, 11, 28, 12), "UTC").week).toBe("2026-W53");
    // 23:30 UTC on 31 May is already 1 June in Paris.
    expect(calendar(Date.UTC(2026, 4, 31, 23, 30), "Europe/Paris")).toMatchObject({ day: "2026-06-01", month: "2026-06" });
  });

  test("a year of daily backups keeps 7 daily, 4 weekly and 12 monthly (some are the same file)", () => {
    const DAY = 86_400_000;
    const end = Date.UTC(2026, 11, 31, 2, 30);
    const files = Array.from({ length: 400 }, (_, i) => ({ name: `f${i}`, at: end - i * DAY }));
    const kept = toKeep(files, { daily: 7, weekly: 4, monthly: 12 }, "UTC");
    const days = new Set([...kept].map((n) => files.find((f) => f.name === n)!.at));
    // The last 7 days, then the newest of each of the 4 newest weeks and of the 12 newest months.
    for (let i = 0; i < 7; i++) expect(kept.has(`f${i}`)).toBe(true);
    expect(kept.has("f7")).toBe(false);
    const months = new Set([...days].map((at) => new Date(at).toISOString().slice(0, 7)));
    expect(months.size).toBe(12);
    expect(kept.size).toBeLessThanOrEqual(7 + 4 + 12);
    expect(kept.size).toBeGreaterThanOrEqual(12 + 2);
    // Nothing kept is older than 12 months back.
    expect(Math.min(...days)).toBeGreaterThan(Date.UTC(2025, 11, 31));
    // With nothing to keep, the newest still stays.
    expect(toKeep(files, { daily: 1, weekly: 0, monthly: 0 }, "UTC")).toEqual(new Set(["f0"]));
  });

  test("the next backup is at the next HH:MM in the home's zone, across daylight-saving changes", () => {
    // 10:00 UTC on 1 June: 03:30 in Paris (UTC+2) is 01:30 UTC the next day.
    expect(nextRun(Date.UTC(2026, 5, 1, 10), "03:30", "Europe/Paris")).toBe(Date.UTC(2026, 5, 2, 1, 30));
    // Winter: UTC+1.
    expect(nextRun(Date.UTC(2026, 0, 1, 10), "03:30", "Europe/Paris")).toBe(Date.UTC(2026, 0, 2, 2, 30));
    // 29 March 2026: 02:00 → 03:00 in Paris; 02:30 does not exist, it runs at 03:00 local (01:00 UTC).
    expect(nextRun(Date.UTC(2026, 2, 28, 12), "02:30", "Europe/Paris")).toBe(Date.UTC(2026, 2, 29, 1, 0));
    // Just before the time: the same day.
    expect(nextRun(Date.UTC(2026, 5, 1, 1, 29), "03:30", "Europe/Paris")).toBe(Date.UTC(2026, 5, 1, 1, 30));
    expect(nextRun(Date.UTC(2026, 5, 1, 1, 30), "03:30", "Europe/Paris")).toBe(Date.UTC(2026, 5, 2, 1, 30));
    expect(nextRun(Date.UTC(2026, 5, 1), "off", "UTC")).toBeNull();
  });

  test("the schedule makes a backup on the server's clock, and a missed one soon after start", async () => {
    let now = Date.UTC(2026, 5, 1, 10);
    const s = await startServer({ backup_time: "03:30" });
    await s.stop();
    const t = await startServer({ backup_time: "03:30" }, { now: () => now });
    defer(() => t.stop());
    // No backup yet: one runs 10 minutes after start.
    expect(t.backups.status().nextAt).toBe(now + 10 * 60_000);
  });
});

describe("the operations settings", () => {
  test("a bad value stops start-up with a line naming the setting and what it takes", () => {
    const dir = tempDir();
    defer(() => dir.cleanup());
    const cases: [string, string, string][] = [
      ["TECHTEMP_BACKUP_TIME", "3h30", 'backup_time = "3h30" (TECHTEMP_BACKUP_TIME): must be a time HH:MM (24 h) or off'],
      ["TECHTEMP_BACKUP_TIME", "24:00", "must be a time HH:MM (24 h) or off"],
      ["TECHTEMP_BACKUP_TIME", "", "backup_time"],
      ["TECHTEMP_BACKUP_DIR", "relative/dir", 'backup_dir = "relative/dir" (TECHTEMP_BACKUP_DIR): must be a directory path'],
      ["TECHTEMP_BACKUP_KEEP_DAILY", "0", "backup_keep_daily"],
      ["TECHTEMP_BACKUP_KEEP_WEEKLY", "-1", 'backup_keep_weekly = "-1" (TECHTEMP_BACKUP_KEEP_WEEKLY): must be 0 (none) or more'],
      ["TECHTEMP_METRICS_MAX_DEVICES", "lots", "metrics_max_devices"],
      ["TECHTEMP_HA_DISCOVERY", "maybe", 'ha_discovery = "maybe" (TECHTEMP_HA_DISCOVERY): must be on or off'],
      ["TECHTEMP_HA_DISCOVERY_PREFIX", "home/#", "ha_discovery_prefix"],
      ["TECHTEMP_BRIDGE_URL", "http://ha.local", 'bridge_url = "http://ha.local" (TECHTEMP_BRIDGE_URL): must be a broker URL'],
      ["TECHTEMP_BRIDGE_CLIENT_ID", "has space", "bridge_client_id"],
      ["TECHTEMP_BRIDGE_BUFFER", "0", "bridge_buffer"],
    ];
    for (const [name, value, message] of cases) {
      let thrown = "";
      try {
        loadConfig({ env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: dir.path, [name]: value } });
      } catch (err) {
        thrown = (err as Error).message;
      }
      expect({ name, value, ok: thrown.includes(message) }).toEqual({ name, value, ok: true });
    }
    const good = loadConfig({
      env: {
        TECHTEMP_CONFIG: "/dev/null",
        TECHTEMP_DATA_DIR: dir.path,
        TECHTEMP_HA_DISCOVERY: "OFF",
        TECHTEMP_BACKUP_TIME: "off",
      },
    });
    expect(good).toMatchObject({ ha_discovery: false, backup_time: "off", bridge_url: "" });
  });
});
