// `bun server.ts import-legacy PATH`: brings the earlier TechTemp's SQLite
// database (its schema: lib/server/store/legacy-source.ts, which reads it)
// into ours, one phase after the other: rooms, devices, placement history,
// readings (with their rollups), and placements rebuilt for devices that lost
// theirs. Every write goes through the store, as the API's and ingestion's do.
//
// - Idempotent: rooms and devices are matched by uid, placements by (device,
//   room, from_ts), readings by (device, ts). A second run adds nothing.
//   Readings older than the raw horizon (retention has run) are not stored
//   raw (retention would delete them) but go into the rollups; a ledger of
//   the imported time span per device keeps a second run from counting them
//   again (store.importReadings).
// - Nothing is dropped silently: every row that cannot be used is counted
//   with its reason (and a few examples) in the summary.
// - The earlier server stored a reading of exactly 0 °C or 0 %RH as NULL
//   (`value || null` in its insert). Its validation accepted only numbers for
//   both values, so a NULL there can only be such a zero: by default it is
//   imported as 0 and counted in the summary; `--nulls=skip` reports those
//   rows as unusable instead.
// - Stop the server first: it caches device ids, and the import writes in
//   chunks that would make its commits wait.

import { HUMIDITY_RANGE, ID_PATTERN, MAX_FUTURE_MS, TEMPERATURE_RANGE } from "../../shared/contract.ts";
import { openLegacySource, type LegacySource } from "../store/legacy-source.ts";
import { openStore, roomUidFromName, type ImportedReading, type Store } from "../store/store.ts";
import { parseCommandArgs } from "./args.ts";
import { createTally, formatSummary, progressBar, type ImportSummary, type Tally } from "./legacy-summary.ts";

/** What to do with a legacy NULL temperature or humidity. */
export type NullPolicy = "zero" | "skip";

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

/** A legacy text column: null when empty. */
const text = (v: unknown) => (v == null || String(v).trim() === "" ? null : String(v));

/** What every phase works with. */
interface Phase {
  source: LegacySource;
  store: Store;
  tally: Tally;
}

/** The imported devices: our uid per legacy device key, or why a key has none. */
interface DeviceKeys {
  uids: Map<unknown, string>;
  problem(key: unknown): string;
}

/** A run of readings of one device in one room, for a device without placement history. */
interface RoomRun {
  room: string;
  from: number;
  /** Its last reading. */
  last: number;
  /** Where the next reading elsewhere (or without a room) was taken; null while the run goes on. */
  end: number | null;
}

/** Rooms, matched by uid; a legacy uid that is not one of ours is made from it (or the name). Returns our uid per legacy key. */
function importRooms({ source, store, tally }: Phase): Map<unknown, string> {
  const { summary, reject } = tally;
  const rooms = new Map<unknown, string>();
  for (const r of source.rooms()) {
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
    rooms.set(r.key, uid);
    if (store.findRoom(uid)) {
      summary.rooms.present++;
      continue;
    }
    store.createRoom({ uid, name: text(r.name) ?? uid, floor: text(r.floor), side: text(r.side) });
    summary.rooms.added++;
  }
  return rooms;
}

/** Devices, matched by uid, unplaced (the placements follow). Calibration offsets are not imported. */
function importDevices({ source, store, tally }: Phase): DeviceKeys {
  const { summary, reject } = tally;
  const uids = new Map<unknown, string>();
  const problems = new Map<unknown, string>();
  let offsets = 0;
  for (const d of source.devices()) {
    summary.devices.found++;
    const uid = d.uid == null ? "" : String(d.uid);
    if (!ID_PATTERN.test(uid)) {
      reject("devices", "uid is not 1-50 characters of A-Z a-z 0-9 _ -", JSON.stringify(uid));
      problems.set(d.key, `its device ${JSON.stringify(uid)} was not imported`);
      continue;
    }
    if ((Number(d.offset_temperature) || 0) !== 0 || (Number(d.offset_humidity) || 0) !== 0) offsets++;
    uids.set(d.key, uid);
    if (store.findDevice(uid)) {
      summary.devices.present++;
      continue;
    }
    store.createDevice({
      uid,
      label: text(d.label),
      model: text(d.model),
      at: parseLegacyTime(d.created_at) ?? store.now(),
      lastSeenAt: parseLegacyTime(d.last_seen_at),
    });
    summary.devices.added++;
  }
  if (offsets > 0) {
    summary.notes.push(
      `${offsets} device(s) had calibration offsets in the earlier database; they were not imported (the earlier server never applied them: the sensors did)`,
    );
  }
  return {
    uids,
    problem: (key) => problems.get(key) ?? `device ${JSON.stringify(key)} is not in the devices table`,
  };
}

