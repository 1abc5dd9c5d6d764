// What `bun server.ts inspect` reads (lib/server/ops/inspect.ts formats it):
// counts, rooms, devices, placements, the last readings, one device's
// details, and the facts the consistency checks look for. On a read-only
// connection of its own, so it is safe beside a running server (WAL lets a
// reader see the last commit without blocking the writer).

import type { Database } from "bun:sqlite";
import { openDatabase } from "./db.ts";
import { fromCenti, type Device } from "./model.ts";

/** How many rows each table holds. */
export interface TableCounts {
  rooms: number;
  devices: number;
  placements: number;
  /** Placements with no end: where the devices are now. */
  activePlacements: number;
  readings: number;
  /** Readings with a flag (taken while the sensor's clock was not synchronised). */
  flaggedReadings: number;
}

/** A room with the number of devices in it now. */
export interface InspectedRoom {
  uid: string;
  name: string;
  floor: string | null;
  side: string | null;
  devices: number;
}

/** A device with the room it is in now (null = unplaced) and what it last reported. */
export interface InspectedDevice {
  uid: string;
  label: string | null;
  room: string | null;
  last_seen_at: number | null;
  state: string | null;
  interval_s: number | null;
  refused_count: number;
}

/** One placement of a device in a room. */
export interface InspectedPlacement {
  device: string;
  room: string;
  room_name: string;
  from_ts: number;
  to_ts: number | null;
}

/** A stored reading, in °C and %. */
export interface InspectedReading {
  device: string;
  ts: number;
  temperature: number;
  humidity: number;
}

/** One device in detail, with how many readings it has. */
export type DeviceDetail = Pick<
  Device,
  | "uid"
  | "label"
  | "home_id"
  | "created_at"
  | "last_seen_at"
  | "state"
  | "interval_s"
  | "version"
  | "refused_count"
  | "last_refusal"
> & { readings: number };

/** Opens the database at `path` read-only for an inspection; `close()` when done. */
export function openInspection(path: string) {
  const db = openDatabase(path, { readonly: true });
  return { ...createInspection(db), close: () => db.close() };
}

/** The inspection queries over an open database. */
function createInspection(db: Database) {
  const count = (sql: string) => db.query<{ n: number }, []>(sql).get()!.n;
  const placements = (where: string) => `
    SELECT d.uid AS device, r.uid AS room, r.name AS room_name, p.from_ts, p.to_ts FROM placements p
    JOIN devices d ON d.id = p.device_id JOIN rooms r ON r.id = p.room_id ${where} ORDER BY d.uid, p.from_ts`;

  return {
    /** The schema version (migrations applied). */
    schemaVersion: (): number => db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version,
    /** How many rows each table holds. */
    counts: (): TableCounts => ({
      rooms: count("SELECT count(*) AS n FROM rooms"),
      devices: count("SELECT count(*) AS n FROM devices"),
      placements: count("SELECT count(*) AS n FROM placements"),
      activePlacements: count("SELECT count(*) AS n FROM placements WHERE to_ts IS NULL"),
      readings: count("SELECT count(*) AS n FROM readings"),
      flaggedReadings: count("SELECT count(*) AS n FROM reading_flags"),
    }),
    /** Every room by name, with the number of devices in it now. */
    rooms: (): InspectedRoom[] =>
      db
        .query<InspectedRoom, []>(
          `SELECT r.uid, r.name, r.floor, r.side,
             (SELECT count(*) FROM placements p WHERE p.room_id = r.id AND p.to_ts IS NULL) AS devices
           FROM rooms r ORDER BY r.name COLLATE NOCASE`,
        )
        .all(),
    /** Every device by uid, with its room now. */
    devices: (): InspectedDevice[] =>
      db
        .query<InspectedDevice, []>(
          `SELECT d.uid, d.label, r.uid AS room, d.last_seen_at, d.state, d.interval_s, d.refused_count
           FROM devices d LEFT JOIN placements p ON p.device_id = d.id AND p.to_ts IS NULL LEFT JOIN rooms r ON r.id = p.room_id
           ORDER BY d.uid`,
        )
        .all(),
    /** Every placement, by device and start. */
    placements: (): InspectedPlacement[] => db.query<InspectedPlacement, []>(placements("")).all(),
    /** The newest `limit` readings of all devices, newest first. */
    lastReadings: (limit: number): InspectedReading[] =>
      db
        .query<{ device: string; ts: number; t: number; h: number }, [number]>(
          "SELECT d.uid AS device, r.ts, r.t, r.h FROM readings r JOIN devices d ON d.id = r.device_id ORDER BY r.ts DESC LIMIT ?",
        )
        .all(limit)
        .map((r) => ({ device: r.device, ts: r.ts, temperature: fromCenti(r.t), humidity: fromCenti(r.h) })),

    /** One device in detail, or null when there is none with this uid. */
    device(uid: string): DeviceDetail | null {
      const d = db.query<DeviceDetail & { id: number }, [string]>("SELECT * FROM devices WHERE uid = ?").get(uid);
      if (!d) return null;
      const readings = db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM readings WHERE device_id = ?").get(d.id)!.n;
      return {
        uid: d.uid,
        label: d.label,
        home_id: d.home_id,
        created_at: d.created_at,
        last_seen_at: d.last_seen_at,
        state: d.state,
        interval_s: d.interval_s,
        version: d.version,
        refused_count: d.refused_count,
        last_refusal: d.last_refusal,
        readings,
      };
    },
    /** One device's placements, oldest first. */
    devicePlacements: (uid: string): InspectedPlacement[] =>
      db.query<InspectedPlacement, [string]>(placements("WHERE d.uid = ?")).all(uid),

    // ---- what the consistency checks look for ----

    /** Rows that point at a row that does not exist. */
    foreignKeyViolations: () => db.query<{ table: string; rowid: number; parent: string }, []>("PRAGMA foreign_key_check").all(),
    /** Devices with more than one open placement, and how many. */
    devicesInSeveralRooms: () =>
      db
        .query<{ uid: string; n: number }, []>(
          `SELECT d.uid, count(*) AS n FROM placements p JOIN devices d ON d.id = p.device_id
           WHERE p.to_ts IS NULL GROUP BY p.device_id HAVING n > 1`,
        )
        .all(),
    /** Uids of the devices with placements that overlap in time. */
    devicesWithOverlappingPlacements: (): string[] =>
      db
        .query<{ uid: string }, []>(
          `SELECT DISTINCT d.uid FROM placements a JOIN placements b ON a.device_id = b.device_id AND a.id < b.id
           JOIN devices d ON d.id = a.device_id
           WHERE a.from_ts < coalesce(b.to_ts, 9e15) AND b.from_ts < coalesce(a.to_ts, 9e15)`,
        )
        .all()
        .map((r) => r.uid),
    /** Uids of the devices in no room now, by uid. */
    unplacedDevices: (): string[] =>
      db
        .query<{ uid: string }, []>(
          "SELECT uid FROM devices d WHERE NOT EXISTS (SELECT 1 FROM placements p WHERE p.device_id = d.id AND p.to_ts IS NULL) ORDER BY uid",
        )
        .all()
        .map((r) => r.uid),
    /** Devices not seen since `ts` (or never), by uid. */
    devicesSilentSince: (ts: number) =>
      db
        .query<{ uid: string; last_seen_at: number | null }, [number]>(
          "SELECT uid, last_seen_at FROM devices WHERE last_seen_at IS NULL OR last_seen_at < ? ORDER BY uid",
        )
        .all(ts),
  };
}

/** An open inspection. */
export type Inspection = ReturnType<typeof openInspection>;
