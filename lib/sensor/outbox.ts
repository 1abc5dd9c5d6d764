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
/** The directory of a file's path (node:path's dirname, which the agent does not load). */
function directoryOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

export const outboxPath = (dataDir: string, uid: string) => `${dataDir.replace(/\/+$/, "")}/outbox-${uid}.db`;

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

/**
 * Acknowledged readings are deleted in the transaction that stores the next
 * reading (it is fsync'd anyway), so a reading costs one fsync'd transaction,
 * not two. Without a new reading for this long (a failing sensor, a drain
 * after an outage), or once this many are waiting, they are deleted in a
 * transaction of their own that is not fsync'd: losing it to a power cut only
 * sends those readings again, and the server stores a resent reading once.
 */
const ACK_HOLD_MS = 5 * 60_000;
/** When the server last stored a reading is noted at most this often (the first of a run at once): it is another page to write. */
const STORED_AT_EVERY_MS = 60_000;
const ACK_FLUSH_COUNT = 2000;
/** Before (bench/writes.ts's reference): each acknowledged reading deleted within 50 ms, fsync'd. */
const ACK_EACH_MS = 50;
/** A full outbox, or a disk that cannot take a reading, logs at most this often. */
const DROP_LOG_EVERY_MS = 10 * 60_000;
/** Readings kept in memory while the disk cannot take them (~200 B each: 1 MB); beyond it the oldest go. */
export const MEMORY_READINGS = 5000;

/** A reading kept in memory because the outbox could not store it (a full disk). */
type MemoryRow = OutboxRow & { mono: number; boot: string };

