// The agent's outbox: every reading is committed to SQLite (bun:sqlite) before
// it is published, and deleted only when its PUBACK arrives, which the server
// sends only after the reading is in its own database. A reading therefore
// lives in at least one database at every moment; killing the agent at any
// point loses nothing (the worst case is a reading sent twice, which the
// server stores once: same device, same ts).
//
// It is bounded (default 30 days at the interval): when full, the oldest
// readings are dropped and the count is logged.

import { Database } from "bun:sqlite";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { wrap } from "../shared/errors.ts";
import type { Log } from "../shared/log.ts";

/** Clock state of a stored reading. */
export const ClockState = {
  /** Taken before the clock synchronised: held, to be re-stamped. */
  Held: 0,
  /** Stamped by a synchronised clock: send as is. */
  Synced: 1,
  /** The clock never synchronised in time: send with `"clock_synced": false`. */
  Unsynced: 2,
} as const;
/** One of the ClockState values. */
export type ClockState = (typeof ClockState)[keyof typeof ClockState];

/** A reading in the outbox. */
export interface OutboxRow {
  id: number;
  /** Wall-clock epoch ms (re-stamped once the clock syncs). */
  ts: number;
  /** °C and %RH, offsets applied. */
  t: number;
  h: number;
  state: ClockState;
}

/** A reading to store. */
export interface NewReading {
  ts: number;
  t: number;
  h: number;
  /** Ms since boot when it was taken. */
  mono: number;
  boot: string;
  state: ClockState;
}

/** The outbox file of a device inside the data dir (one per uid, so several agents can share a dir). */
export const outboxPath = (dataDir: string, uid: string) => join(dataDir, `outbox-${uid}.db`);

/** The outbox setting holding when a PUBACK last came (the server stored a reading), epoch ms. */
const LAST_STORED_KEY = "last_stored_at";

/**
 * What an outbox says about delivery, read without changing it (beside a
 * running agent): when the server last acknowledged (= stored) a reading, and
 * how many readings wait. Null when the file does not exist yet.
 */
