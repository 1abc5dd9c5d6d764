// `bun server.ts import-legacy PATH`: brings the earlier TechTemp's SQLite
// database (Node + better-sqlite3; schema in legacy-notes.md section 2) into
// ours: rooms, devices, placement history and readings.
//
// - Idempotent: rooms and devices are matched by uid, placements by (device,
//   room, from_ts), readings by (device, ts). A second run adds nothing.
//   Readings older than the raw horizon (retention has run) are not stored
//   raw (retention would delete them) but go into the rollups; a ledger of
//   the imported time span per device keeps a second run from counting them
//   again (legacy_import, migration 2).
// - Nothing is dropped silently: every row that cannot be used is counted
//   with its reason (and a few examples) in the summary.
// - The earlier server stored a reading of exactly 0 °C or 0 %RH as NULL
//   (`value || null` in its insert). Its validation accepted only numbers for
//   both values, so a NULL there can only be such a zero: by default it is
//   imported as 0 and counted in the summary; `--nulls=skip` reports those
//   rows as unusable instead.
// - Older schema generations (TEXT room_id / device_uid keys) are read too.
// - Stop the server first: it caches device ids, and the import writes in
//   chunks that would make its commits wait.

import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { HUMIDITY_RANGE, ID_PATTERN, MAX_FUTURE_MS, TEMPERATURE_RANGE } from "../../shared/contract.ts";
import { openDatabase } from "../store/db.ts";
import { ensureIncrementalVacuum } from "../store/retention.ts";
import { createRollups } from "../store/rollups.ts";
import { roomUidFromName, toCenti } from "../store/store.ts";

/** What to do with a legacy NULL temperature or humidity. */
export type NullPolicy = "zero" | "skip";

/** Counts for one kind of row. */
export interface ImportCounts {
  found: number;
  added: number;
  /** Already in our database (an earlier import, or the same uid). */
  present: number;
  unusable: number;
}

/** Rows that could not be used, per table and reason. */
export interface Unusable {
  table: string;
  reason: string;
  count: number;
  examples: string[];
}

/** The outcome of an import. */
export interface ImportSummary {
  rooms: ImportCounts;
  devices: ImportCounts;
  placements: ImportCounts;
  readings: ImportCounts & {
    /** Older than the raw horizon: kept in the hourly/daily rollups only. */
    rollupsOnly: number;
    /** NULL values imported as 0 (the earlier NULL-for-zero bug). */
    nullTemperatureAsZero: number;
    nullHumidityAsZero: number;
  };
  unusable: Unusable[];
  /** Other facts worth telling (renamed uids, derived placements, ignored columns). */
  notes: string[];
}