/** Opens (creating) the outbox at `path`. Throws an Error naming the file when it cannot. */
export function openOutbox(
  path: string,
  options: {
    maxReadings: number;
    log: Log;
    now?: () => number;
    /** Readings kept in memory while the disk is full (default MEMORY_READINGS). */
    memoryReadings?: number;
    /** "each": the behaviour before issue 17 (bench/writes.ts's reference): every acknowledged reading deleted at once in an fsync'd commit, 4 KiB pages. */
    acks?: "batched" | "each";
  },
) {
  const { log } = options;
  const now = options.now ?? Date.now;
  const memoryMax = options.memoryReadings ?? MEMORY_READINGS;
  const eachAck = options.acks === "each";
  let maxReadings = options.maxReadings;
  let db: Database;
  try {
    mkdirSync(directoryOf(path), { recursive: true });
    db = new Database(path, { create: true, readwrite: true, strict: true });
    // 1 KiB pages for a new outbox (an existing one keeps its size): a commit
    // writes whole pages to the WAL, and an SD card wears by the bytes written;
    // an outbox is small and read in order, where bigger pages buy nothing.
    if (!eachAck) db.exec("PRAGMA page_size = 1024");
    // WAL: a commit is one append to the -wal file, and readers never block the writer.
    db.exec("PRAGMA journal_mode = WAL");
    // FULL: until its PUBACK this file holds the only copy of a reading, and a
    // Pi loses power more often than a process crashes: each reading's commit
    // is fsync'd (one a reading, acknowledged ones deleted in the same commit).
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    migrate(db);
  } catch (err) {
    throw wrap(`open outbox ${path}`, err);
  }

  const q = {
    insert: db.query<null, [number, number, number, number, number, string, number]>(
      "INSERT INTO outbox (id, ts, t, h, mono, boot, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    next: db.query<OutboxRow, [number, number]>(
      "SELECT id, ts, t, h, state FROM outbox WHERE id > ? AND state != 0 ORDER BY id LIMIT ?",
    ),
    count: db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox"),
    lastId: db.query<{ id: number | null }, []>(
      "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0), coalesce((SELECT max(id) FROM outbox), 0)) AS id",
    ),
    dropOldest: db.query<{ id: number }, [number]>(
      "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?) RETURNING id",
    ),
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

  /** Rows in the file (acknowledged ones not deleted yet included). */
  let stored = q.count.get()!.n;
  /** Ids are ours, never reused in a run: a reading kept in memory keeps its id when it reaches the file. */
  let lastId = q.lastId.get()!.id ?? 0;
  /** Acknowledged readings still in the file, deleted with the next commit. */
  const acked = new Set<number>();
  /** Readings the file could not take yet (a full disk), oldest first; their ids are above every stored one. */
  let memory: MemoryRow[] = [];
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  let storedAtWritten = false;
  /** When last_stored_at was last written (committed), and by the transaction under way. */
  let storedAtNoted = -Infinity;
  let pendingNoted: number | null = null;
  const throttle = { dropped: 0, lastDropLog: -Infinity, memoryDropped: 0, lastMemoryLog: -Infinity, lastFailLog: -Infinity };
  /**
   * dropped: oldest readings dropped from a full outbox; memory: readings kept in memory (a full disk);
   * memoryDropped: dropped from a full memory buffer; lost: in memory at close, not stored.
   */
  const stats = { added: 0, acked: 0, dropped: 0, commits: 0, syncedCommits: 0, memory: 0, memoryDropped: 0, lost: 0 };

  /** Runs `fn` in a transaction; `synced` false: not fsync'd (what it does may be redone). */
  function commit<T>(fn: () => T, synced = true): T {
    if (!synced) db.exec("PRAGMA synchronous = NORMAL");
    try {
      const out = db.transaction(fn)();
      stats.commits++;
      if (synced) stats.syncedCommits++;
      return out;
    } finally {
      if (!synced) db.exec("PRAGMA synchronous = FULL");
    }
  }

  /** Rows the last deleteAcked removed from the file. */
  let deletedRows = 0;
  /** Inside a transaction: deletes the acknowledged readings; returns what to forget after the commit. */
  function deleteAcked(): number[] {
    deletedRows = 0;
    pendingNoted = null;
    if (acked.size === 0) return [];
    const ids = [...acked];
    deletedRows = q.deleteIds.run(JSON.stringify(ids)).changes;
    // For `techtemp-sensor status` (install.sh waits on it): when the server last stored a reading.
    if (!storedAtWritten || now() - storedAtNoted >= STORED_AT_EVERY_MS) {
      q.setSetting.run(LAST_STORED_KEY, String(now()));
      pendingNoted = now();
    }
    return ids;
  }

  /** After a commit that deleted `ids` (deletedRows rows) and dropped `dropped`: the counts follow. */
  function forget(ids: number[], dropped: number[]): void {
    for (const id of ids) acked.delete(id);
    for (const id of dropped) acked.delete(id);
    stored -= (ids.length ? deletedRows : 0) + dropped.length;
    if (pendingNoted !== null) {
      storedAtWritten = true;
      storedAtNoted = pendingNoted;
      pendingNoted = null;
    }
  }

  /** Inside a transaction: keeps the file within maxReadings by dropping the oldest; returns their ids. */
  function dropOldest(n: number, kept: number): number[] {
    const ids = q.dropOldest.all(n).map((r) => r.id);
    stats.dropped += ids.length;
    throttle.dropped += ids.length;
    if (now() - throttle.lastDropLog >= DROP_LOG_EVERY_MS) {
      log.warn("outbox full: dropped the oldest readings", {
        dropped: throttle.dropped,
        kept,
        max_readings: maxReadings,
      });
      throttle.dropped = 0;
      throttle.lastDropLog = now();
    }
    return ids;
  }

  /** Writes `rows` (with their ids) and deletes the acknowledged readings, in one fsync'd commit. */
  function store(rows: MemoryRow[]): void {
    let ids: number[] = [];
    let dropped: number[] = [];
    commit(() => {
      ids = eachAck ? [] : deleteAcked();
      for (const r of rows) q.insert.run(r.id, r.ts, r.t, r.h, r.mono, r.boot, r.state);
      const total = stored - (ids.length ? deletedRows : 0) + rows.length;
      if (total > maxReadings) dropped = dropOldest(total - maxReadings, maxReadings);
    });
    stored += rows.length;
    forget(ids, dropped);
  }

  function failed(what: string, err: unknown): void {
    if (now() - throttle.lastFailLog < DROP_LOG_EVERY_MS) return;
    throttle.lastFailLog = now();
    log.error(what, { error: err instanceof Error ? err.message : String(err), in_memory: memory.length, memory_max: memoryMax });
  }

  /** Tries to write the readings kept in memory; says whether the memory is empty now. */
  function writeMemory(): boolean {
    if (memory.length === 0) return true;
    try {
      store(memory);
    } catch (err) {
      failed("cannot write the outbox yet (a full disk?): readings stay in memory", err);
      return false;
    }
    log.info("the outbox takes readings again: wrote the ones kept in memory", { readings: memory.length });
    memory = [];
    throttle.lastFailLog = -Infinity;
    return true;
  }

  function keepInMemory(row: MemoryRow, err: unknown): void {
    if (memory.length === 0)
      failed("cannot store the reading in the outbox (a full disk?): keeping readings in memory until it can", err);
    memory.push(row);
    stats.memory++;
    if (memory.length > memoryMax) {
      const n = memory.length - memoryMax;
      memory.splice(0, n);
      stats.memoryDropped += n;
      throttle.memoryDropped += n;
      if (now() - throttle.lastMemoryLog >= DROP_LOG_EVERY_MS) {
        log.warn("readings kept in memory: the buffer is full, dropped the oldest", {
          dropped: throttle.memoryDropped,
          memory_max: memoryMax,
        });
        throttle.memoryDropped = 0;
        throttle.lastMemoryLog = now();
      }
    }
  }

  function flushAcks(): void {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    if (acked.size === 0) return;
    let ids: number[] = [];
    try {
      commit(() => (ids = deleteAcked()), eachAck);
    } catch (err) {
      // A full disk: they stay acknowledged here (never sent again) and go with a later commit.
      failed("cannot delete acknowledged readings yet (a full disk?); they are not sent again", err);
      return;
    }
    forget(ids, []);
  }

  /** Applies `fn` to the readings in memory; returns how many it changed. */
  const inMemory = (fn: (r: MemoryRow) => boolean) => {
    let n = 0;
    for (const r of memory) if (fn(r)) n++;
    return n;
  };

  return {
    /**
     * Stores a reading: committed (fsync'd) to the file when this returns,
     * together with the deletion of the readings acknowledged since the last
     * one. When the file cannot take it (a full disk), it is kept in memory
     * (at most `memoryReadings`, the oldest dropped beyond, logged once per 10
     * minutes) and sent from there; the next reading tries the file again.
     * Returns its id.
     */
    add(reading: NewReading): number {
      stats.added++;
      const row: MemoryRow = {
        id: ++lastId,
        ts: reading.ts,
        t: reading.t,
        h: reading.h,
        state: reading.state,
        mono: reading.mono,
        boot: reading.boot,
      };
      if (!writeMemory()) {
        keepInMemory(row, null);
        return row.id;
      }
      try {
        store([row]);
      } catch (err) {
        keepInMemory(row, err);
      }
      return row.id;
    },
    /** Up to `limit` sendable readings after id `afterId`, oldest first (held and acknowledged ones are skipped), from the file then from memory. */
    next(afterId: number, limit: number): OutboxRow[] {
      const out: OutboxRow[] = [];
      let after = afterId;
      for (;;) {
        const rows = q.next.all(after, limit);
        for (const r of rows) if (!acked.has(r.id) && out.length < limit) out.push(r);
        if (rows.length < limit || out.length >= limit) break;
        after = rows[rows.length - 1]!.id;
      }
      for (const r of memory) {
        if (out.length >= limit) break;
        if (r.id > afterId && r.state !== ClockState.Held) out.push({ id: r.id, ts: r.ts, t: r.t, h: r.h, state: r.state });
      }
      return out;
    },
    /** Marks a reading as stored by the server; deleted with the next reading's commit, or soon after. */
    ack(id: number): void {
      stats.acked++;
      const i = memory.findIndex((r) => r.id === id);
      if (i >= 0) {
        memory.splice(i, 1); // stored by the server: the copy in memory is no longer needed
        return;
      }
      acked.add(id);
      if (eachAck) flushTimer ??= setTimeout(flushAcks, ACK_EACH_MS);
      // The first of a run at once: `techtemp-sensor status` (install.sh) waits for it.
      else if (acked.size >= ACK_FLUSH_COUNT || !storedAtWritten) flushAcks();
      else flushTimer ??= setTimeout(flushAcks, ACK_HOLD_MS);
    },
    /** Deletes acknowledged readings now (a failure is logged, and they go with a later commit). */
    flushAcks,
    /** Re-stamps the held readings of this boot from a sync seen at (wall, mono); returns how many. */
    restamp(boot: string, syncWall: number, syncMono: number): number {
      const changed = inMemory((r) => {
        if (r.state !== ClockState.Held || r.boot !== boot) return false;
        r.ts = syncWall - (syncMono - r.mono);
        r.state = ClockState.Synced;
        return true;
      });
      return q.restamp.run(syncWall, syncMono, boot).changes + changed;
    },
    /** Sends this boot's held readings flagged `clock_synced: false`; returns how many. */
    releaseHeld(boot: string): number {
      const changed = inMemory((r) => r.state === ClockState.Held && r.boot === boot && ((r.state = ClockState.Unsynced), true));
      return q.releaseBoot.run(boot).changes + changed;
    },
    /** Held readings of an earlier boot cannot be re-stamped: they go flagged. Returns how many. */
    releaseOtherBoots(boot: string): number {
      const changed = inMemory((r) => r.state === ClockState.Held && r.boot !== boot && ((r.state = ClockState.Unsynced), true));
      return q.releaseOtherBoots.run(boot).changes + changed;
    },
    /** Boot-time of the oldest held reading of this boot, or null. */
    oldestHeld(boot: string): number | null {
      const mono = q.oldestHeld.get(boot)!.mono;
      const mine = memory.filter((r) => r.state === ClockState.Held && r.boot === boot).map((r) => r.mono);
      const all = mono === null ? mine : [mono, ...mine];
      return all.length ? Math.min(...all) : null;
    },
    /** Readings held for the clock. */
    held: (): number => q.held.get()!.n + memory.filter((r) => r.state === ClockState.Held).length,
    /** Readings not yet stored by the server: in the file (acknowledged ones excluded) and in memory. */
    get count() {
      return stored - acked.size + memory.length;
    },
    /** Readings kept in memory because the file could not take them. */
    get inMemory() {
      return memory.length;
    },
    /** Changes the bound (the interval changed); drops the oldest at once when over it. */
    setMaxReadings(n: number): void {
      maxReadings = n;
      if (stored > n) {
        let dropped: number[] = [];
        commit(() => (dropped = dropOldest(stored - n, n)));
        forget([], dropped);
      }
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
    addMany(readings: NewReading[]): void {
      store(readings.map((r) => ({ id: ++lastId, ts: r.ts, t: r.t, h: r.h, state: r.state, mono: r.mono, boot: r.boot })));
      stats.added += readings.length;
    },
    /** Deletes what was acknowledged, writes what memory holds if the file takes it (else says how many are lost), closes. */
    close(): void {
      flushAcks();
      if (!writeMemory())
        log.error("stopping with readings the outbox could not store: they are lost", { readings: memory.length });
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
