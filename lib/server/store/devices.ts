// The home as a person arranges it: rooms, devices, and placements (which
// room a device was in, when). Every change to a device is announced as a
// `device` event after it is committed. Errors are domain errors naming the
// field at fault; the HTTP layer decides their status.

import type { HeldRollups } from "./held-rollups.ts";
import type { Database } from "bun:sqlite";
import { conflict, DomainError, invalid, notFound } from "../../shared/errors.ts";
import { ID_PATTERN } from "../../shared/contract.ts";
import type { DeviceChange, Events } from "./events.ts";
import type { Device, Placement, Room } from "./model.ts";
import type { Registry } from "./registry.ts";

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

/** What registering a device takes: its uid and a room (by name, created when missing, or by uid). */
export interface NewDevice {
  uid: string;
  roomName?: string;
  roomUid?: string;
  label?: string | null;
  /** When it was placed (default now); also when it was created, for a device not known yet. */
  at?: number;
  /** Its sensor model, where another system knew it (import-legacy). */
  model?: string | null;
  /** When another system last heard from it (import-legacy); never moves last_seen_at back. */
  lastSeenAt?: number | null;
}

/** What creating a room takes; its uid comes from the name unless given. */
export interface NewRoom {
  name: string;
  uid?: string;
  floor?: string | null;
  side?: string | null;
}