/** Parses a legacy time: ISO-8601 (with or without zone: UTC), SQLite `YYYY-MM-DD HH:MM:SS` (UTC), or epoch s/ms. */
export function parseLegacyTime(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? Math.round(v < 1e11 ? v * 1000 : v) : null;
  if (typeof v !== "string") return null;
  const s = v.trim();
  if (/^\d{9,13}$/.test(s)) return parseLegacyTime(Number(s));
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(s);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}T${m[2] ?? "00:00:00"}${m[3]?.toUpperCase() ?? "Z"}`);
  return Number.isFinite(ms) ? ms : null;
}

/** Column names of a table (empty when it does not exist). */
function columns(db: Database, table: string): Set<string> {
  return new Set(
    db
      .query<{ name: string }, []>(`SELECT name FROM pragma_table_info('${table}')`)
      .all()
      .map((c) => c.name),
  );
}

/** Which columns hold keys and uids in this generation of the legacy schema. */
function legacySchema(legacy: Database) {
  const rooms = columns(legacy, "rooms");
  const devices = columns(legacy, "devices");
  const placements = columns(legacy, "device_room_placements");
  const readings = columns(legacy, "readings_raw");
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
  return {
    roomKey: pick(rooms, "rooms", "id", "room_id"),
    roomUid: pick(rooms, "rooms", "uid", "room_id"),
    deviceKey: pick(devices, "devices", "id", "device_id"),
    deviceUid: pick(devices, "devices", "uid", "device_uid"),
    roomCols: rooms,
    deviceCols: devices,
    hasPlacements: placements.has("device_id") && placements.has("room_id") && placements.has("from_ts"),
    readingsHaveRoom: readings.has("room_id"),
  };
}

/**
 * Imports the legacy database at `legacyPath` into our open database `db`
 * (migrated). `progress` is called with readings done and total.
 */
export function importLegacy(options: {
  legacyPath: string;
  db: Database;
  now?: () => number;
  nulls?: NullPolicy;
  chunkRows?: number;
  progress?: (done: number, total: number) => void;
}): ImportSummary {
  const { db } = options;
  const now = options.now ?? Date.now;
  const nulls = options.nulls ?? "zero";
  const chunkRows = options.chunkRows ?? 5000;
  if (!existsSync(options.legacyPath)) throw new Error(`no such file: ${options.legacyPath}`);
  let legacy: Database;
  try {
    legacy = new Database(options.legacyPath, { readonly: true });
    legacy.query("SELECT count(*) FROM sqlite_master").get();
  } catch (err) {
    throw new Error(`cannot read ${options.legacyPath} as an SQLite database: ${(err as Error).message}`);
  }

  const counts = (): ImportCounts => ({ found: 0, added: 0, present: 0, unusable: 0 });
  const summary: ImportSummary = {
    rooms: counts(),
    devices: counts(),
    placements: counts(),
    readings: { ...counts(), rollupsOnly: 0, nullTemperatureAsZero: 0, nullHumidityAsZero: 0 },
    unusable: [],
    notes: [],
  };
  const unusableIndex = new Map<string, Unusable>();
  const reject = (table: "rooms" | "devices" | "placements" | "readings", reason: string, example: string) => {
    summary[table].unusable++;
    const key = `${table}\u0000${reason}`;
    let u = unusableIndex.get(key);
    if (!u) {
      u = { table, reason, count: 0, examples: [] };
      unusableIndex.set(key, u);
      summary.unusable.push(u);
    }
    u.count++;
    if (u.examples.length < 3) u.examples.push(example);
  };

  try {
    const schema = legacySchema(legacy);
    const q = {
      roomByUid: db.query<{ id: number }, [string]>("SELECT id FROM rooms WHERE uid = ?"),
      insertRoom: db.query<{ id: number }, [string, string, string | null, string | null, number]>(
        "INSERT INTO rooms (uid, name, floor, side, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
      ),
      deviceByUid: db.query<{ id: number }, [string]>("SELECT id FROM devices WHERE uid = ?"),
      insertDevice: db.query<{ id: number }, [string, string | null, string | null, number, number | null]>(
        "INSERT INTO devices (uid, label, model, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
      ),
      placementsOf: db.query<{ room_id: number; from_ts: number; to_ts: number | null }, [number]>(
        "SELECT room_id, from_ts, to_ts FROM placements WHERE device_id = ? ORDER BY from_ts",
      ),
      insertPlacement: db.query<null, [number, number, number, number | null]>(
        "INSERT INTO placements (device_id, room_id, from_ts, to_ts) VALUES (?, ?, ?, ?)",
      ),
      insertReading: db.query<null, [number, number, number, number]>(
        "INSERT OR IGNORE INTO readings (device_id, ts, t, h) VALUES (?, ?, ?, ?)",
      ),
      ledger: db.query<{ first_ts: number; last_ts: number }, [number]>(
        "SELECT first_ts, last_ts FROM legacy_import WHERE device_id = ?",
      ),
      setLedger: db.query<null, [number, number, number]>(
        `INSERT INTO legacy_import (device_id, first_ts, last_ts) VALUES (?1, ?2, ?3)
         ON CONFLICT (device_id) DO UPDATE SET first_ts = min(first_ts, ?2), last_ts = max(last_ts, ?3)`,
      ),
      touch: db.query<null, [number, number]>(
        "UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), ?1) WHERE id = ?2",
      ),
    };

    // ---- rooms ----
    const roomIds = new Map<unknown, number>();
    const roomOpt = (c: string) => (schema.roomCols.has(c) ? c : "NULL");
    const legacyRooms = legacy
      .query<{ k: unknown; uid: unknown; name: unknown; floor: unknown; side: unknown }, []>(
        `SELECT ${schema.roomKey} AS k, ${schema.roomUid} AS uid, ${roomOpt("name")} AS name, ${roomOpt("floor")} AS floor, ${roomOpt("side")} AS side FROM rooms`,
      )
      .all();
    db.transaction(() => {
      for (const r of legacyRooms) {
        summary.rooms.found++;
        const raw = r.uid == null ? "" : String(r.uid);
        let uid = raw;
        if (!ID_PATTERN.test(uid)) {
          uid = roomUidFromName(raw || String(r.name ?? ""));
          if (!ID_PATTERN.test(uid)) {
            reject("rooms", "uid has no usable letter or digit", JSON.stringify(raw));
            continue;
          }
          summary.notes.push(`room uid ${JSON.stringify(raw)} imported as ${JSON.stringify(uid)}`);
        }
        const existing = q.roomByUid.get(uid);
        if (existing) {
          summary.rooms.present++;
          roomIds.set(r.k, existing.id);
          continue;
        }
        const text = (v: unknown) => (v == null || String(v).trim() === "" ? null : String(v));
        roomIds.set(r.k, q.insertRoom.get(uid, text(r.name) ?? uid, text(r.floor), text(r.side), now())!.id);
        summary.rooms.added++;
      }
    })();

    // ---- devices ----
    const deviceIds = new Map<unknown, { id: number; uid: string }>();
    const deviceProblem = new Map<unknown, string>();
    const devOpt = (c: string) => (schema.deviceCols.has(c) ? c : "NULL");
    const legacyDevices = legacy
      .query<
        {
          k: unknown;
          uid: unknown;
          label: unknown;
          model: unknown;
          created_at: unknown;
          last_seen_at: unknown;
          ot: unknown;
          oh: unknown;
        },
        []
      >(
        `SELECT ${schema.deviceKey} AS k, ${schema.deviceUid} AS uid, ${devOpt("label")} AS label, ${devOpt("model")} AS model,
           ${devOpt("created_at")} AS created_at, ${devOpt("last_seen_at")} AS last_seen_at,
           ${devOpt("offset_temperature")} AS ot, ${devOpt("offset_humidity")} AS oh FROM devices`,
      )
      .all();
    let offsets = 0;
    db.transaction(() => {
      for (const d of legacyDevices) {
        summary.devices.found++;
        const uid = d.uid == null ? "" : String(d.uid);
        if (!ID_PATTERN.test(uid)) {
          reject("devices", "uid is not 1-50 characters of A-Z a-z 0-9 _ -", JSON.stringify(uid));
          deviceProblem.set(d.k, `its device ${JSON.stringify(uid)} was not imported`);
          continue;
        }
        if ((Number(d.ot) || 0) !== 0 || (Number(d.oh) || 0) !== 0) offsets++;
        const existing = q.deviceByUid.get(uid);
        if (existing) {
          summary.devices.present++;
          deviceIds.set(d.k, { id: existing.id, uid });
          continue;
        }
        const text = (v: unknown) => (v == null || String(v).trim() === "" ? null : String(v));
        const id = q.insertDevice.get(
          uid,
          text(d.label),
          text(d.model),
          parseLegacyTime(d.created_at) ?? now(),
          parseLegacyTime(d.last_seen_at),
        )!.id;
        deviceIds.set(d.k, { id, uid });
        summary.devices.added++;
      }
    })();
    if (offsets > 0) {
      summary.notes.push(
        `${offsets} device(s) had calibration offsets in the earlier database; they were not imported (the earlier server never applied them: the sensors did)`,
      );
    }
    const deviceOf = (k: unknown): { id: number; uid: string } | string =>
      deviceIds.get(k) ?? deviceProblem.get(k) ?? `device ${JSON.stringify(k)} is not in the devices table`;

    // ---- placements ----
    const placedDevices = new Set<number>();
    if (schema.hasPlacements) {
      const legacyPlacements = legacy
        .query<{ d: unknown; r: unknown; from_ts: unknown; to_ts: unknown }, []>(
          "SELECT device_id AS d, room_id AS r, from_ts, to_ts FROM device_room_placements ORDER BY device_id, from_ts",
        )
        .all();
      db.transaction(() => {
        for (const p of legacyPlacements) {
          summary.placements.found++;
          const example = `device ${JSON.stringify(p.d)} room ${JSON.stringify(p.r)} from ${JSON.stringify(p.from_ts)}`;
          const device = deviceOf(p.d);
          if (typeof device === "string") {
            reject("placements", device, example);
            continue;
          }
          placedDevices.add(device.id);
          const roomId = roomIds.get(p.r);
          if (roomId === undefined) {
            reject("placements", "its room is not in the rooms table or was not imported", example);
            continue;
          }
          const from = parseLegacyTime(p.from_ts);
          const to = p.to_ts == null ? null : parseLegacyTime(p.to_ts);
          if (from === null) {
            reject("placements", "from_ts is not a time", example);
            continue;
          }
          if (p.to_ts != null && to === null) {
            reject("placements", "to_ts is not a time", example);
            continue;
          }
          if (to !== null && to < from) {
            reject("placements", "to_ts is before from_ts", example);
            continue;
          }
          const existing = q.placementsOf.all(device.id);
          if (existing.some((e) => e.room_id === roomId && e.from_ts === from)) {
            summary.placements.present++;
            continue;
          }
          let end = to;
          // An open legacy placement ends where this database's history of the device begins.
          if (end === null) {
            const later = existing.filter((e) => e.from_ts >= from).map((e) => e.from_ts);
            if (later.length > 0) {
              end = Math.min(...later);
              summary.notes.push(
                `${device.uid}: the earlier current placement was closed at ${new Date(end).toISOString()}, where this database's placements begin`,
              );
            }
          }
          const overlaps = existing.some((e) => from < (e.to_ts ?? Infinity) && e.from_ts < (end ?? Infinity));
          if (overlaps) {
            reject("placements", "overlaps a placement already in this database", example);
            continue;
          }
          q.insertPlacement.run(device.id, roomId, from, end);
          summary.placements.added++;
        }
      })();
    }

    // ---- readings ----
    const rollups = createRollups(db);
    const horizon = rollups.horizon();
    const total = legacy.query<{ n: number }, []>("SELECT count(*) AS n FROM readings_raw").get()!.n;
    const readingRoom = schema.readingsHaveRoom ? "room_id" : "NULL";
    const rows = legacy
      .prepare<{ d: unknown; ts: unknown; temperature: unknown; humidity: unknown; room: unknown }, []>(
        `SELECT device_id AS d, ts, temperature, humidity, ${readingRoom} AS room FROM readings_raw ORDER BY device_id, ts`,
      )
      .iterate();
    // Devices without any placement history: their rooms are rebuilt from the
    // room_id each reading was stored with (the earlier DELETE removed
    // placements first and then failed on the readings, leaving exactly this).
    const derived = new Map<number, { room: number; from: number; last: number; end: number | null }[]>();
    const ledgers = new Map<number, { first_ts: number; last_ts: number } | null>();
    const future = now() + MAX_FUTURE_MS;
    let done = 0;
    let chunk: { deviceId: number; ts: number; t: number; h: number }[] = [];

    const writeChunk = db.transaction((items: typeof chunk) => {
      const acc = rollups.accumulator({ keepOld: true });
      const span = new Map<number, { first: number; last: number }>();
      for (const r of items) {
        let added = false;
        if (r.ts < horizon) {
          let ledger = ledgers.get(r.deviceId);
          if (ledger === undefined) ledgers.set(r.deviceId, (ledger = q.ledger.get(r.deviceId)));
          if (ledger && r.ts >= ledger.first_ts && r.ts <= ledger.last_ts) summary.readings.present++;
          else {
            added = true;
            summary.readings.rollupsOnly++;
          }
        } else if (q.insertReading.run(r.deviceId, r.ts, r.t, r.h).changes > 0) added = true;
        else summary.readings.present++;
        if (added) {
          summary.readings.added++;
          acc.add(r.deviceId, r.ts, r.t, r.h);
        }
        const s = span.get(r.deviceId);
        if (!s) span.set(r.deviceId, { first: r.ts, last: r.ts });
        else ((s.first = Math.min(s.first, r.ts)), (s.last = Math.max(s.last, r.ts)));
      }
      acc.write();
      for (const [deviceId, s] of span) {
        q.setLedger.run(deviceId, s.first, s.last);
        q.touch.run(s.last, deviceId);
      }
    });

    /** A value in hundredths, or the reason it cannot be used. */
    const value = (name: string, v: unknown, [min, max]: readonly [number, number]): number | string => {
      if (v == null) return nulls === "zero" ? 0 : `${name} is NULL (--nulls=skip)`;
      if (typeof v !== "number" || !Number.isFinite(v)) return `${name} is not a number`;
      if (v < min || v > max) return `${name} is outside ${min}…${max}`;
      return toCenti(v);
    };

    /** Follows the runs of readings stored in one room, for a device without placement history. */
    const trackRoom = (deviceId: number, legacyRoom: unknown, ts: number): void => {
      const room = legacyRoom == null ? undefined : roomIds.get(legacyRoom);
      let runs = derived.get(deviceId);
      if (!runs) derived.set(deviceId, (runs = []));
      const last = runs[runs.length - 1];
      if (last && last.end === null) {
        if (last.room === room) {
          last.last = ts;
          return;
        }
        last.end = ts;
      }
      if (room !== undefined) runs.push({ room, from: ts, last: ts, end: null });
    };

    for (const r of rows) {
      done++;
      summary.readings.found++;
      const example = `device ${JSON.stringify(r.d)} ts ${JSON.stringify(r.ts)}`;
      const device = deviceOf(r.d);
      if (typeof device === "string") {
        reject("readings", device, example);
      } else {
        const ts = parseLegacyTime(r.ts);
        const t = value("temperature", r.temperature, TEMPERATURE_RANGE);
        const h = value("humidity", r.humidity, HUMIDITY_RANGE);
        if (ts === null) reject("readings", "ts is not a time", example);
        else if (ts > future) reject("readings", "ts is more than 24 h in the future", example);
        else if (typeof t === "string") reject("readings", t, `${example} temperature ${JSON.stringify(r.temperature)}`);
        else if (typeof h === "string") reject("readings", h, `${example} humidity ${JSON.stringify(r.humidity)}`);
        else {
          if (r.temperature == null) summary.readings.nullTemperatureAsZero++;
          if (r.humidity == null) summary.readings.nullHumidityAsZero++;
          chunk.push({ deviceId: device.id, ts, t, h });
          if (!placedDevices.has(device.id)) trackRoom(device.id, r.room, ts);
        }
      }
      if (chunk.length >= chunkRows) {
        writeChunk(chunk);
        chunk = [];
        options.progress?.(done, total);
      }
    }
    writeChunk(chunk);
    options.progress?.(done, total);

    // Derived placements: each run of readings in one room, ending where the next reading
    // elsewhere (or without a room) was taken, the last one 1 ms after its last reading.
    // Skipped when the device has placements here already (an earlier import, or a person).
    let derivedDevices = 0;
    let derivedPlacements = 0;
    db.transaction(() => {
      for (const [deviceId, runs] of derived) {
        if (runs.length === 0 || q.placementsOf.all(deviceId).length > 0) continue;
        derivedDevices++;
        for (const run of runs) {
          q.insertPlacement.run(deviceId, run.room, run.from, run.end ?? run.last + 1);
          derivedPlacements++;
        }
      }
    })();
    if (derivedDevices > 0) {
      summary.notes.push(
        `${derivedDevices} device(s) had readings but no placement history: ${derivedPlacements} placement(s) rebuilt from the room each reading was stored with`,
      );
    }
  } finally {
    legacy.close();
  }
  return summary;
}