/**
 * Placement history, matched by (device, room, from_ts). An open legacy
 * placement ends where this database's history of the device begins; one that
 * overlaps a placement here is refused. Returns the devices that have
 * placement history in the earlier database (their rooms are not rebuilt from readings).
 */
function importPlacements({ source, store, tally }: Phase, rooms: Map<unknown, string>, devices: DeviceKeys): Set<string> {
  const { summary, reject } = tally;
  const placed = new Set<string>();
  for (const p of source.placements()) {
    summary.placements.found++;
    const example = `device ${JSON.stringify(p.device)} room ${JSON.stringify(p.room)} from ${JSON.stringify(p.from_ts)}`;
    const device = devices.uids.get(p.device);
    if (device === undefined) {
      reject("placements", devices.problem(p.device), example);
      continue;
    }
    placed.add(device);
    const room = rooms.get(p.room);
    if (room === undefined) {
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
    const existing = store.devicePlacements(device);
    if (existing.some((e) => e.room_uid === room && e.from_ts === from)) {
      summary.placements.present++;
      continue;
    }
    let end = to;
    if (end === null) {
      const later = existing.filter((e) => e.from_ts >= from).map((e) => e.from_ts);
      if (later.length > 0) {
        end = Math.min(...later);
        summary.notes.push(
          `${device}: the earlier current placement was closed at ${new Date(end).toISOString()}, where this database's placements begin`,
        );
      }
    }
    if (!store.addPlacement(device, room, from, end)) {
      reject("placements", "overlaps a placement already in this database", example);
      continue;
    }
    summary.placements.added++;
  }
  return placed;
}

/**
 * Readings, checked like a sensor's (a time, not more than 24 h ahead, values
 * in range) and stored through the store in chunks of `chunkRows`. For the
 * devices without placement history, follows the room each reading was stored
 * with and returns those runs.
 */
function importReadings(
  { source, store, tally }: Phase,
  keys: { rooms: Map<unknown, string>; devices: DeviceKeys; placed: Set<string> },
  options: { nulls: NullPolicy; chunkRows: number; progress?: (done: number, total: number) => void },
): Map<string, RoomRun[]> {
  const { summary, reject } = tally;
  const total = source.readingCount();
  const future = store.now() + MAX_FUTURE_MS;
  const runs = new Map<string, RoomRun[]>();
  const write = store.importReadings();
  let chunk: ImportedReading[] = [];
  let done = 0;

  const flush = () => {
    const counts = write(chunk);
    summary.readings.added += counts.added;
    summary.readings.present += counts.present;
    summary.readings.rollupsOnly += counts.rollupsOnly;
    chunk = [];
    options.progress?.(done, total);
  };

  /** A value, or the reason it cannot be used. */
  const value = (name: string, v: unknown, [min, max]: readonly [number, number]): number | string => {
    if (v == null) return options.nulls === "zero" ? 0 : `${name} is NULL (--nulls=skip)`;
    if (typeof v !== "number" || !Number.isFinite(v)) return `${name} is not a number`;
    if (v < min || v > max) return `${name} is outside ${min}…${max}`;
    return v;
  };

  /** Follows the runs of readings stored in one room, for a device without placement history. */
  const trackRoom = (device: string, legacyRoom: unknown, ts: number): void => {
    const room = legacyRoom == null ? undefined : keys.rooms.get(legacyRoom);
    let list = runs.get(device);
    if (!list) runs.set(device, (list = []));
    const last = list[list.length - 1];
    if (last && last.end === null) {
      if (last.room === room) {
        last.last = ts;
        return;
      }
      last.end = ts;
    }
    if (room !== undefined) list.push({ room, from: ts, last: ts, end: null });
  };

  for (const r of source.readings()) {
    done++;
    summary.readings.found++;
    const example = `device ${JSON.stringify(r.device)} ts ${JSON.stringify(r.ts)}`;
    const device = keys.devices.uids.get(r.device);
    if (device === undefined) {
      reject("readings", keys.devices.problem(r.device), example);
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
        chunk.push({ deviceUid: device, ts, temperature: t, humidity: h });
        if (!keys.placed.has(device)) trackRoom(device, r.room, ts);
      }
    }
    if (chunk.length >= options.chunkRows) flush();
  }
  flush();
  return runs;
}

