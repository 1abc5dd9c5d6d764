// The store: every SQL statement TechTemp runs against its own database, as
// prepared statements, behind functions named for what they do. Times are
// epoch milliseconds here; the API turns them into ISO-8601 strings.

import type { Database } from "bun:sqlite";
import { conflict, invalid, notFound } from "../../shared/errors.ts";
import { ID_PATTERN, type Reading, type Status } from "../../shared/contract.ts";
import type { Log } from "../../shared/log.ts";
import { createRollups } from "./rollups.ts";

/** A room as stored. */
export interface Room {
  id: number;
  uid: string;
  name: string;
  floor: string | null;
  side: string | null;
  created_at: number;
}

/** A device as stored, with its current room (null = unplaced). */
export interface Device {
  id: number;
  uid: string;
  /** The home id in the device's topics (null until it first publishes). */
  home_id: string | null;
  label: string | null;
  model: string | null;
  created_at: number;
  last_seen_at: number | null;
  state: "online" | "offline" | null;
  state_at: number | null;
  interval_s: number | null;
  version: string | null;
  sensor_failures: number | null;
  last_error: string | null;
  config_interval_s: number | null;
  temperature_offset: number;
  humidity_offset: number;
  refused_count: number;
  last_refusal: string | null;
  last_refusal_at: number | null;
  room_id: number | null;
  room_uid: string | null;
  room_name: string | null;
  placed_at: number | null;
}

/** One interval of a device in a room. */
export interface Placement {
  id: number;
  device_uid: string;
  room_uid: string;
  room_name: string;
  from_ts: number;
  to_ts: number | null;
}

/** A stored reading, in the API's units. */
export interface StoredReading {
  device_uid: string;
  room_uid: string | null;
  ts: number;
  temperature: number;
  humidity: number;
}

/** A reading waiting in the ingest queue. */
export interface IncomingReading {
  homeId: string;
  deviceUid: string;
  reading: Reading;
  /** When the broker received it (becomes the device's last_seen_at). */
  receivedAt: number;
}

/** What changing a device may set. */
export interface DevicePatch {
  label?: string | null;
  /** Move to this room (by uid); null = take it out of its room. */
  roomUid?: string | null;
  /** Move to the room with this name, creating it when missing. */
  roomName?: string;
  /** When the move happened (default now); may be in the past. */
  movedAt?: number;
  config_interval_s?: number | null;
  temperature_offset?: number;
  humidity_offset?: number;
}

/** Hundredths, the unit readings are stored in (2 bytes instead of 8). */
export const toCenti = (v: number) => Math.round(v * 100);
export const fromCenti = (v: number) => v / 100;

/**
 * A room uid from its name (SPEC): accents stripped, lowercase, runs of other
 * characters become `-`. "Salle à manger" → "salle-a-manger".
 */
export function roomUidFromName(name: string): string {
  return name
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 50)
    .replace(/-+$/, "");
}

const DEVICE_SELECT = `
  SELECT d.*, r.id AS room_id, r.uid AS room_uid, r.name AS room_name, p.from_ts AS placed_at
  FROM devices d
  LEFT JOIN placements p ON p.device_id = d.id AND p.to_ts IS NULL
  LEFT JOIN rooms r ON r.id = p.room_id`;

