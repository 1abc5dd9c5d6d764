// What the dashboard shows about each device, kept current in memory, and
// the notice that something changed (the pages push it by Server-Sent Events).
//
// A device's summary (latest reading, the reading before it, and its last
// 24 h in 15-minute slots: count, sum, min, max) is read from SQLite once,
// then updated from every commit (the store's `readings` event), so rendering
// the dashboard reads no readings at all: ≤ 96 slot lookups per device instead
// of scanning a day of rows (bench/pages.ts measures both). The same cache
// answers the API's latest readings. A summary is read again after an hour,
// which also picks up rows written by other means (an import run beside the
// server).

import { comfort, type Comfort } from "./comfort.ts";
import { expectedIntervalS, freshness, type Freshness } from "./freshness.ts";
import type { Log } from "../../shared/log.ts";
import { fromCenti, toCenti, type Device, type RecentSlot, type Store } from "../store/store.ts";
import { createZone, systemTimeZone, type Zone } from "../history/zone.ts";

/** Width of a sparkline slot. 15 minutes: every time zone's midnight falls on a slot boundary. */
export const SLOT_MS = 15 * 60_000;
/** Slots in the 24 h sparkline. */
export const SPARK_SLOTS = 96;
const WINDOW_MS = SPARK_SLOTS * SLOT_MS;
/** A summary older than this is read again from the database. */
const RELOAD_MS = 3_600_000;
/** Changes arriving within this many ms are pushed together. */
const COALESCE_MS = 20;

/** A device's recent readings as the dashboard shows them. */
export interface DeviceLive {
  freshness: Freshness;
  /** The interval its status is measured in (seconds). */
  intervalS: number;
  last: { ts: number; temperature: number; humidity: number } | null;
  /** Lowest and highest values since midnight in the home's zone (and since it was placed in its room). */
  today: { tMin: number; tMax: number; hMin: number; hMax: number } | null;
  /** Change over the last hour: the latest reading minus the mean of the quarter hour an hour before it (null: no reading then). */
  trend: { temperature: number; humidity: number } | null;
  comfort: Comfort | null;
  /** Mean temperature per 15-minute slot over the last 24 h, oldest first; null = no reading. */
  spark: (number | null)[];
}

/** The latest reading of one device, with the room it was in when it was taken (null = none). */
export interface LatestReading {
  device_uid: string;
  room_uid: string | null;
  ts: number;
  temperature: number;
  humidity: number;
}

/** Which cards changed: rooms by uid, and whether the unplaced banner did. */
export interface LiveChange {
  rooms: Set<string>;
  unplaced: boolean;
  /** Devices whose own row or summary changed (a reading, a status, a move, a rename). */
  devices: Set<string>;
  /** Whether the set of rooms changed (created, renamed, deleted): the dashboard lays its cards out again. */
  layout: boolean;
  /** Counter of changes so far; a page rendered at version v has seen every change up to v. */
  version: number;
}

interface Recent {
  loadedAt: number;
  /** Newest reading, values in hundredths. */
  last: { ts: number; t: number; h: number } | null;
  /** Timestamp of the reading before it (its spacing tells the earlier agent's interval). */
  prevTs: number | null;
  slots: Map<number, RecentSlot>;
}

/** Midnight of the day holding `ts` in `zone` (the home's; default the system's). */
export function startOfDay(ts: number, zone: Zone = createZone(systemTimeZone())): number {
  return zone.startOfDay(ts);
}

const slotOf = (ts: number) => Math.floor(ts / SLOT_MS) * SLOT_MS;

/**
 * Creates the live summaries. Subscribes to the store's events (readings,
 * device changes, status messages); `close()` unsubscribes.
 */
