// The store: the only way into TechTemp's database for the rest of the
// server. It composes one module per reason to change, each holding its own
// prepared statements:
//
//   readings.ts         storing readings (the ingest hot path) with their rollups
//   status.ts           status messages and refused readings of a device
//   devices.ts          rooms, devices and placements, as a person arranges them
//   history-queries.ts  reading history back (charts, statistics, export)
//   recent-queries.ts   a device's recent readings (the live dashboard)
//   registry.ts         which devices exist (shared by the writes above)
//   events.ts           the one event path out: readings, device, status
//   auth.ts             accounts, sessions, API tokens, sensor secrets, settings
//   alerts.ts           alert rules, incidents, channels and the notification outbox
//   weather-cache.ts    the outdoor weather's hours and last attempt
//
// Opening the database and its schema are db.ts and migrations.ts; rollups.ts
// and retention.ts keep the history tables. The operator commands read through
// inspection.ts (inspect) and legacy-source.ts (the earlier server's file, for
// import-legacy). Types are re-exported here so the rest of the server imports
// the store from one place.

import type { Database } from "bun:sqlite";
import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import type { Log } from "../../shared/log.ts";
import { createAlertStore } from "./alerts.ts";
import { createAuthStore } from "./auth.ts";
import { createBackupRecords } from "./backup.ts";
import { createOpsQueries } from "./ops-queries.ts";
import { openDatabase } from "./db.ts";
import { createDevices } from "./devices.ts";
import { createEvents } from "./events.ts";
import { createHeldRollups, holdNothing } from "./held-rollups.ts";
import { rollupZoneName } from "./rollups.ts";
import { createZone } from "../history/zone.ts";
import { createHistoryQueries } from "./history-queries.ts";
import { createReadingWrites } from "./readings.ts";
import { createRecentQueries } from "./recent-queries.ts";
import { createRegistry } from "./registry.ts";
import { ensureIncrementalVacuum } from "./retention.ts";
import { createStatusWrites } from "./status.ts";
import { createWeatherCache } from "./weather-cache.ts";
import { createMqttState } from "./mqtt-state.ts";

export type { Device, IncomingReading, Placement, Room } from "./model.ts";
export { fromCenti, toCenti } from "./model.ts";
export { roomUidFromName, type DevicePatch, type NewDevice, type NewRoom } from "./devices.ts";
export type {
  AlertRuleFields,
  AlertRuleRow,
  AlertStore,
  ChannelRow,
  IncidentFilter,
  IncidentRow,
  NewIncident,
  NewNotification,
  OutboxRow,
  OutboxWithChannel,
} from "./alerts.ts";
export type { ApiTokenRow, AuthStore, EnrollmentRow, SessionRow, SettingKey, User } from "./auth.ts";
export type { CommittedReading, DeviceChange, StatusChange, StoreEventName, StoreEvents, StoreListener } from "./events.ts";
export type { DeviceInfo, HistoryQueries, RawReader, RawRow, RoomPlacement } from "./history-queries.ts";
export type { RecentQueries, RecentSlot } from "./recent-queries.ts";
export type { BackupRecord, BackupRecords } from "./backup.ts";
export type { MqttState, RetainedRow, SubscriptionRow } from "./mqtt-state.ts";
export type { ImportedCounts, ImportedReading } from "./readings.ts";
export type { WeatherCache, WeatherRow, WeatherState } from "./weather-cache.ts";