/** Creates the store over an open database. `now` is injectable for tests. */
export function createStore(db: Database, options: { now?: () => number; log?: Log } = {}) {
  const now = options.now ?? Date.now;
  const log = options.log;

  const q = {
    roomByUid: db.query<Room, [string]>("SELECT * FROM rooms WHERE uid = ?"),
    rooms: db.query<Room, []>("SELECT * FROM rooms ORDER BY name COLLATE NOCASE, uid"),
    insertRoom: db.query<Room, [string, string, string | null, string | null, number]>(
      "INSERT INTO rooms (uid, name, floor, side, created_at) VALUES (?, ?, ?, ?, ?) RETURNING *",
    ),
    updateRoom: db.query<Room, [string, string | null, string | null, string]>(
      "UPDATE rooms SET name = ?, floor = ?, side = ? WHERE uid = ? RETURNING *",
    ),
    deleteRoom: db.query<null, [number]>("DELETE FROM rooms WHERE id = ?"),
    roomDeviceCount: db.query<{ n: number }, [number]>(
      "SELECT count(*) AS n FROM placements WHERE room_id = ? AND to_ts IS NULL",
    ),

    devices: db.query<Device, []>(`${DEVICE_SELECT} ORDER BY d.uid`),
    deviceByUid: db.query<Device, [string]>(`${DEVICE_SELECT} WHERE d.uid = ?`),
    deviceIds: db.query<{ id: number; uid: string; home_id: string | null }, []>("SELECT id, uid, home_id FROM devices"),
    setHome: db.query<null, [string, number]>("UPDATE devices SET home_id = ? WHERE id = ?"),
    // Returns the existing row too (the no-op update makes RETURNING see it): another process
    // (import-legacy) may have added the device since this one filled its cache.
    insertDevice: db.query<{ id: number; home_id: string | null }, [string, string | null, string | null, number]>(
      `INSERT INTO devices (uid, label, model, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (uid) DO UPDATE SET uid = excluded.uid RETURNING id, home_id`,
    ),
    deleteDevice: db.query<null, [number]>("DELETE FROM devices WHERE id = ?"),
    setLabel: db.query<null, [string | null, number]>("UPDATE devices SET label = ? WHERE id = ?"),
    setConfig: db.query<null, [number | null, number, number, number]>(
      "UPDATE devices SET config_interval_s = ?, temperature_offset = ?, humidity_offset = ? WHERE id = ?",
    ),
    touch: db.query<null, [number, number]>("UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), ?1) WHERE id = ?2"),
    setStatus: db.query<null, [string, number, number | null, string | null, number | null, string | null, number]>(
      `UPDATE devices SET state = ?1, state_at = ?2,
         interval_s = coalesce(?3, interval_s), version = coalesce(?4, version),
         -- a last will says nothing about the sensor: keep what the device reported last
         sensor_failures = CASE WHEN ?1 = 'online' THEN ?5 ELSE sensor_failures END,
         last_error = CASE WHEN ?1 = 'online' THEN ?6 ELSE last_error END,
         last_seen_at = max(coalesce(last_seen_at, 0), ?2)
       WHERE id = ?7`,
    ),
    refuse: db.query<null, [string, number, number]>(
      `UPDATE devices SET refused_count = refused_count + 1, last_refusal = ?1, last_refusal_at = ?2,
         last_seen_at = max(coalesce(last_seen_at, 0), ?2)
       WHERE id = ?3`,
    ),

    openPlacement: db.query<{ id: number; room_id: number; from_ts: number }, [number]>(
      "SELECT id, room_id, from_ts FROM placements WHERE device_id = ? AND to_ts IS NULL",
    ),
    closePlacement: db.query<null, [number, number]>("UPDATE placements SET to_ts = ? WHERE id = ?"),
    insertPlacement: db.query<null, [number, number, number]>(
      "INSERT INTO placements (device_id, room_id, from_ts) VALUES (?, ?, ?)",
    ),
    placementsOfDevice: db.query<Placement, [number]>(
      `SELECT p.id, d.uid AS device_uid, r.uid AS room_uid, r.name AS room_name, p.from_ts, p.to_ts
       FROM placements p JOIN devices d ON d.id = p.device_id JOIN rooms r ON r.id = p.room_id
       WHERE p.device_id = ? ORDER BY p.from_ts, p.id`,
    ),
    placementsOfRoom: db.query<Placement, [number]>(
      `SELECT p.id, d.uid AS device_uid, r.uid AS room_uid, r.name AS room_name, p.from_ts, p.to_ts
       FROM placements p JOIN devices d ON d.id = p.device_id JOIN rooms r ON r.id = p.room_id
       WHERE p.room_id = ? ORDER BY p.from_ts, p.id`,
    ),

    insertReading: db.query<null, [number, number, number, number]>(
      "INSERT OR IGNORE INTO readings (device_id, ts, t, h) VALUES (?, ?, ?, ?)",
    ),
    insertFlag: db.query<null, [number, number, number]>(
      "INSERT OR IGNORE INTO reading_flags (device_id, ts, flags) VALUES (?, ?, ?)",
    ),
  };

  const rollups = createRollups(db);

  // uid → id and home of every device, so ingestion does not look each one up.
  const deviceIdCache = new Map<string, { id: number; home: string | null }>();
  for (const { id, uid, home_id } of q.deviceIds.all()) deviceIdCache.set(uid, { id, home: home_id });

  /** Listeners told about readings right after they are committed (SSE, rollups, alerts). */
  const readingListeners = new Set<(stored: { deviceId: number; deviceUid: string; reading: Reading }[]) => void>();

  function requireRoom(uid: string): Room {
    const room = q.roomByUid.get(uid);
    if (!room) throw notFound("room", uid);
    return room;
  }

  function requireDevice(uid: string): Device {
    const device = q.deviceByUid.get(uid);
    if (!device) throw notFound("device", uid);
    return device;
  }

  /**
   * Finds a device's id, registering an unknown device as unplaced. `home` is
   * the home id it publishes under (remembered so config reaches it).
   */
  function ensureDevice(uid: string, at: number, home: string | null = null): number {
    const cached = deviceIdCache.get(uid);
    if (cached === undefined) {
      const row = q.insertDevice.get(uid, null, null, at)!;
      if (home !== null && row.home_id !== home) q.setHome.run(home, row.id);
      deviceIdCache.set(uid, { id: row.id, home: home ?? row.home_id });
      return row.id;
    }
    if (home !== null && cached.home !== home) {
      q.setHome.run(home, cached.id);
      cached.home = home;
    }
    return cached.id;
  }

  function createRoomRow(input: { name: string; uid?: string; floor?: string | null; side?: string | null }): Room {
    const uid = input.uid ?? roomUidFromName(input.name);
    if (!ID_PATTERN.test(uid)) {
      throw input.uid !== undefined
        ? invalid("room_uid", "must be 1-50 characters of A-Z a-z 0-9 _ -")
        : invalid("room_name", "must contain at least one letter or digit");
    }
    if (q.roomByUid.get(uid)) throw conflict(`room ${JSON.stringify(uid)} already exists`);
    return q.insertRoom.get(uid, input.name, input.floor ?? null, input.side ?? null, now())!;
  }

  /** Puts a device in a room from `at` on, closing its open placement. */
  function place(deviceId: number, roomId: number | null, at: number): void {
    const open = q.openPlacement.get(deviceId);
    if (open && open.room_id === roomId) return;
    if (open) {
      if (at < open.from_ts) {
        throw invalid(
          "moved_at",
          `${new Date(at).toISOString()} is before the device's current placement began (${new Date(open.from_ts).toISOString()})`,
        );
      }
      q.closePlacement.run(at, open.id);
    }
    if (roomId !== null) q.insertPlacement.run(deviceId, roomId, at);
  }

  function resolveRoom(patch: { roomUid?: string | null; roomName?: string }): Room | null | undefined {
    if (patch.roomUid !== undefined) return patch.roomUid === null ? null : requireRoom(patch.roomUid);
    if (patch.roomName !== undefined) {
      return q.roomByUid.get(roomUidFromName(patch.roomName)) ?? createRoomRow({ name: patch.roomName });
    }
    return undefined;
  }

  /**
   * Listeners told when a device's room, label or settings changed (the pages' live cards),
   * with the room it was in before the change (null = none).
   */
  const deviceListeners = new Set<(deviceUid: string, roomBefore: string | null) => void>();
  function deviceChanged(uid: string, roomBefore: string | null): void {
    for (const listener of deviceListeners) {
      try {
        listener(uid, roomBefore);
      } catch (err) {
        log?.error("a device listener failed", { device: uid, error: err as Error });
      }
    }
  }

  const createDeviceTx = db.transaction(
    (input: { uid: string; roomName?: string; roomUid?: string; label?: string | null; at?: number }): Device => {
      const at = input.at ?? now();
      const existing = q.deviceByUid.get(input.uid);
      // The earlier server's 409 body: {"error":"Device already exists","device_uid":…}.
      if (existing && existing.room_id !== null) throw conflict("Device already exists", { device_uid: input.uid });
      const room = resolveRoom({ roomUid: input.roomUid, roomName: input.roomName });
      const id = existing ? existing.id : ensureDevice(input.uid, at);
      if (input.label !== undefined) q.setLabel.run(input.label, id);
      if (room) place(id, room.id, at);
      return q.deviceByUid.get(input.uid)!;
    },
  );

  const updateDeviceTx = db.transaction((uid: string, patch: DevicePatch): { device: Device; configChanged: boolean } => {
    const device = requireDevice(uid);
    if (patch.label !== undefined) q.setLabel.run(patch.label, device.id);
    const room = resolveRoom(patch);
    if (room !== undefined) {
      const at = patch.movedAt ?? now();
      if (at > now() + 60_000) throw invalid("moved_at", "must not be in the future");
      place(device.id, room ? room.id : null, at);
    }
    const configChanged =
      (patch.config_interval_s !== undefined && patch.config_interval_s !== device.config_interval_s) ||
      (patch.temperature_offset !== undefined && patch.temperature_offset !== device.temperature_offset) ||
      (patch.humidity_offset !== undefined && patch.humidity_offset !== device.humidity_offset);
    if (configChanged) {
      q.setConfig.run(
        patch.config_interval_s === undefined ? device.config_interval_s : patch.config_interval_s,
        patch.temperature_offset ?? device.temperature_offset,
        patch.humidity_offset ?? device.humidity_offset,
        device.id,
      );
    }
    return { device: q.deviceByUid.get(uid)!, configChanged };
  });

  return {
    db,
    now,

    // ---- rooms ----

    /** Every room, by name. */
    listRooms: (): Room[] => q.rooms.all(),
    /** One room or 404. */
    getRoom: requireRoom,
    /** Creates a room; its uid comes from the name unless given. 409 if it exists. */
    createRoom: (input: { name: string; uid?: string; floor?: string | null; side?: string | null }): Room =>
      createRoomRow(input),
    /** Renames a room or sets its floor and side. */
    updateRoom(uid: string, patch: { name?: string; floor?: string | null; side?: string | null }): Room {
      const room = requireRoom(uid);
      const updated = q.updateRoom.get(
        patch.name ?? room.name,
        patch.floor === undefined ? room.floor : patch.floor,
        patch.side === undefined ? room.side : patch.side,
        uid,
      )!;
      // Its devices' cards show the room's name.
      for (const d of q.devices.all()) if (d.room_uid === uid) deviceChanged(d.uid, uid);
      return updated;
    },
    /**
     * Deletes a room that has no device in it now (409 otherwise). Its past
     * placements go with it; the readings stay with their devices.
     */
    deleteRoom(uid: string): void {
      const room = requireRoom(uid);
      const n = q.roomDeviceCount.get(room.id)!.n;
      if (n > 0)
        throw conflict(
          `room ${JSON.stringify(uid)} still has ${n} device${n > 1 ? "s" : ""}; move ${n > 1 ? "them" : "it"} first`,
        );
      q.deleteRoom.run(room.id);
    },
    /** Placements (past and current) of the devices in a room. */
    roomPlacements: (uid: string): Placement[] => q.placementsOfRoom.all(requireRoom(uid).id),

    // ---- devices ----

    /** Every device with its current room. */
    listDevices: (): Device[] => q.devices.all(),
    /** One device or 404. */
    getDevice: requireDevice,
    /** A device or null, without throwing. */
    findDevice: (uid: string): Device | null => q.deviceByUid.get(uid),
    /**
     * Registers a device in a room (created when missing). A device that is
     * known but unplaced (it published before anyone registered it) is placed;
     * a device that is already in a room is a 409.
     */
    createDevice(input: { uid: string; roomName?: string; roomUid?: string; label?: string | null; at?: number }): Device {
      const before = q.deviceByUid.get(input.uid)?.room_uid ?? null;
      const device = createDeviceTx(input);
      deviceChanged(device.uid, before);
      return device;
    },
    /** Renames, moves or reconfigures a device. Returns it, and whether its config changed. */
    updateDevice(uid: string, patch: DevicePatch): { device: Device; configChanged: boolean } {
      const before = requireDevice(uid).room_uid;
      const result = updateDeviceTx(uid, patch);
      deviceChanged(uid, before);
      return result;
    },
    /** Deletes a device with its placements and readings. */
    deleteDevice(uid: string): void {
      const device = requireDevice(uid);
      q.deleteDevice.run(device.id);
      deviceIdCache.delete(uid);
      deviceChanged(uid, device.room_uid);
    },
    /**
     * Calls `listener` with the uid of a device whose room, label or settings changed and the room
     * it was in before (null = none); returns an unsubscribe.
     */
    onDeviceChange(listener: (deviceUid: string, roomBefore: string | null) => void): () => void {
      deviceListeners.add(listener);
      return () => deviceListeners.delete(listener);
    },
    /** A device's placement history, oldest first. */
    devicePlacements: (uid: string): Placement[] => q.placementsOfDevice.all(requireDevice(uid).id),

    // ---- what devices send ----

    /**
     * Stores a batch of readings in one transaction (group commit): unknown
     * devices are registered as unplaced, a reading already stored (same
     * device and ts) is ignored. Throws when the database cannot commit; then
     * nothing of the batch is stored.
     */
    insertReadings(batch: IncomingReading[]): void {
      const stored: { deviceId: number; deviceUid: string; reading: Reading }[] = [];
      const newDevices: string[] = [];
      try {
        db.transaction(() => {
          // Hourly and daily rollups change in the same commit as the readings (lib/server/store/rollups.ts).
          const rollup = rollups.accumulator();
          // last_seen_at once per device and batch, not once per reading.
          const seen = new Map<number, number>();
          for (const { homeId, deviceUid, reading, receivedAt } of batch) {
            const known = deviceIdCache.has(deviceUid);
            const id = ensureDevice(deviceUid, receivedAt, homeId);
            if (!known) newDevices.push(deviceUid);
            const t = toCenti(reading.temperature_c);
            const h = toCenti(reading.humidity_pct);
            const changes = q.insertReading.run(id, reading.ts, t, h).changes;
            if (reading.clock_synced === false) q.insertFlag.run(id, reading.ts, 1);
            seen.set(id, Math.max(seen.get(id) ?? 0, receivedAt));
            if (changes > 0) {
              stored.push({ deviceId: id, deviceUid, reading });
              rollup.add(id, reading.ts, t, h);
            }
          }
          for (const [id, at] of seen) q.touch.run(at, id);
          rollup.write();
        })();
      } catch (err) {
        // The transaction rolled back: forget devices it had registered.
        for (const uid of newDevices) deviceIdCache.delete(uid);
        throw err;
      }
      // The batch is committed whatever a listener does: its error is logged, not thrown
      // (a throw here would make the broker withhold PUBACKs for stored readings).
      if (stored.length > 0) {
        for (const listener of readingListeners) {
          try {
            listener(stored);
          } catch (err) {
            log?.error("a reading listener failed", { error: err as Error });
          }
        }
      }
    },
    /** Calls `listener` with each committed batch of new readings; returns an unsubscribe. */
    onReadings(listener: (stored: { deviceId: number; deviceUid: string; reading: Reading }[]) => void): () => void {
      readingListeners.add(listener);
      return () => readingListeners.delete(listener);
    },
    /** Records a retained status message (birth or last will). */
    applyStatus(homeId: string, deviceUid: string, status: Status, at: number): void {
      const id = ensureDevice(deviceUid, at, homeId);
      q.setStatus.run(
        status.state,
        at,
        status.interval_s ?? null,
        status.version ?? null,
        status.sensor_failures ?? null,
        status.last_error ?? null,
        id,
      );
    },
    /** Counts a refused reading against its device, with the reason. */
    recordRefusal(homeId: string, deviceUid: string, reason: string, at: number): void {
      q.refuse.run(reason, at, ensureDevice(deviceUid, at, homeId));
    },
  };
}

/** The store's interface, for modules that take it as a dependency. */
export type Store = ReturnType<typeof createStore>;
