// The store on a real SQLite file: what ingestion relies on.
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../lib/server/store/db.ts";
import { createLog } from "../lib/shared/log.ts";
import { createStore } from "../lib/server/store/store.ts";
import { tempDir } from "./helpers.ts";

const dirs: { cleanup(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));
function open() {
  const dir = tempDir();
  dirs.push(dir);
  const path = join(dir.path, "techtemp.db");
  const lines: string[] = [];
  const db = openDatabase(path);
  return { path, db, lines, store: createStore(db, { log: createLog({ sink: (l) => lines.push(l) }) }) };
}
const reading = (deviceUid: string, ts: number) => ({
  homeId: "home-001",
  deviceUid,
  reading: { temperature_c: 20, humidity_pct: 50, ts },
  receivedAt: ts,
});

test("a listener that throws does not undo or fail a committed batch", () => {
  const { db, store, lines } = open();
  store.onReadings(() => {
    throw new Error("listener bug");
  });
  expect(() => store.insertReadings([reading("aht20-a", 1), reading("aht20-a", 2)])).not.toThrow();
  expect((db.query("SELECT count(*) AS n FROM readings").get() as { n: number }).n).toBe(2);
  expect(lines.some((l) => l.includes("a reading listener failed") && l.includes("listener bug"))).toBe(true);
  db.close();
});

test("a device added by another process is found, not inserted twice", () => {
  const { path, db, store } = open();
  store.insertReadings([reading("aht20-a", 1)]); // fills the cache
  const other = new Database(path);
  other.exec("INSERT INTO devices (uid, home_id, created_at) VALUES ('aht20-b', 'elsewhere', 0)");
  other.close();
  store.insertReadings([reading("aht20-b", 5)]);
  const row = db.query("SELECT count(*) AS n, max(home_id) AS home FROM devices WHERE uid = 'aht20-b'").get() as {
    n: number;
    home: string;
  };
  expect(row).toEqual({ n: 1, home: "home-001" });
  expect((db.query("SELECT count(*) AS n FROM readings").get() as { n: number }).n).toBe(2);
  db.close();
});

test("a batch that cannot commit stores nothing and forgets the devices it registered", () => {
  const { db, store } = open();
  db.exec("CREATE TRIGGER fail BEFORE INSERT ON readings WHEN NEW.ts = 99 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  expect(() => store.insertReadings([reading("aht20-new", 1), reading("aht20-new", 99)])).toThrow("disk on fire");
  expect((db.query("SELECT count(*) AS n FROM devices").get() as { n: number }).n).toBe(0);
  db.exec("DROP TRIGGER fail");
  store.insertReadings([reading("aht20-new", 1)]);
  expect((db.query("SELECT count(*) AS n FROM readings").get() as { n: number }).n).toBe(1);
  db.close();
});

test("a database from a newer TechTemp is refused at open with what to do", () => {
  const { path, db } = open();
  db.exec("PRAGMA user_version = 999");
  db.close();
  expect(() => openDatabase(path)).toThrow(/schema version 999 is newer than this TechTemp .*upgrade TechTemp/);
});
