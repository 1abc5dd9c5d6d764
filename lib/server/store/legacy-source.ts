// The earlier TechTemp's SQLite database (Node + better-sqlite3), read for
// `import-legacy` (lib/server/ops/legacy-import.ts). Its server created it as
// (backend/db/index.js):
//
//   rooms                  (id INTEGER PRIMARY KEY, uid TEXT UNIQUE, name, floor, side)
//   devices                (id INTEGER PRIMARY KEY, uid TEXT UNIQUE, label, model, created_at DATETIME,
//                           last_seen_at DATETIME, offset_temperature REAL, offset_humidity REAL)
//   device_room_placements (device_id, room_id, from_ts DATETIME, to_ts DATETIME; to_ts NULL = current)
//   readings_raw           (device_id, room_id, ts DATETIME, temperature REAL, humidity REAL, source, msg_id;
//                           PRIMARY KEY (device_id, ts))
//
// DATETIME columns hold text: ISO-8601 where the server wrote them, SQLite's
// `YYYY-MM-DD HH:MM:SS` (UTC) where a column default did. An older generation
// keyed rooms by `room_id` TEXT (which was also their uid) and devices by
// `device_id` TEXT beside a `device_uid`, and had no offsets; a file may lack
// the placements table. The reader tells the generations apart by their
// columns and hands the values out as they are stored (`unknown`: nothing in
// such a file is trusted; the import checks every value).

import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";

/** A row of the earlier `rooms` table. `key` is what placements and readings refer to it by. */
export interface LegacyRoom {
  key: unknown;
  uid: unknown;
  name: unknown;
  floor: unknown;
  side: unknown;
}

/** A row of the earlier `devices` table. `key` is what placements and readings refer to it by. */
export interface LegacyDevice {
  key: unknown;
  uid: unknown;
  label: unknown;
  model: unknown;
  created_at: unknown;
  last_seen_at: unknown;
  offset_temperature: unknown;
  offset_humidity: unknown;
}

/** A row of the earlier `device_room_placements` table (device and room by their keys). */
export interface LegacyPlacement {
  device: unknown;
  room: unknown;
  from_ts: unknown;
  to_ts: unknown;
}

/** A row of the earlier `readings_raw` table (device and room by their keys; room null in files without one). */
export interface LegacyReading {
  device: unknown;
  room: unknown;
  ts: unknown;
  temperature: unknown;
  humidity: unknown;
}

/** Column names of a table (empty when it does not exist). */
function columns(db: Database, table: string): Set<string> {
  return new Set(
    db
      .query<{ name: string }, [string]>("SELECT name FROM pragma_table_info(?)")
      .all(table)
      .map((c) => c.name),
  );
}

/** Which columns hold keys and uids in this generation of the schema; throws when it is not the earlier TechTemp's. */
function legacySchema(db: Database) {
  const rooms = columns(db, "rooms");
  const devices = columns(db, "devices");
  const placements = columns(db, "device_room_placements");
  const readings = columns(db, "readings_raw");
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`not a database of the earlier TechTemp: ${what}`);
  };
  need(rooms.size > 0 && devices.size > 0 && readings.size > 0, "it has no rooms, devices or readings_raw table");
  const pick = (cols: Set<string>, table: string, ...names: string[]) => {
    const found = names.find((n) => cols.has(n));
    need(found !== undefined, `table ${table} has none of the columns ${names.join(", ")}`);
    return found!;
  };
  for (const c of ["device_id", "ts", "temperature", "humidity"]) need(readings.has(c), `table readings_raw has no column ${c}`);
  // A column this generation lacks reads as NULL. Every name put into the SQL
  // below is one of ours, checked against the file's own columns.
  const room = (c: string) => (rooms.has(c) ? c : "NULL");
  const device = (c: string) => (devices.has(c) ? c : "NULL");
  return {
    rooms: `SELECT ${pick(rooms, "rooms", "id", "room_id")} AS key, ${pick(rooms, "rooms", "uid", "room_id")} AS uid,
      ${room("name")} AS name, ${room("floor")} AS floor, ${room("side")} AS side FROM rooms`,
    devices: `SELECT ${pick(devices, "devices", "id", "device_id")} AS key, ${pick(devices, "devices", "uid", "device_uid")} AS uid,
      ${device("label")} AS label, ${device("model")} AS model, ${device("created_at")} AS created_at,
      ${device("last_seen_at")} AS last_seen_at, ${device("offset_temperature")} AS offset_temperature,
      ${device("offset_humidity")} AS offset_humidity FROM devices`,
    placements:
      placements.has("device_id") && placements.has("room_id") && placements.has("from_ts")
        ? "SELECT device_id AS device, room_id AS room, from_ts, to_ts FROM device_room_placements ORDER BY device_id, from_ts"
        : null,
    readings: `SELECT device_id AS device, ${readings.has("room_id") ? "room_id" : "NULL"} AS room, ts, temperature, humidity
      FROM readings_raw ORDER BY device_id, ts`,
  };
}

/**
 * Opens the earlier database at `path` read-only. Throws, with what is wrong,
 * when there is no such file, it is not an SQLite database, or not the earlier
 * TechTemp's. `close()` when done.
 */
export function openLegacySource(path: string) {
  if (!existsSync(path)) throw new Error(`no such file: ${path}`);
  let db: Database | undefined;
  try {
    db = new Database(path, { readonly: true });
    db.query("SELECT count(*) FROM sqlite_master").get();
  } catch (err) {
    db?.close();
    throw new Error(`cannot read ${path} as an SQLite database: ${(err as Error).message}`);
  }
  let sql: ReturnType<typeof legacySchema>;
  try {
    sql = legacySchema(db);
  } catch (err) {
    db.close();
    throw err;
  }
  const file = db;
  return {
    /** Every room. */
    rooms: (): LegacyRoom[] => file.query<LegacyRoom, []>(sql.rooms).all(),
    /** Every device. */
    devices: (): LegacyDevice[] => file.query<LegacyDevice, []>(sql.devices).all(),
    /** Every placement, by device and start (none when the file has no placements table). */
    placements: (): LegacyPlacement[] => (sql.placements === null ? [] : file.query<LegacyPlacement, []>(sql.placements).all()),
    /** How many readings the file holds. */
    readingCount: (): number => file.query<{ n: number }, []>("SELECT count(*) AS n FROM readings_raw").get()!.n,
    /** Every reading by device and time, read as the iterator is advanced (millions of them: never all in memory). */
    readings: (): IterableIterator<LegacyReading> => file.prepare<LegacyReading, []>(sql.readings).iterate(),
    close: (): void => file.close(),
  };
}

/** An open earlier database. */
export type LegacySource = ReturnType<typeof openLegacySource>;