/**
 * A room uid from its name: accents stripped, lowercase, runs of other
 * characters become `-` (the earlier server's rule). "Salle à manger" → "salle-a-manger".
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

const PLACEMENT_SELECT = `
  SELECT p.id, d.uid AS device_uid, r.uid AS room_uid, r.name AS room_name, p.from_ts, p.to_ts
  FROM placements p JOIN devices d ON d.id = p.device_id JOIN rooms r ON r.id = p.room_id`;

/** Creates the rooms, devices and placements over an open database. */
export function createDevices(
  db: Database,
  deps: { now: () => number; registry: Registry; events: Events; held?: Pick<HeldRollups, "forgetDevice"> },
) {
  const { now, registry, events } = deps;
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
    devicesInRoom: db.query<Device, [string]>(`${DEVICE_SELECT} WHERE r.uid = ? ORDER BY d.uid`),
    deleteDevice: db.query<null, [number]>("DELETE FROM devices WHERE id = ?"),
    setLabel: db.query<null, [string | null, number]>("UPDATE devices SET label = ? WHERE id = ?"),
    setModel: db.query<null, [string | null, number]>("UPDATE devices SET model = ? WHERE id = ?"),
    touch: db.query<null, [number, number]>(
      "UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, ?1), ?1) WHERE id = ?2",
    ),
    setConfig: db.query<null, [number | null, number, number, number]>(
      "UPDATE devices SET config_interval_s = ?, temperature_offset = ?, humidity_offset = ? WHERE id = ?",
    ),

    openPlacement: db.query<{ id: number; room_id: number; from_ts: number }, [number]>(
      "SELECT id, room_id, from_ts FROM placements WHERE device_id = ? AND to_ts IS NULL",
    ),
    closePlacement: db.query<null, [number, number]>("UPDATE placements SET to_ts = ? WHERE id = ?"),
    insertPlacement: db.query<null, [number, number, number]>(
      "INSERT INTO placements (device_id, room_id, from_ts) VALUES (?, ?, ?)",
    ),
    // An interval is [from_ts, to_ts), no end = open: two overlap when each begins before the other ends.
    overlapping: db.query<{ id: number }, [number, number, number | null]>(
      "SELECT id FROM placements WHERE device_id = ?1 AND ?2 < coalesce(to_ts, 9e15) AND from_ts < coalesce(?3, 9e15) LIMIT 1",
    ),
    insertInterval: db.query<null, [number, number, number, number | null]>(
      "INSERT INTO placements (device_id, room_id, from_ts, to_ts) VALUES (?, ?, ?, ?)",
    ),
    placementsOfDevice: db.query<Placement, [number]>(`${PLACEMENT_SELECT} WHERE p.device_id = ? ORDER BY p.from_ts, p.id`),
    placementsOfRoom: db.query<Placement, [number]>(`${PLACEMENT_SELECT} WHERE p.room_id = ? ORDER BY p.from_ts, p.id`),
  };

  function requireRoom(uid: string, field: string | null = null): Room {
    const room = q.roomByUid.get(uid);
    if (room) return room;
    throw field === null ? notFound("room", uid) : fieldError(notFound("room", uid), field);
  }

  function requireDevice(uid: string): Device {
    const device = q.deviceByUid.get(uid);
    if (!device) throw notFound("device", uid);
    return device;
  }

  function createRoomRow(input: NewRoom): Room {
    const uid = input.uid ?? roomUidFromName(input.name);
    const field = input.uid !== undefined ? "room_uid" : "room_name";
    if (!ID_PATTERN.test(uid)) {
      throw input.uid !== undefined
        ? invalid(field, "must be 1-50 characters of A-Z a-z 0-9 _ -")
        : invalid(field, "must contain at least one letter or digit");
    }
    if (q.roomByUid.get(uid)) throw fieldError(conflict(`room ${JSON.stringify(uid)} already exists`), field);
    const room = q.insertRoom.get(uid, input.name, input.floor ?? null, input.side ?? null, now())!;
    newRooms.push(uid);
    return room;
  }

  /** Rooms created by the change in progress (announced once it is committed). */
  let newRooms: string[] = [];
  /** Announces the rooms a committed change created; forgets them after a rolled-back one. */
  function announceRooms(committed: boolean): void {
    const created = newRooms;
    newRooms = [];
    if (committed) for (const roomUid of created) events.emit("room", { kind: "created", roomUid });
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

  /** The room a patch names: a Room, null (no room), or undefined (the patch does not move it). */
  function resolveRoom(patch: { roomUid?: string | null; roomName?: string }): Room | null | undefined {
    if (patch.roomUid !== undefined) return patch.roomUid === null ? null : requireRoom(patch.roomUid, "room_uid");
    if (patch.roomName !== undefined) {
      return q.roomByUid.get(roomUidFromName(patch.roomName)) ?? createRoomRow({ name: patch.roomName });
    }
    return undefined;
  }

  const emit = (change: DeviceChange) => events.emit("device", change);

  const createDeviceTx = db.transaction((input: NewDevice): Device => {
    const at = input.at ?? now();
    const existing = q.deviceByUid.get(input.uid);
    // The earlier server's 409 body: {"error":"Device already exists","device_uid":…}.
    if (existing && existing.room_id !== null) {
      throw fieldError(conflict("Device already exists", { device_uid: input.uid }), "device_uid");
    }
    // The earlier server (and the README) create the room when it is missing, under the uid given if one is.
    const room =
      input.roomUid !== undefined && input.roomName !== undefined && !q.roomByUid.get(input.roomUid)
        ? createRoomRow({ uid: input.roomUid, name: input.roomName })
        : resolveRoom({ roomUid: input.roomUid, roomName: input.roomName });
    const id = existing ? existing.id : registry.ensure(input.uid, at);
    if (input.label !== undefined) q.setLabel.run(input.label, id);
    if (input.model !== undefined) q.setModel.run(input.model, id);
    if (input.lastSeenAt != null) q.touch.run(input.lastSeenAt, id);
    if (room) place(id, room.id, at);
    return q.deviceByUid.get(input.uid)!;
  });

  const updateDeviceTx = db.transaction((device: Device, patch: DevicePatch): boolean => {
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
    return configChanged;
  });

  return {
    // ---- rooms ----

    /** Every room, by name. */
    listRooms: (): Room[] => q.rooms.all(),
    /** One room; not_found otherwise. */
    getRoom: (uid: string): Room => requireRoom(uid),
    /** A room or null, without throwing. */
    findRoom: (uid: string): Room | null => q.roomByUid.get(uid),
    /** Creates a room; its uid comes from the name unless given. A conflict if it exists. */
    createRoom(input: NewRoom): Room {
      try {
        const room = createRoomRow(input);
        announceRooms(true);
        return room;
      } catch (err) {
        announceRooms(false);
        throw err;
      }
    },
    /** Renames a room or sets its floor and side. */
    updateRoom(uid: string, patch: { name?: string; floor?: string | null; side?: string | null }): Room {
      const room = requireRoom(uid);
      const updated = q.updateRoom.get(
        patch.name ?? room.name,
        patch.floor === undefined ? room.floor : patch.floor,
        patch.side === undefined ? room.side : patch.side,
        uid,
      )!;
      events.emit("room", { kind: "updated", roomUid: uid });
      // Its devices' cards show the room's name.
      for (const device of q.devicesInRoom.all(uid)) {
        emit({ kind: "updated", deviceUid: device.uid, device, roomBefore: uid, configChanged: false });
      }
      return updated;
    },
    /**
     * Deletes a room that has no device in it now (a conflict otherwise). Its
     * past placements go with it; the readings stay with their devices.
     */
    deleteRoom(uid: string): void {
      const room = requireRoom(uid);
      const n = q.roomDeviceCount.get(room.id)!.n;
      if (n > 0)
        throw conflict(
          `room ${JSON.stringify(uid)} still has ${n} device${n > 1 ? "s" : ""}; move ${n > 1 ? "them" : "it"} first`,
        );
      q.deleteRoom.run(room.id);
      events.emit("room", { kind: "deleted", roomUid: uid });
    },
    /** Placements (past and current) of the devices in a room. */
    roomPlacements: (uid: string): Placement[] => q.placementsOfRoom.all(requireRoom(uid).id),

    // ---- devices ----

    /** Every device with its current room. */
    listDevices: (): Device[] => q.devices.all(),
    /** One device; not_found otherwise. */
    getDevice: requireDevice,
    /** A device or null, without throwing. */
    findDevice: (uid: string): Device | null => q.deviceByUid.get(uid),
    /**
     * Registers a device in a room (created when missing). A device that is
     * known but unplaced (it published before anyone registered it) is placed;
     * a device that is already in a room is a conflict.
     */
    createDevice(input: NewDevice): Device {
      const before = q.deviceByUid.get(input.uid)?.room_uid ?? null;
      let device: Device;
      try {
        device = createDeviceTx(input);
        announceRooms(true);
      } catch (err) {
        announceRooms(false);
        throw err;
      }
      emit({ kind: "created", deviceUid: device.uid, device, roomBefore: before, configChanged: false });
      return device;
    },
    /** Renames, moves or reconfigures a device; returns it as it is now. */
    updateDevice(uid: string, patch: DevicePatch): Device {
      const before = requireDevice(uid);
      let configChanged: boolean;
      try {
        configChanged = updateDeviceTx(before, patch);
        announceRooms(true);
      } catch (err) {
        announceRooms(false);
        throw err;
      }
      const device = q.deviceByUid.get(uid)!;
      emit({ kind: "updated", deviceUid: uid, device, roomBefore: before.room_uid, configChanged });
      return device;
    },
    /** Deletes a device with its placements and readings. */
    deleteDevice(uid: string): void {
      const device = requireDevice(uid);
      q.deleteDevice.run(device.id);
      registry.forget(uid);
      deps.held?.forgetDevice(device.id);
      emit({ kind: "deleted", deviceUid: uid, device: null, roomBefore: device.room_uid, configChanged: false });
    },
    /** A device's placement history, oldest first. */
    devicePlacements: (uid: string): Placement[] => q.placementsOfDevice.all(requireDevice(uid).id),
    /**
     * Records a placement whose times are known, for history brought in from
     * elsewhere (import-legacy): a past one, or the current one when `toTs` is
     * null. Returns false and records nothing when it overlaps one of the
     * device's placements (a device is in one room at a time).
     */
    addPlacement(deviceUid: string, roomUid: string, fromTs: number, toTs: number | null): boolean {
      const device = requireDevice(deviceUid);
      const room = requireRoom(roomUid);
      if (q.overlapping.get(device.id, fromTs, toTs)) return false;
      q.insertInterval.run(device.id, room.id, fromTs, toTs);
      const after = q.deviceByUid.get(deviceUid)!;
      emit({ kind: "updated", deviceUid, device: after, roomBefore: device.room_uid, configChanged: false });
      return true;
    },
  };
}

/** The same error, with the input field at fault named (for forms that show it beside the field). */
function fieldError(err: DomainError, field: string): DomainError {
  return new DomainError(err.kind, err.message, field, err.extra);
}