/**
 * Placements rebuilt from the readings of devices without placement history
 * (the earlier DELETE removed a device's placements first and then failed on
 * its readings, leaving exactly this): each run of readings in one room,
 * ending where the next reading elsewhere (or without a room) was taken, the
 * last one 1 ms after its last reading. Skipped for a device that has
 * placements here already (an earlier import, or a person).
 */
function rebuildPlacements({ store, tally }: Phase, runs: Map<string, RoomRun[]>): void {
  let devices = 0;
  let placements = 0;
  for (const [device, list] of runs) {
    if (list.length === 0 || store.devicePlacements(device).length > 0) continue;
    devices++;
    for (const run of list) {
      if (store.addPlacement(device, run.room, run.from, run.end ?? run.last + 1)) placements++;
    }
  }
  if (devices > 0) {
    tally.summary.notes.push(
      `${devices} device(s) had readings but no placement history: ${placements} placement(s) rebuilt from the room each reading was stored with`,
    );
  }
}

/**
 * Imports the earlier database at `legacyPath` into the store, phase by
 * phase. `progress` is called with readings done and total. Throws when the
 * file cannot be read as the earlier TechTemp's database.
 */
export function importLegacy(options: {
  legacyPath: string;
  store: Store;
  nulls?: NullPolicy;
  chunkRows?: number;
  progress?: (done: number, total: number) => void;
}): ImportSummary {
  const source = openLegacySource(options.legacyPath);
  const phase: Phase = { source, store: options.store, tally: createTally() };
  try {
    const rooms = importRooms(phase);
    const devices = importDevices(phase);
    const placed = importPlacements(phase, rooms, devices);
    const runs = importReadings(
      phase,
      { rooms, devices, placed },
      { nulls: options.nulls ?? "zero", chunkRows: options.chunkRows ?? 5000, progress: options.progress },
    );
    rebuildPlacements(phase, runs);
  } finally {
    source.close();
  }
  return phase.tally.summary;
}

const IMPORT_USAGE = "usage: bun server.ts import-legacy PATH [--nulls=zero|skip]";
const IMPORT_OPTIONS = { nulls: { type: "string", valid: (v: string) => v === "zero" || v === "skip" } } as const;

/**
 * The `import-legacy` command: imports PATH into the database at `dbPath`.
 * Refuses while a server answers on `httpPort` (it caches device ids).
 * Returns the exit code (2 for bad usage).
 */
export async function runImportLegacy(dbPath: string, args: string[], options: { httpPort?: number } = {}): Promise<number> {
  const { values, positionals, unexpected } = parseCommandArgs(args, IMPORT_OPTIONS, 1);
  if (unexpected !== undefined) {
    console.error(`import-legacy: unexpected argument ${JSON.stringify(unexpected)}\n${IMPORT_USAGE}`);
    return 2;
  }
  const [path] = positionals;
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
  let store: ReturnType<typeof openStore>;
  try {
    // The import is idempotent: a commit lost to a power cut is redone by running it again, so skip the fsyncs.
    store = openStore(dbPath, { synchronous: "NORMAL" });
  } catch (err) {
    console.error(`import-legacy: ${(err as Error).message}`);
    return 1;
  }
  try {
    const summary = importLegacy({
      legacyPath: path,
      store,
      nulls: (values.nulls ?? "zero") as NullPolicy,
      progress: process.stderr.isTTY ? progressBar((s) => process.stderr.write(s)) : undefined,
    });
    console.log(formatSummary(summary, path, dbPath));
    return 0;
  } catch (err) {
    console.error(`import-legacy: ${(err as Error).message}`);
    return 1;
  } finally {
    store.close();
  }
}