/** Creates the store over an open database (db.ts). `now` is injectable for tests. */
export function createStore(db: Database, options: { now?: () => number; log?: Log; holdRollups?: boolean } = {}) {
  const now = options.now ?? Date.now;
  const events = createEvents(options.log);
  const registry = createRegistry(db);
  const ping = db.query<{ ok: number }, []>("SELECT 1 AS ok");
  const pages = db.query<{ page_count: number; max_page_count: number; freelist_count: number; page_size: number }, []>(
    "SELECT * FROM pragma_page_count, pragma_max_page_count, pragma_freelist_count, pragma_page_size",
  );
  const auth = createAuthStore(db, { now });
  // The open hour's rollups, in memory (recomputed from the raw readings here at every start).
  // (`holdRollups: false` only for bench/writes.ts's reference: rollups written in every commit.)
  // Held days are days of the zone the daily rollups are in (server.ts has made it the home's before this).
  const dayOf = createZone(rollupZoneName(db)).startOfDay;
  const held = options.holdRollups === false ? holdNothing : createHeldRollups(db, { now, dayOf });

  /** Room the database has to grow: the smaller of SQLite's own limit (max_page_count) and the file system's free space. */
  function freeBytes(): number {
    const p = pages.get()!;
    let free = (p.max_page_count - p.page_count + p.freelist_count) * p.page_size;
    if (db.filename && db.filename !== ":memory:") {
      const fs = statfsSync(dirname(db.filename));
      free = Math.min(free, fs.bavail * fs.bsize + p.freelist_count * p.page_size);
    }
    return free;
  }

  return {
    /** The store's clock. */
    now,
    ...createDevices(db, { now, registry, events, held }),
    ...createReadingWrites(db, { registry, events, held }),
    ...createStatusWrites(db, { registry, events }),
    /** Whether a device is registered, and how many are (the broker's max_devices). */
    registered: { has: registry.has, count: registry.count },
    /** Subscribes to the store's events (events.ts); returns an unsubscribe. */
    on: events.on,
    /** History read back, for lib/server/history/ (charts, statistics, export). */
    history: createHistoryQueries(db, held),
    /** What the broker keeps across restarts: retained messages, persistent sessions' subscriptions. */
    mqtt: createMqttState(db),
    /** Recent readings, for the live summaries. */
    recent: createRecentQueries(db),
    /** The outdoor weather's cache, for lib/server/weather. */
    weather: createWeatherCache(db),
    /** Accounts, sessions, tokens, sensor secrets and runtime settings, for lib/server/auth. */
    auth,
    /**
     * Sets a device's MQTT secret (its hash, lib/server/auth/secrets.ts),
     * registering the device unplaced when the server does not know it yet
     * (enrollment: a sensor gets its credentials before its first reading).
     * A secret it had before stops working.
     */
    setDeviceSecret(uid: string, secretHash: string): void {
      const known = registry.has(uid);
      try {
        db.transaction(() => auth.credentials.set(registry.ensure(uid, now()), secretHash))();
      } catch (err) {
        if (!known) registry.forget(uid); // its registration rolled back with the secret
        throw err;
      }
    },
    /** Alert rules, incidents, channels and the notification outbox, for lib/server/alerts. */
    alerts: createAlertStore(db, { now }),
    /** The record of each backup (lib/server/backup). */
    backups: createBackupRecords(db),
    /** How far retention has got, for /metrics. */
    ops: createOpsQueries(db),
    /**
     * Throws the database's error when it cannot answer a trivial query, or
     * when it has less than MIN_FREE_BYTES to grow into (/health). A server
     * started on a full disk reads fine and fails at its first commit: this
     * says so before a sensor's reading is refused.
     */
    probe(): void {
      ping.get();
      const free = freeBytes();
      if (free < MIN_FREE_BYTES) {
        const where = db.filename && db.filename !== ":memory:" ? ` (${dirname(db.filename)})` : "";
        throw new Error(
          `disk full: ${Math.floor(free / 1024)} KiB left for the database${where}; free space there, readings are not stored meanwhile`,
        );
      }
    },
  };
}

/** Below this much room to grow, the database counts as full (/health): a group commit of readings needs some. */
export const MIN_FREE_BYTES = 1024 * 1024;

/** The store's interface, for modules that take it as a dependency. */
export type Store = ReturnType<typeof createStore>;

/**
 * Opens the database at `path` (db.ts), readied for retention as the server
 * readies it, with the store over it: for a command that works on the
 * database instead of the server (import-legacy). `close()` closes the database.
 */
export function openStore(
  path: string,
  options: { now?: () => number; log?: Log; synchronous?: "FULL" | "NORMAL" } = {},
): Store & { close(): void } {
  const db = openDatabase(path, { synchronous: options.synchronous });
  try {
    ensureIncrementalVacuum(db, options.log);
  } catch (err) {
    db.close();
    throw err;
  }
  return { ...createStore(db, options), close: () => db.close() };
}