export function readOutboxStatus(path: string): { lastStoredAt: number | null; waiting: number } | null {
  if (!existsSync(path)) return null;
  const db = new Database(path, { readonly: true, strict: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const stored = db.query<{ value: string }, [string]>("SELECT value FROM settings WHERE key = ?").get(LAST_STORED_KEY);
    const waiting = db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox").get()!.n;
    return { lastStoredAt: stored ? Number(stored.value) : null, waiting };
  } finally {
    db.close();
  }
}

/** How long acknowledged readings wait to be deleted together (one transaction, one fsync). */
const ACK_FLUSH_MS = 50;
const ACK_FLUSH_COUNT = 2000;
/** A full outbox logs at most this often (one reading is dropped per new one). */
const DROP_LOG_EVERY_MS = 10 * 60_000;

/** Opens (creating) the outbox at `path`. Throws an Error naming the file when it cannot. */
export function openOutbox(path: string, options: { maxReadings: number; log: Log; now?: () => number }) {
  const { log } = options;
  const now = options.now ?? Date.now;
  let maxReadings = options.maxReadings;
  let db: Database;
  try {
    mkdirSync(join(path, ".."), { recursive: true });
    db = new Database(path, { create: true, readwrite: true, strict: true });
    // WAL: a commit is one append to the -wal file, and readers never block the writer.
    db.exec("PRAGMA journal_mode = WAL");
    // FULL: until its PUBACK this file holds the only copy of a reading, and a
    // Pi loses power more often than a process crashes. One fsync per reading
    // (every few seconds at most) costs nothing; acks are deleted in batches.
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    migrate(db);
  } catch (err) {
    throw wrap(`open outbox ${path}`, err);
  }

  const q = {
    insert: db.query<{ id: number }, [number, number, number, number, string, number]>(
      "INSERT INTO outbox (ts, t, h, mono, boot, state) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    ),
    next: db.query<OutboxRow, [number, number]>(
      "SELECT id, ts, t, h, state FROM outbox WHERE id > ? AND state != 0 ORDER BY id LIMIT ?",
    ),
    count: db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox"),
    dropOldest: db.query<null, [number]>("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)"),
    deleteIds: db.query<null, [string]>("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))"),
    restamp: db.query<null, [number, number, string]>(
      "UPDATE outbox SET ts = ?1 - (?2 - mono), state = 1 WHERE state = 0 AND boot = ?3",
    ),
    releaseBoot: db.query<null, [string]>("UPDATE outbox SET state = 2 WHERE state = 0 AND boot = ?"),
    releaseOtherBoots: db.query<null, [string]>("UPDATE outbox SET state = 2 WHERE state = 0 AND boot != ?"),
    oldestHeld: db.query<{ mono: number | null }, [string]>("SELECT min(mono) AS mono FROM outbox WHERE state = 0 AND boot = ?"),
    held: db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox WHERE state = 0"),
    getSetting: db.query<{ value: string }, [string]>("SELECT value FROM settings WHERE key = ?"),
    setSetting: db.query<null, [string, string]>("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)"),
    deleteSetting: db.query<null, [string]>("DELETE FROM settings WHERE key = ?"),
  };

  let count = q.count.get()!.n;
  let acked: number[] = [];
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  let droppedSinceLog = 0;
  let lastDropLog = -Infinity;
  const stats = { added: 0, acked: 0, dropped: 0 };

  const insert = db.transaction((r: NewReading): number => {
    const id = q.insert.get(r.ts, r.t, r.h, r.mono, r.boot, r.state)!.id;
    count++;
    if (count > maxReadings) dropOldest(count - maxReadings);
    return id;
  });

  function dropOldest(n: number): void {
    const changes = q.dropOldest.run(n).changes;
    count -= changes;
    stats.dropped += changes;
    droppedSinceLog += changes;
    if (now() - lastDropLog >= DROP_LOG_EVERY_MS) {
      log.warn("outbox full: dropped the oldest readings", { dropped: droppedSinceLog, kept: count, max_readings: maxReadings });
      droppedSinceLog = 0;
      lastDropLog = now();
    }
  }

  // Deleting the acknowledged readings and noting when the server last stored
  // one (for `techtemp-sensor status`, which install.sh waits on) in one commit.
  const deleteAcked = db.transaction((ids: number[]): void => {
    count -= q.deleteIds.run(JSON.stringify(ids)).changes;
    q.setSetting.run(LAST_STORED_KEY, String(now()));
  });

  function flushAcks(): void {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    if (acked.length === 0) return;
    const ids = acked;
    acked = [];
    deleteAcked(ids);
  }

  return {
    /** Stores a reading; it is committed (fsync'd) when this returns. Returns its id. */
    add(reading: NewReading): number {
      stats.added++;
      return insert(reading);
    },
    /** Up to `limit` sendable readings after id `afterId`, oldest first (held ones are skipped). */
    next: (afterId: number, limit: number): OutboxRow[] => q.next.all(afterId, limit),
    /** Marks a reading as stored by the server; deleted with others shortly after. */
    ack(id: number): void {
      acked.push(id);
      stats.acked++;
      if (acked.length >= ACK_FLUSH_COUNT) flushAcks();
      else flushTimer ??= setTimeout(flushAcks, ACK_FLUSH_MS);
    },
    /** Deletes acknowledged readings now. */
    flushAcks,
    /** Re-stamps the held readings of this boot from a sync seen at (wall, mono); returns how many. */
    restamp: (boot: string, syncWall: number, syncMono: number): number => q.restamp.run(syncWall, syncMono, boot).changes,
    /** Sends this boot's held readings flagged `clock_synced: false`; returns how many. */
    releaseHeld: (boot: string): number => q.releaseBoot.run(boot).changes,
    /** Held readings of an earlier boot cannot be re-stamped: they go flagged. Returns how many. */
    releaseOtherBoots: (boot: string): number => q.releaseOtherBoots.run(boot).changes,
    /** Boot-time of the oldest held reading of this boot, or null. */
    oldestHeld: (boot: string): number | null => q.oldestHeld.get(boot)!.mono,
    /** Readings held for the clock. */
    held: (): number => q.held.get()!.n,
    /** Readings stored (including acknowledged ones not deleted yet). */
    get count() {
      return count;
    },
    /** Changes the bound (the interval changed); drops the oldest at once when over it. */
    setMaxReadings(n: number): void {
      maxReadings = n;
      if (count > n) db.transaction(() => dropOldest(count - n))();
    },
    get maxReadings() {
      return maxReadings;
    },
    /** A small key-value store beside the readings (the last config received). */
    getSetting: (key: string): string | null => q.getSetting.get(key)?.value ?? null,
    setSetting(key: string, value: string | null): void {
      if (value === null) q.deleteSetting.run(key);
      else q.setSetting.run(key, value);
    },
    stats,
    /** Inserts many readings in one transaction (benchmarks, demo back-fill). */
    addMany: db.transaction((readings: NewReading[]): void => {
      for (const r of readings) insert(r);
      stats.added += readings.length;
    }),
    close(): void {
      flushAcks();
      db.close();
    },
  };
}

/** The outbox's interface. */
export type Outbox = ReturnType<typeof openOutbox>;

function migrate(db: Database): void {
  const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (version > 1) throw new Error(`outbox schema version ${version} is newer than this agent; upgrade TechTemp`);
  if (version === 1) return;
  db.transaction(() => {
    db.exec(`
      -- id orders readings as they were taken (the monotonic order), which
      -- stays right when held readings are re-stamped. AUTOINCREMENT: an id
      -- is never reused, even after the table empties, so the sender's
      -- "everything after the last id sent" never skips a new reading.
      CREATE TABLE outbox (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,
        ts    INTEGER NOT NULL,   -- wall clock, epoch ms (re-stamped on sync)
        t     REAL NOT NULL,      -- °C, offsets applied
        h     REAL NOT NULL,      -- %RH, offsets applied
        mono  INTEGER NOT NULL,   -- ms since boot when taken
        boot  TEXT NOT NULL,      -- /proc/sys/kernel/random/boot_id
        state INTEGER NOT NULL    -- 0 held for the clock, 1 synced, 2 send with clock_synced false
      );
      CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      PRAGMA user_version = 1;
    `);
  })();
}
