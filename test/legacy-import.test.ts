// `bun server.ts import-legacy PATH` on a database built here from the
// earlier server's schema (below, as its backend/db/index.js created it), with the rows a real
// one accumulates: moves, the NULL-for-zero bug, a device deleted halfway,
// and rows nobody can use. Imported twice: the second run adds nothing.

import { afterEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../lib/server/store/db.ts";
import { importLegacy } from "../lib/server/ops/legacy-import.ts";
import { createRollups } from "../lib/server/store/rollups.ts";
import { createStore } from "../lib/server/store/store.ts";
import { run, startServer, tempDir } from "./helpers.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MOVE = Date.UTC(2025, 9, 1, 8, 0, 0);
const START = MOVE - 2 * DAY;
const END = MOVE + 2 * DAY;
const iso = (ms: number) => new Date(ms).toISOString();

/** The earlier server's schema, verbatim (backend/db/index.js). */
const LEGACY_SCHEMA = `
CREATE TABLE IF NOT EXISTS rooms (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  uid          TEXT UNIQUE NOT NULL,
  name         TEXT NOT NULL,
  floor        TEXT,
  side         TEXT
);
CREATE TABLE IF NOT EXISTS devices (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  uid          TEXT UNIQUE NOT NULL,
  label        TEXT,
  model        TEXT,
  created_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_seen_at DATETIME,
  offset_temperature REAL DEFAULT 0,
  offset_humidity    REAL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS device_room_placements (
  device_id   INTEGER NOT NULL REFERENCES devices(id),
  room_id     INTEGER NOT NULL REFERENCES rooms(id),
  from_ts     DATETIME NOT NULL,
  to_ts       DATETIME,
  PRIMARY KEY (device_id, from_ts)
);
CREATE TABLE IF NOT EXISTS readings_raw (
  device_id   INTEGER NOT NULL REFERENCES devices(id),
  room_id     INTEGER,
  ts          DATETIME NOT NULL,
  temperature REAL,
  humidity    REAL,
  source      TEXT,
  msg_id      TEXT,
  PRIMARY KEY (device_id, ts)
);
CREATE INDEX IF NOT EXISTS idx_places_room ON device_room_placements(room_id, from_ts);
CREATE INDEX IF NOT EXISTS idx_places_device ON device_room_placements(device_id, from_ts);
CREATE INDEX IF NOT EXISTS idx_raw_room_ts ON readings_raw(room_id, ts);
CREATE UNIQUE INDEX IF NOT EXISTS idx_raw_msg ON readings_raw(msg_id) WHERE msg_id IS NOT NULL;
CREATE VIEW IF NOT EXISTS v_room_last AS
SELECT r.room_id,
       MAX(r.ts) AS last_ts,
       (SELECT temperature FROM readings_raw rr
         WHERE rr.room_id = r.room_id
         ORDER BY rr.ts DESC LIMIT 1) AS last_temperature,
       (SELECT humidity FROM readings_raw rr
         WHERE rr.room_id = r.room_id
         ORDER BY rr.ts DESC LIMIT 1) AS last_humidity
FROM readings_raw r
GROUP BY r.room_id;
`;

/** What the crafted legacy database holds, for the assertions. */
const GOOD_F49 = (END - START) / (5 * MIN) - 2; // every 5 min, minus the two unusable rows of that device
const GOOD_B82 = (END - START) / (10 * MIN);
const GOOD_DEL = 48;

/** Builds the legacy database the way the earlier server filled it (ISO text times, integer ids). */
function buildLegacy(path: string): void {
  const db = new Database(path, { create: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(LEGACY_SCHEMA);
  db.exec(`
    INSERT INTO rooms (id, uid, name, floor, side) VALUES
      (1, 'salon', 'Salon', 'RDC', 'sud'), (2, 'cuisine', 'Cuisine', NULL, NULL),
      (3, 'chambre-d-amis', 'Chambre d''amis', '1er', NULL), (4, 'Garage Nord!', 'Garage', NULL, NULL);
    INSERT INTO devices (id, uid, label, model, created_at, last_seen_at, offset_temperature) VALUES
      (1, 'aht20-f49c53', 'Capteur salon', NULL, '2025-09-11 11:46:04', '2025-10-03 08:00:00', 0),
      (2, 'aht20-b827eb', NULL, 'AHT20', '2025-09-12 08:00:00', '${iso(END)}', 0.5),
      (3, 'aht20-0ld0ne', 'deleted halfway', NULL, '2025-09-01 10:00:00', NULL, 0),
      (4, 'bad uid!', 'hand-made', NULL, '2025-09-01 10:00:00', NULL, 0);
  `);
  const place = db.query("INSERT INTO device_room_placements (device_id, room_id, from_ts, to_ts) VALUES (?, ?, ?, ?)");
  place.run(1, 1, "2025-09-11T11:46:04.000Z", iso(MOVE));
  place.run(1, 2, iso(MOVE), null);
  place.run(2, 3, "2025-09-12T08:00:00.000Z", null);
  place.run(99, 1, "2025-09-12T08:00:00.000Z", null); // a device that does not exist
  place.run(2, 77, "2025-09-01T08:00:00.000Z", "2025-09-02T08:00:00.000Z"); // a room that does not exist
  place.run(2, 1, "last tuesday", null);

  const insert = db.query(
    "INSERT INTO readings_raw (device_id, room_id, ts, temperature, humidity, source, msg_id) VALUES (?, ?, ?, ?, ?, 'mqtt', ?)",
  );
  let n = 0;
  db.transaction(() => {
    for (let ts = START; ts < END; ts += 5 * MIN) {
      const i = (ts - START) / (5 * MIN);
      // The NULL-for-zero bug: 0 °C and 0 % were stored as NULL.
      const t = i === 7 ? null : Math.round((19 + Math.sin(i / 50) * 3) * 100) / 100;
      const h = i === 9 ? null : 45 + (i % 10);
      insert.run(1, ts < MOVE ? 1 : 2, iso(ts), i === 11 ? "chaud" : i === 13 ? 120 : t, h, `m${n++}`);
    }
    for (let ts = START; ts < END; ts += 10 * MIN) insert.run(2, 3, iso(ts), 21.5, 60, `m${n++}`);
    // Deleted halfway: its placements went, its readings stayed (with the room they were taken in).
    for (let i = 0; i < GOOD_DEL; i++) insert.run(3, i < 30 ? 2 : 1, iso(START + i * HOUR), 18, 50, `m${n++}`);
    insert.run(4, 1, iso(START), 20, 50, `m${n++}`);
    insert.run(99, 1, iso(START), 20, 50, `m${n++}`);
    insert.run(1, 1, "not a time", 20, 50, `m${n++}`);
  })();
  db.close();
}

let cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function setup() {
  const dir = tempDir();
  cleanup.push(() => dir.cleanup());
  const legacy = join(dir.path, "legacy.db");
  buildLegacy(legacy);
  const config = join(dir.path, "server.conf");
  writeFileSync(config, "");
  const data = join(dir.path, "data");
  const env = { TECHTEMP_CONFIG: config, TECHTEMP_DATA_DIR: data, TECHTEMP_HTTP_PORT: "0" };
  const cli = (...args: string[]) => run(["bun", "server.ts", "import-legacy", ...args], { env, timeoutMs: 60_000 });
  return { dir, legacy, data, cli };
}

test("the earlier database is imported with rooms, devices, placements and readings, and a second run adds nothing", async () => {
  const { legacy, data, cli } = setup();
  const first = await cli(legacy);
  expect(first.stderr).toBe("");
  expect(first.code).toBe(0);
  const out = first.stdout;
  expect(out).toMatch(/rooms +4 found: 4 added, 0 already here, 0 unusable/);
  expect(out).toMatch(/devices +4 found: 3 added, 0 already here, 1 unusable/);
  expect(out).toMatch(/placements +6 found: 3 added, 0 already here, 3 unusable/);
  const total = GOOD_F49 + 2 + GOOD_B82 + GOOD_DEL + 1 + 1 + 1;
  expect(out).toMatch(
    new RegExp(
      `readings +${total.toLocaleString("en-US")} found: ${(GOOD_F49 + GOOD_B82 + GOOD_DEL).toLocaleString("en-US")} added, 0 already here, 5 unusable`,
    ),
  );
  expect(out).toContain("NULL values imported as 0: 1 temperatures, 1 humidities");
  expect(out).toContain('room uid "Garage Nord!" imported as "garage-nord"');
  expect(out).toContain("devices: 1 × uid is not 1-50 characters");
  expect(out).toContain("readings: 1 × temperature is not a number");
  expect(out).toContain("readings: 1 × temperature is outside -40…85");
  expect(out).toContain("readings: 1 × ts is not a time");
  expect(out).toContain('readings: 1 × its device "bad uid!" was not imported');
  expect(out).toContain("readings: 1 × device 99 is not in the devices table");
  expect(out).toContain("placements: 1 × from_ts is not a time");
  expect(out).toContain("1 device(s) had readings but no placement history: 2 placement(s) rebuilt");
  expect(out).toContain("calibration offsets");

  const second = await cli(legacy);
  expect(second.code).toBe(0);
  expect(second.stdout).toMatch(/rooms +4 found: 0 added, 4 already here/);
  expect(second.stdout).toMatch(/devices +4 found: 0 added, 3 already here/);
  expect(second.stdout).toMatch(/placements +6 found: 0 added, 3 already here/);
  expect(second.stdout).toContain(
    `found: 0 added, ${(GOOD_F49 + GOOD_B82 + GOOD_DEL).toLocaleString("en-US")} already here, 5 unusable`,
  );

  const server = await startServer({}, { dataDir: data, now: () => END + DAY });
  cleanup.push(() => server.stop());
  const devices = (await server.api("/api/v1/devices")).body.data;
  expect(devices.map((d: { uid: string }) => d.uid).sort()).toEqual(["aht20-0ld0ne", "aht20-b827eb", "aht20-f49c53"]);
  const f49 = devices.find((d: { uid: string }) => d.uid === "aht20-f49c53");
  expect(f49).toMatchObject({
    room: { uid: "cuisine", name: "Cuisine" },
    label: "Capteur salon",
    created_at: "2025-09-11T11:46:04.000Z",
  });
  expect((await server.api("/api/v1/devices/aht20-f49c53/placements")).body.data).toEqual([
    {
      device_uid: "aht20-f49c53",
      room: { uid: "salon", name: "Salon" },
      from_ts: "2025-09-11T11:46:04.000Z",
      to_ts: iso(MOVE),
      state: "closed",
    },
    { device_uid: "aht20-f49c53", room: { uid: "cuisine", name: "Cuisine" }, from_ts: iso(MOVE), to_ts: null, state: "active" },
  ]);
  // The deleted device's rooms come back from its readings: 30 h in the kitchen, then 18 h in the living room.
  expect(
    (await server.api("/api/v1/devices/aht20-0ld0ne/placements")).body.data.map((p: any) => [p.room.uid, p.from_ts, p.to_ts]),
  ).toEqual([
    ["cuisine", iso(START), iso(START + 30 * HOUR)],
    ["salon", iso(START + 30 * HOUR), iso(START + 47 * HOUR + 1)],
  ]);
  // History follows the imported placements, and the NULL temperature is a 0 °C in the minimum.
  const salon = (await server.api(`/api/v1/rooms/salon/history?from=${START}&to=${END}&bucket=day`)).body.data.points;
  const count = salon.reduce((n: number, p: { count: number }) => n + p.count, 0);
  expect(count).toBe((MOVE - START) / (5 * MIN) - 2 + 18); // the salon sensor until the move (2 unusable rows) + the deleted one's last 18 h
  expect(Math.min(...salon.map((p: { temperature_min: number }) => p.temperature_min))).toBe(0);
  // Rollups equal a GROUP BY over the imported raw readings.
  const db = server.db;
  const raw = db
    .query(
      "SELECT device_id, (ts / 86400000) * 86400000 AS b, count(*) AS n, sum(t) AS t_sum, min(h) AS h_min FROM readings GROUP BY device_id, b ORDER BY 1, 2",
    )
    .all();
  expect(db.query("SELECT device_id, b, n, t_sum, h_min FROM rollup_day ORDER BY 1, 2").all()).toEqual(raw);
});

test("readings older than the raw horizon go into the rollups only, and a second import does not count them again", () => {
  const { dir, legacy } = setup();
  const db = openDatabase(join(dir.path, "ours.db"));
  cleanup.push(() => db.close());
  // This database's retention already ran: raw readings before MOVE are gone for good.
  createRollups(db).setHorizon(MOVE);
  const store = createStore(db, { now: () => END + DAY });
  const first = importLegacy({ legacyPath: legacy, store });
  const good = GOOD_F49 + GOOD_B82 + GOOD_DEL;
  expect(first.readings).toMatchObject({ found: good + 5, added: good, present: 0, unusable: 5 });
  // Before MOVE: 576 of aht20-f49c53 (2 unusable), 288 of aht20-b827eb, all 48 of the deleted one.
  expect(first.readings.rollupsOnly).toBe(574 + 288 + 48);
  const rawCount = db.query<{ n: number }, []>("SELECT count(*) AS n FROM readings").get()!.n;
  expect(rawCount).toBe(good - first.readings.rollupsOnly);
  expect(db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM readings WHERE ts < ?").get(MOVE)!.n).toBe(0);
  const rollups = () => db.query("SELECT * FROM rollup_hour ORDER BY device_id, b").all();
  const rolled = rollups();
  expect(db.query<{ n: number }, []>("SELECT sum(n) AS n FROM rollup_day").get()!.n).toBe(good);

  const second = importLegacy({ legacyPath: legacy, store });
  expect(second.readings).toMatchObject({ added: 0, present: good, rollupsOnly: 0 });
  expect(rollups()).toEqual(rolled);
});

test("--nulls=skip reports the NULL values as unusable instead of importing zeros", async () => {
  const { legacy, cli } = setup();
  const r = await cli(legacy, "--nulls=skip");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("readings: 1 × temperature is NULL (--nulls=skip)");
  expect(r.stdout).toContain("readings: 1 × humidity is NULL (--nulls=skip)");
  expect(r.stdout).toContain("7 unusable");
  expect(r.stdout).not.toContain("NULL values imported as 0");
});

test("a progress bar is drawn on a terminal", async () => {
  const { legacy, data, dir } = setup();
  const config = join(dir.path, "server.conf");
  const r = await run(["script", "-qec", `bun server.ts import-legacy ${legacy}`, "/dev/null"], {
    env: { TECHTEMP_CONFIG: config, TECHTEMP_DATA_DIR: data, TECHTEMP_HTTP_PORT: "0" },
    timeoutMs: 60_000,
  });
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/readings \[#+\] 100%/);
  expect(r.stdout).toContain("rooms");
});

test("a file that is not the earlier server's database is refused with a reason", async () => {
  const { dir, cli } = setup();
  const text = join(dir.path, "notes.txt");
  writeFileSync(text, "this is not a database\n".repeat(100));
  let r = await cli(text);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("import-legacy: cannot read");
  const other = join(dir.path, "other.db");
  new Database(other, { create: true }).exec("CREATE TABLE things (id INTEGER)");
  r = await cli(other);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("not a database of the earlier TechTemp");
  r = await cli(join(dir.path, "missing.db"));
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("no such file");
  r = await cli();
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("usage: bun server.ts import-legacy PATH");
});

test("the import refuses to run beside a live server, which caches device ids", async () => {
  const { legacy, data, dir } = setup();
  const server = await startServer({}, { dataDir: data });
  cleanup.push(() => server.stop());
  const r = await run(["bun", "server.ts", "import-legacy", legacy], {
    env: { TECHTEMP_CONFIG: join(dir.path, "server.conf"), TECHTEMP_DATA_DIR: data, TECHTEMP_HTTP_PORT: String(server.httpPort) },
    timeoutMs: 60_000,
  });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`a TechTemp server answers on port ${server.httpPort}; stop it first`);
  expect((await server.api("/api/v1/devices")).body.data).toEqual([]);
});

test("the oldest schema generation (TEXT room_id and device_uid keys) is read too", () => {
  const dir = tempDir();
  cleanup.push(() => dir.cleanup());
  const path = join(dir.path, "v1.db");
  const legacy = new Database(path, { create: true });
  legacy.exec(`
    CREATE TABLE rooms (room_id TEXT PRIMARY KEY, name TEXT NOT NULL, floor TEXT, side TEXT);
    CREATE TABLE devices (device_id TEXT PRIMARY KEY, device_uid TEXT UNIQUE NOT NULL, label TEXT, model TEXT,
      created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, last_seen_at DATETIME);
    CREATE TABLE device_room_placements (device_id TEXT NOT NULL, room_id TEXT NOT NULL, from_ts DATETIME NOT NULL, to_ts DATETIME,
      PRIMARY KEY (device_id, from_ts));
    CREATE TABLE readings_raw (device_id TEXT NOT NULL, room_id TEXT, ts DATETIME NOT NULL, temperature REAL, humidity REAL,
      PRIMARY KEY (device_id, ts));
    INSERT INTO rooms VALUES ('bureau', 'Bureau', NULL, NULL);
    INSERT INTO devices (device_id, device_uid, created_at) VALUES ('d1', 'aht20-aaaaaa', '2025-01-01 00:00:00');
    INSERT INTO device_room_placements VALUES ('d1', 'bureau', '2025-01-01T00:00:00.000Z', NULL);
    INSERT INTO readings_raw VALUES ('d1', 'bureau', '2025-01-02T00:00:00.000Z', 19.5, 40), ('d1', 'bureau', '2025-01-02T00:05:00.000Z', 19.75, 41);
  `);
  legacy.close();
  const db = openDatabase(join(dir.path, "ours.db"));
  cleanup.push(() => db.close());
  const s = importLegacy({ legacyPath: path, store: createStore(db) });
  expect(s.rooms.added).toBe(1);
  expect(s.devices.added).toBe(1);
  expect(s.placements.added).toBe(1);
  expect(s.readings).toMatchObject({ found: 2, added: 2, unusable: 0 });
  expect(db.query("SELECT r.uid FROM placements p JOIN rooms r ON r.id = p.room_id").all()).toEqual([{ uid: "bureau" }]);
});
