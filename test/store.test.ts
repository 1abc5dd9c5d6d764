// The store on a real SQLite file: what ingestion relies on.
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../lib/server/store/db.ts";
import type { DomainError } from "../lib/shared/errors.ts";
import { createLog } from "../lib/shared/log.ts";
import { createStore } from "../lib/server/store/store.ts";
import { tempDir, waitFor } from "./helpers.ts";

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
  store.on("readings", () => {
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

test("a device change is announced after it is committed, with the room it left and whether its config changed", () => {
  const { db, store } = open();
  const seen: { kind: string; uid: string; room: string | null; before: string | null; config: boolean }[] = [];
  store.on("device", (c) =>
    seen.push({
      kind: c.kind,
      uid: c.deviceUid,
      room: c.device?.room_uid ?? null,
      before: c.roomBefore,
      config: c.configChanged,
    }),
  );
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen" });
  store.updateDevice("aht20-a", { roomName: "Hall", label: "by the door" });
  store.updateDevice("aht20-a", { temperature_offset: -0.5 });
  store.updateDevice("aht20-a", { temperature_offset: -0.5 });
  store.updateRoom("hall", { name: "Entrance hall" });
  store.deleteDevice("aht20-a");
  expect(seen).toEqual([
    { kind: "created", uid: "aht20-a", room: "kitchen", before: null, config: false },
    { kind: "updated", uid: "aht20-a", room: "hall", before: "kitchen", config: false },
    { kind: "updated", uid: "aht20-a", room: "hall", before: "hall", config: true },
    { kind: "updated", uid: "aht20-a", room: "hall", before: "hall", config: false },
    { kind: "updated", uid: "aht20-a", room: "hall", before: "hall", config: false },
    { kind: "deleted", uid: "aht20-a", room: null, before: "hall", config: false },
  ]);
  // A change that fails announces nothing.
  expect(() => store.updateDevice("aht20-zz", { label: "x" })).toThrow();
  expect(seen).toHaveLength(6);
  db.close();
});

test("a status message is announced once it is recorded", () => {
  const { db, store } = open();
  const seen: unknown[] = [];
  store.on("status", (s) => seen.push([s.deviceUid, s.status.state, store.findDevice(s.deviceUid)!.state]));
  store.applyStatus("home-001", "aht20-a", { state: "online", interval_s: 60 }, 1000);
  store.applyStatus("home-001", "aht20-a", { state: "offline" }, 2000);
  expect(seen).toEqual([
    ["aht20-a", "online", "online"],
    ["aht20-a", "offline", "offline"],
  ]);
  db.close();
});

test("a failing device or status listener, sync or async, is logged and changes nothing for the caller", async () => {
  const { db, store, lines } = open();
  store.on("device", () => {
    throw new Error("sync bug");
  });
  store.on("status", async () => {
    throw new Error("async bug");
  });
  const other: string[] = [];
  store.on("device", (c) => void other.push(c.deviceUid));
  expect(store.createDevice({ uid: "aht20-a", roomName: "Kitchen" }).room_uid).toBe("kitchen");
  expect(() => store.applyStatus("home-001", "aht20-a", { state: "online" }, 1000)).not.toThrow();
  expect(other).toEqual(["aht20-a"]);
  expect(lines.some((l) => l.includes("a device listener failed") && l.includes("sync bug"))).toBe(true);
  await waitFor(() => lines.some((l) => l.includes("a status listener failed") && l.includes("async bug")));
  db.close();
});

test("an unsubscribed listener hears nothing more", () => {
  const { db, store } = open();
  let n = 0;
  const off = store.on("readings", () => void n++);
  store.insertReadings([reading("aht20-a", 1)]);
  off();
  store.insertReadings([reading("aht20-a", 2)]);
  expect(n).toBe(1);
  db.close();
});

test("the store's errors are domain errors that name the field at fault", () => {
  const { db, store } = open();
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen" });
  const fieldOf = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return [(err as DomainError).kind, (err as DomainError).field];
    }
    return null;
  };
  expect(fieldOf(() => store.createDevice({ uid: "aht20-a", roomName: "Hall" }))).toEqual(["conflict", "device_uid"]);
  expect(fieldOf(() => store.createRoom({ name: "Kitchen" }))).toEqual(["conflict", "room_name"]);
  expect(fieldOf(() => store.createRoom({ name: "!!!" }))).toEqual(["invalid", "room_name"]);
  expect(fieldOf(() => store.updateDevice("aht20-a", { roomUid: "nowhere" }))).toEqual(["not_found", "room_uid"]);
  expect(fieldOf(() => store.updateDevice("aht20-a", { roomUid: null, movedAt: 0 }))).toEqual(["invalid", "moved_at"]);
  expect(fieldOf(() => store.getDevice("aht20-zz"))).toEqual(["not_found", null]);
  db.close();
});

test("the health probe answers while the database does, and throws once it is closed", () => {
  const { db, store } = open();
  expect(() => store.probe()).not.toThrow();
  db.close();
  expect(() => store.probe()).toThrow();
});
