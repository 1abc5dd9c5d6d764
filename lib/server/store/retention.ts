// Retention: raw readings older than `retention_raw_days` are deleted; the
// rollups (lib/server/store/rollups.ts) are kept forever, so charts and statistics of old
// periods stay exact. 0 days keeps raw readings forever.
//
// Ingestion must not notice. Everything runs on the server's one thread, so
// while a DELETE runs nothing else does, and the write lock is held for that
// DELETE only. Each batch is therefore small (sized to take ~20 ms, whatever
// the machine) and its own transaction, and retention pauses between batches
// so the event loop answers sockets and ingestion commits its batch first.
//
// Freed pages go back to the file system: the database uses incremental
// auto-vacuum, and after deleting, retention runs `PRAGMA incremental_vacuum`
// in small steps too. That mode can only be chosen before the first table
// exists or by a VACUUM; `ensureIncrementalVacuum` does the VACUUM once when
// the server starts on a database that does not have it yet.

import type { Database } from "bun:sqlite";
import type { Log } from "../../shared/log.ts";
import { createRollups } from "./rollups.ts";

const DAY = 86_400_000;

/** The scheduler's first run comes this long after start (not at start: start-up stays quick, and tests that start a server never see it). */
export const RETENTION_FIRST_RUN_MS = 10 * 60_000;
/** Then it runs this often (a day's worth of old readings is a few batches). */
export const RETENTION_EVERY_MS = 6 * 3_600_000;
/** How often the scheduler looks at the (injected) clock. */
const TICK_MS = 1000;

/** Target duration of one DELETE batch; batches grow or shrink towards it. */
const TARGET_BATCH_MS = 20;
const MIN_BATCH = 100;
const MAX_BATCH = 20_000;
/** Pages freed per incremental_vacuum step. */
const VACUUM_STEP_PAGES = 1024;

/** What one retention run did. */
export interface RetentionResult {
  /** Raw readings before this time were deleted (null: retention is off). */
  cutoff: number | null;
  deleted: number;
  /** DELETE transactions that removed rows. */
  batches: number;
  /** Pages returned to the file system. */
  freedPages: number;
  ms: number;
}

const pragma = (db: Database, name: string): number => Object.values(db.query(`PRAGMA ${name}`).get() as object)[0] as number;

/**
 * Switches the database to incremental auto-vacuum if it is not yet (a
 * VACUUM: instant on a new database, a one-time rewrite of an older one).
 * Returns whether it converted. Call before the server accepts work.
 */
export function ensureIncrementalVacuum(db: Database, log?: Log): boolean {
  if (pragma(db, "auto_vacuum") === 2) return false;
  const bytes = pragma(db, "page_count") * pragma(db, "page_size");
  const started = performance.now();
  db.exec("PRAGMA auto_vacuum = INCREMENTAL");
  db.exec("VACUUM");
  if (bytes > 1_000_000) {
    log?.info("database switched to incremental vacuum (one-time)", {
      mb: Math.round(bytes / 1e6),
      ms: Math.round(performance.now() - started),
    });
  }
  return true;
}

/** Lets the event loop run (sockets, the ingest queue's commit) before the next batch. */
const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