const num = (n: number) => n.toLocaleString("en-US");

/** The summary a person reads after an import. */
export function formatSummary(s: ImportSummary, from: string, into: string): string {
  const line = (name: string, c: ImportCounts) =>
    `  ${name.padEnd(11)} ${num(c.found).padStart(11)} found: ${num(c.added)} added, ${num(c.present)} already here, ${num(c.unusable)} unusable`;
  const out = [
    `imported ${from}`,
    `    into   ${into}`,
    line("rooms", s.rooms),
    line("devices", s.devices),
    line("placements", s.placements),
    line("readings", s.readings),
  ];
  if (s.readings.rollupsOnly > 0) {
    out.push(
      `  ${num(s.readings.rollupsOnly)} readings older than the raw retention were kept in the hourly and daily rollups only`,
    );
  }
  if (s.readings.nullTemperatureAsZero + s.readings.nullHumidityAsZero > 0) {
    out.push(
      `  NULL values imported as 0: ${num(s.readings.nullTemperatureAsZero)} temperatures, ${num(s.readings.nullHumidityAsZero)} humidities` +
        " (the earlier server stored a reading of exactly 0 as NULL; --nulls=skip refuses them instead)",
    );
  }
  if (s.unusable.length > 0) {
    out.push("unusable rows (not imported):");
    for (const u of s.unusable) out.push(`  ${u.table}: ${num(u.count)} × ${u.reason}  (e.g. ${u.examples.join("; ")})`);
  }
  for (const note of s.notes) out.push(`note: ${note}`);
  return out.join("\n");
}