export function createLive(deps: {
  store: Pick<Store, "on" | "findDevice" | "recent" | "now">;
  log: Log;
  now?: () => number;
  /** The home's calendar ("today"); default the system's zone. */
  zone?: Zone;
}) {
  const { store, log } = deps;
  const zone = deps.zone ?? createZone(systemTimeZone());
  const now = deps.now ?? store.now;
  const queries = store.recent;
  const cache = new Map<number, Recent>();
  const listeners = new Set<(change: LiveChange) => void>();
  /** The room each device's card was last pushed for (null = banner), to refresh the old card after a move. */
  const shownIn = new Map<string, string | null>();
  /** Rooms devices left since the last push (null = the banner): a page rendered meanwhile shows them there. */
  const leftRooms = new Set<string | null>();
  /** Devices moved, renamed or deleted since the last push: their room is read again. */
  const moved = new Set<string>();
  const dirty = new Set<string>();
  let layout = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let version = 0;

  function load(deviceId: number): Recent {
    const at = now();
    const [last, prev] = queries.lastTwo(deviceId);
    const slots = new Map<number, RecentSlot>();
    for (const s of queries.slots(deviceId, slotOf(at) - WINDOW_MS, SLOT_MS)) slots.set(s.b, s);
    const recent: Recent = { loadedAt: at, last: last ?? null, prevTs: prev?.ts ?? null, slots };
    cache.set(deviceId, recent);
    return recent;
  }

  function recentOf(deviceId: number): Recent {
    const cached = cache.get(deviceId);
    return cached && now() - cached.loadedAt < RELOAD_MS ? cached : load(deviceId);
  }

  function add(recent: Recent, ts: number, t: number, h: number): void {
    if (recent.last === null || ts > recent.last.ts) {
      recent.prevTs = recent.last?.ts ?? null;
      recent.last = { ts, t, h };
    } else if (ts !== recent.last.ts && (recent.prevTs === null || ts > recent.prevTs)) {
      recent.prevTs = ts;
    }
    const b = slotOf(ts);
    if (b < slotOf(now()) - WINDOW_MS) return;
    const s = recent.slots.get(b);
    if (s === undefined) {
      recent.slots.set(b, { b, n: 1, t_sum: t, t_min: t, t_max: t, h_sum: h, h_min: h, h_max: h });
    } else {
      s.n++;
      s.t_sum += t;
      s.h_sum += h;
      if (t < s.t_min) s.t_min = t;
      if (t > s.t_max) s.t_max = t;
      if (h < s.h_min) s.h_min = h;
      if (h > s.h_max) s.h_max = h;
    }
    if (recent.slots.size > 2 * SPARK_SLOTS) {
      const oldest = slotOf(now()) - WINDOW_MS;
      for (const key of recent.slots.keys()) if (key < oldest) recent.slots.delete(key);
    }
  }

  function flush(): void {
    timer = null;
    const change: LiveChange = { rooms: new Set(), unplaced: false, devices: new Set(dirty), layout, version: ++version };
    try {
      for (const uid of dirty) {
        // A device's room changes only with a device event: readings alone need no query (they come 50 times a second under load).
        const room = shownIn.has(uid) && !moved.has(uid) ? shownIn.get(uid)! : (store.findDevice(uid)?.room_uid ?? null);
        moved.delete(uid);
        const before = shownIn.has(uid) ? shownIn.get(uid)! : room;
        for (const r of new Set([room, before])) {
          if (r === null) change.unplaced = true;
          else change.rooms.add(r);
        }
        shownIn.set(uid, room);
      }
      for (const r of leftRooms) {
        if (r === null) change.unplaced = true;
        else change.rooms.add(r);
      }
    } catch (err) {
      log.error("live update failed", { error: err as Error });
      return;
    } finally {
      dirty.clear();
      leftRooms.clear();
      layout = false;
    }
    for (const listener of listeners) {
      try {
        listener(change);
      } catch (err) {
        log.error("live update failed", { error: err as Error });
      }
    }
  }

  /** Marks a device's card as changed; changes are pushed together a moment later. */
  function touch(deviceUid: string): void {
    dirty.add(deviceUid);
    timer ??= setTimeout(flush, COALESCE_MS);
  }

  // Runs inside store.insertReadings right after the commit, so it must be quick
  // (the store logs a throw; it never reaches ingestion).
  const unsubscribers = [
    store.on("readings", (batch) => {
      for (const { deviceId, deviceUid, reading } of batch) {
        const recent = cache.get(deviceId);
        if (recent) add(recent, reading.ts, toCenti(reading.temperature_c), toCenti(reading.humidity_pct));
        touch(deviceUid);
      }
    }),
    // Moves, renames and settings, from the pages or the API alike. A page rendered since the last
    // push shows the device where it was before this change: that card must be pushed again too.
    store.on("device", ({ deviceUid, roomBefore }) => {
      leftRooms.add(roomBefore);
      moved.add(deviceUid);
      touch(deviceUid);
    }),
    // Birth and last will, once the broker has recorded them.
    store.on("status", ({ deviceUid }) => touch(deviceUid)),
    // Rooms created, renamed or deleted: the dashboard's set of cards changes.
    store.on("room", () => {
      layout = true;
      timer ??= setTimeout(flush, COALESCE_MS);
    }),
  ];

  return {
    /** The number of changes so far (pages embed it so the stream can tell what they missed). */
    get version() {
      return version;
    },
    /** Calls `listener` with each batch of changed cards. Returns an unsubscribe. */
    onChange(listener: (change: LiveChange) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** The dashboard summary of a device at `at` (default now). */
    summary(device: Device, at = now()): DeviceLive {
      const recent = recentOf(device.id);
      const observed = recent.last && recent.prevTs !== null ? (recent.last.ts - recent.prevTs) / 1000 : null;
      const intervalS = expectedIntervalS({
        announced: device.interval_s,
        configured: device.config_interval_s,
        observedS: observed,
      });
      const fresh = freshness(
        { lastReadingAt: recent.last?.ts ?? null, intervalS, state: device.state, stateAt: device.state_at },
        at,
      );
      const last = recent.last
        ? { ts: recent.last.ts, temperature: fromCenti(recent.last.t), humidity: fromCenti(recent.last.h) }
        : null;

      // Slots that began after the device was placed in its room belong to that room's card.
      const placedFrom = device.placed_at === null ? 0 : Math.ceil(device.placed_at / SLOT_MS) * SLOT_MS;
      const firstSpark = slotOf(at) - (SPARK_SLOTS - 1) * SLOT_MS;
      const spark: (number | null)[] = [];
      for (let b = firstSpark; b <= slotOf(at); b += SLOT_MS) {
        const s = b >= placedFrom ? recent.slots.get(b) : undefined;
        spark.push(s ? Math.round(s.t_sum / s.n) / 100 : null);
      }
      let today: DeviceLive["today"] = null;
      for (let b = Math.max(zone.startOfDay(at), placedFrom); b <= slotOf(at); b += SLOT_MS) {
        const s = recent.slots.get(b);
        if (!s) continue;
        if (today === null) today = { tMin: s.t_min, tMax: s.t_max, hMin: s.h_min, hMax: s.h_max };
        else {
          today.tMin = Math.min(today.tMin, s.t_min);
          today.tMax = Math.max(today.tMax, s.t_max);
          today.hMin = Math.min(today.hMin, s.h_min);
          today.hMax = Math.max(today.hMax, s.h_max);
        }
      }
      if (today) {
        today = {
          tMin: fromCenti(today.tMin),
          tMax: fromCenti(today.tMax),
          hMin: fromCenti(today.hMin),
          hMax: fromCenti(today.hMax),
        };
      }
      // The quarter hour an hour before the latest reading, in its current room.
      const before = recent.last ? recent.slots.get(slotOf(recent.last.ts - 3_600_000)) : undefined;
      const trend =
        recent.last && before && before.b >= placedFrom
          ? {
              temperature: Math.round(recent.last.t - before.t_sum / before.n) / 100,
              humidity: Math.round(recent.last.h - before.h_sum / before.n) / 100,
            }
          : null;
      return {
        freshness: fresh,
        intervalS,
        last,
        today,
        trend,
        comfort: last ? comfort(last.temperature, last.humidity) : null,
        spark,
      };
    },
    /**
     * The latest reading of a device, from the cache. It belongs to the device's
     * current room unless it was taken before the device was placed there (a
     * move since, or a device taken out of its room): then the placement at
     * that time tells.
     */
    latest(device: Device): LatestReading | null {
      const last = recentOf(device.id).last;
      if (last === null) return null;
      const inCurrentRoom = device.placed_at !== null && last.ts >= device.placed_at;
      return {
        device_uid: device.uid,
        room_uid: inCurrentRoom ? device.room_uid : queries.roomAt(device.id, last.ts),
        ts: last.ts,
        temperature: fromCenti(last.t),
        humidity: fromCenti(last.h),
      };
    },
    /** Stops listening to the store. */
    close(): void {
      for (const unsubscribe of unsubscribers) unsubscribe();
      if (timer) clearTimeout(timer);
      timer = null;
      listeners.clear();
    },
  };
}

/** The live summaries' interface. */
export type Live = ReturnType<typeof createLive>;