/** Creates the retention job. `days` 0 = keep raw readings forever. */
export function createRetention(deps: { db: Database; days: number; log: Log; now?: () => number; batchRows?: number }) {
  const { db, days, log } = deps;
  const now = deps.now ?? Date.now;
  const rollups = createRollups(db);
  const tables = ["readings", "reading_flags"] as const;
  const q = {
    devices: db.query<{ id: number }, []>("SELECT id FROM devices ORDER BY id"),
    nth: Object.fromEntries(
      tables.map((t) => [
        t,
        db.query<{ ts: number }, [number, number, number]>(
          `SELECT ts FROM ${t} WHERE device_id = ? AND ts < ? ORDER BY ts LIMIT 1 OFFSET ?`,
        ),
      ]),
    ),
    deleteBefore: Object.fromEntries(
      tables.map((t) => [t, db.query<null, [number, number]>(`DELETE FROM ${t} WHERE device_id = ? AND ts < ?`)]),
    ),
    deleteUpTo: Object.fromEntries(
      tables.map((t) => [t, db.query<null, [number, number]>(`DELETE FROM ${t} WHERE device_id = ? AND ts <= ?`)]),
    ),
  };

  let batchRows = deps.batchRows ?? 1000;
  let stopping = false;
  let current: Promise<RetentionResult> | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  let nextAt = 0;

  /** Deletes one device's rows of `table` before `cutoff`, a batch at a time. */
  async function purge(table: (typeof tables)[number], deviceId: number, cutoff: number, result: RetentionResult): Promise<void> {
    while (!stopping) {
      const started = performance.now();
      // The ts of the batchRows-th oldest row bounds this batch; none = the rest fits in one.
      const boundary = q.nth[table]!.get(deviceId, cutoff, batchRows - 1)?.ts;
      const changes =
        boundary === undefined
          ? q.deleteBefore[table]!.run(deviceId, cutoff).changes
          : q.deleteUpTo[table]!.run(deviceId, boundary).changes;
      if (changes > 0) {
        result.deleted += table === "readings" ? changes : 0;
        result.batches++;
      }
      if (deps.batchRows === undefined) {
        const ms = performance.now() - started;
        if (ms < TARGET_BATCH_MS / 2) batchRows = Math.min(MAX_BATCH, batchRows * 2);
        else if (ms > TARGET_BATCH_MS) batchRows = Math.max(MIN_BATCH, Math.floor(batchRows / 2));
      }
      if (changes > 0) await pause();
      if (boundary === undefined) return;
    }
  }

  /** Returns freed pages to the file system, a step at a time. */
  async function vacuum(): Promise<number> {
    if (pragma(db, "auto_vacuum") !== 2) return 0;
    let freed = 0;
    while (!stopping) {
      const before = pragma(db, "freelist_count");
      if (before === 0) break;
      db.query(`PRAGMA incremental_vacuum(${VACUUM_STEP_PAGES})`).run();
      const after = pragma(db, "freelist_count");
      freed += before - after;
      if (after >= before) break;
      await pause();
    }
    // The file shrinks when the WAL is checkpointed; PASSIVE never waits for readers.
    if (freed > 0) db.query("PRAGMA wal_checkpoint(PASSIVE)").get();
    return freed;
  }

  /** Deletes raw readings older than the retention age now; resolves with what it did. */
  async function run(): Promise<RetentionResult> {
    const started = performance.now();
    const result: RetentionResult = { cutoff: null, deleted: 0, batches: 0, freedPages: 0, ms: 0 };
    if (days > 0) {
      const cutoff = now() - days * DAY;
      result.cutoff = cutoff;
      // First the horizon, then the deletes: from now on a reading older than
      // the cutoff is not added to the rollups (it may be a replay of one being deleted).
      rollups.setHorizon(cutoff);
      for (const { id } of q.devices.all()) {
        for (const table of tables) await purge(table, id, cutoff, result);
        if (stopping) break;
      }
    }
    result.freedPages = await vacuum();
    result.ms = Math.round(performance.now() - started);
    const fields = { deleted: result.deleted, batches: result.batches, freed_pages: result.freedPages, ms: result.ms };
    if (result.deleted > 0 || result.freedPages > 0) {
      log.info("retention: deleted old raw readings", {
        ...fields,
        before: result.cutoff === null ? undefined : new Date(result.cutoff).toISOString(),
      });
    } else log.debug("retention: nothing to delete", fields);
    return result;
  }

  /** Runs retention now (one run at a time: a call during a run waits for that run). */
  function runOnce(): Promise<RetentionResult> {
    current ??= run().finally(() => {
      current = null;
    });
    return current;
  }

  return {
    runOnce,
    /** Starts the schedule: first run RETENTION_FIRST_RUN_MS after now() (the injected clock), then every RETENTION_EVERY_MS. */
    start(): void {
      if (days === 0) {
        log.info("retention off: raw readings are kept forever (retention_raw_days = 0)");
      }
      stopping = false;
      nextAt = now() + RETENTION_FIRST_RUN_MS;
      timer = setInterval(() => {
        if (current || now() < nextAt) return;
        runOnce()
          .catch((err) => log.error("retention failed; will try again", { error: err as Error }))
          .finally(() => {
            nextAt = now() + RETENTION_EVERY_MS;
          });
      }, TICK_MS);
      // The schedule alone must not keep the process alive.
      timer.unref?.();
    },
    /** Stops the schedule and waits for a run in progress to stop after its current batch. */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = null;
      stopping = true;
      await current?.catch(() => {});
    },
  };
}

/** The retention job's interface. */
export type Retention = ReturnType<typeof createRetention>;