/** A progress bar on a terminal: `readings [#####-----] 45%  1,234 / 2,742`, redrawn at most every 100 ms. */
function progressBar(write: (s: string) => void) {
  let last = 0;
  return (done: number, total: number) => {
    const at = performance.now();
    if (done < total && at - last < 100) return;
    last = at;
    const share = total === 0 ? 1 : done / total;
    const width = 30;
    const filled = Math.round(share * width);
    write(
      `\rreadings [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${Math.floor(share * 100)}%  ${num(done)} / ${num(total)}`,
    );
    if (done >= total) write("\n");
  };
}

const IMPORT_USAGE = "usage: bun server.ts import-legacy PATH [--nulls=zero|skip]";

/**
 * The `import-legacy` command: imports PATH into the database at `dbPath`.
 * Refuses while a server answers on `httpPort` (it caches device ids).
 * Returns the exit code.
 */
export async function runImportLegacy(dbPath: string, args: string[], options: { httpPort?: number } = {}): Promise<number> {
  let path: string | undefined;
  let nulls: NullPolicy = "zero";
  for (const a of args) {
    if (a === "--nulls=zero" || a === "--nulls=skip") nulls = a.slice(8) as NullPolicy;
    else if (!a.startsWith("-") && path === undefined) path = a;
    else {
      console.error(`import-legacy: unexpected argument ${JSON.stringify(a)}\n${IMPORT_USAGE}`);
      return 2;
    }
  }
  if (path === undefined) {
    console.error(IMPORT_USAGE);
    return 2;
  }
  if (options.httpPort) {
    const running = await fetch(`http://127.0.0.1:${options.httpPort}/health`, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.text())
      .then((t) => t.includes('"status"'))
      .catch(() => false);
    if (running) {
      console.error(
        `import-legacy: a TechTemp server answers on port ${options.httpPort}; stop it first (systemctl stop techtemp), then import`,
      );
      return 1;
    }
  }
  let db: Database;
  try {
    db = openDatabase(dbPath);
    ensureIncrementalVacuum(db);
  } catch (err) {
    console.error(`import-legacy: ${(err as Error).message}`);
    return 1;
  }
  // The import is idempotent: a commit lost to a power cut is redone by running it again, so skip the fsyncs.
  db.exec("PRAGMA synchronous = NORMAL");
  try {
    const summary = importLegacy({
      legacyPath: path,
      db,
      nulls,
      progress: process.stderr.isTTY ? progressBar((s) => process.stderr.write(s)) : undefined,
    });
    console.log(formatSummary(summary, path, dbPath));
    return 0;
  } catch (err) {
    console.error(`import-legacy: ${(err as Error).message}`);
    return 1;
  } finally {
    db.close();
  }
}
