// Checkpoints on a thread of their own (issue 17).
//
// A checkpoint copies the pages committed to the -wal file back into the
// database file and syncs both. SQLite's automatic one runs inside the COMMIT
// that crosses `wal_autocheckpoint`, on the event loop: up to 16 MiB written
// and two syncs while no packet is read (hundreds of ms on an SD card, more
// after a backup held the WAL for a while). The server's connection has the
// automatic checkpoint off (db.ts, `walSync: "deferred"`) and checkpoints run
// on a worker with its own connection, in two steps:
//
// 1. After each synced commit `poke()` reads how many frames of the -wal file
//    are not in the database yet, from the wal-index in the -shm file (its
//    documented layout, https://www.sqlite.org/walformat.html: mxFrame at
//    byte 16, nBackfill at byte 96, native byte order). From CHECKPOINT_PAGES
//    on, the worker runs `wal_checkpoint(PASSIVE)` while ingestion goes on
//    committing: it copies what was committed when it began.
// 2. Commits made meanwhile are still only in the -wal file, and SQLite
//    starts the file over only once everything in it is copied: under a
//    steady stream it would grow without end. So the next sync of commits
//    (wal-sync.ts) is a `catchUp()` on the worker instead: the few frames
//    left are copied, then the -wal file is synced. No batch commits while a
//    sync runs (mqtt/ingest.ts), so this checkpoint completes, and the next
//    commit starts the -wal file over.
// 3. A -wal file grown past WAL_SIZE_LIMIT (a backup's long read held the
//    checkpoints back) is cut back by the catch-ups, TRIM_STEP_BYTES at a
//    time, on the worker (trimStep). SQLite cut it in one go in the commit
//    that started it over, on the event loop: bench/backup.ts saw 100-160 ms
//    for ~200 MB, and cut on the worker in one go, acks waited as long.
//
// The worker is made from a Blob of a self-contained function, like the
// backup's (store/backup.ts), so it runs inside the compiled executable too.

import { Database } from "bun:sqlite";
import type * as Fs from "node:fs";
import { closeSync, openSync, readSync } from "node:fs";
import type { Log } from "../../shared/log.ts";
import { WAL_SIZE_LIMIT } from "./db.ts";

/** Frames waiting in the -wal file that start a checkpoint: 4000 pages (16 MiB), as bench/writes.ts measured for SD cards. */
export const CHECKPOINT_PAGES = 4000;

/**
 * A catch-up copies at most about this many frames (2 MiB; ~10 ms here): when
 * more came in during a checkpoint, another one runs first (MAX_ROUNDS at most).
 */
const CATCH_UP_PAGES = 500;
const MAX_ROUNDS = 4;

/** A worker without a job for this long is ended (ms); the next checkpoint starts one again. */
const IDLE_MS = 60_000;
/** How long after a checkpoint a reader held back the next is tried (ms). */
const BLOCKED_RETRY_MS = 1000;

/** What one checkpoint did (PRAGMA wal_checkpoint's row, and how long it took). */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
  /** What a catch-up cut: the -wal file's size before (it had grown past WAL_SIZE_LIMIT) and after, and how long it took. */
  truncated: { from: number; to: number; ms: number } | null;
  ms: number;
}

/** The -wal file is cut back by at most this much per catch-up (bytes): ~5 ms of ftruncate on the machine of bench/backup.ts. */
export const TRIM_STEP_BYTES = 8 * 1024 * 1024;

type WorkerFs = Pick<typeof Fs, "openSync" | "fdatasyncSync" | "closeSync" | "statSync" | "readSync" | "truncateSync">;

/**
 * The last frame written (mxFrame) and the last copied into the database
 * (nBackfill), from the wal-index header at the start of the -shm file open
 * as `fd`: its documented layout, in the machine's byte order; null when it
 * cannot be read. Self-contained: the worker runs it too (`readSync` passed in).
 */
function readWalIndex(read: WorkerFs["readSync"], fd: number): { mxFrame: number; nBackfill: number } | null {
  const header = Buffer.alloc(100);
  try {
    if (read(fd, header, 0, 100, 0) < 100) return null;
  } catch {
    return null;
  }
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const u32 = (at: number) => (little ? header.readUInt32LE(at) : header.readUInt32BE(at));
  return { mxFrame: u32(16), nBackfill: u32(96) };
}

/**
 * Runs inside the worker, with its connection: cuts the -wal file by at most
 * `step` bytes towards `sizeLimit`, never below the last frame in use. Under
 * the write lock (BEGIN IMMEDIATE; none now: next time), so no frame is
 * written meanwhile, and the wal-index's mxFrame is the end of every frame a
 * reader may still read; what lies beyond it is left over from before SQLite
 * started the file over. Returns what it did, or null.
 */
function trimStep(
  db: Database,
  path: string,
  fs: WorkerFs,
  walIndex: typeof readWalIndex,
  sizeLimit: number,
  step: number,
): { from: number; to: number; ms: number } | null {
  const wal = `${path}-wal`;
  const from = fs.statSync(wal).size;
  if (from <= sizeLimit) return null;
  const began = performance.now();
  try {
    db.exec("BEGIN IMMEDIATE");
  } catch {
    return null; // a write under way: the next catch-up tries again
  }
  try {
    const shm = fs.openSync(`${path}-shm`, "r");
    let index;
    try {
      index = walIndex(fs.readSync, shm);
    } finally {
      fs.closeSync(shm);
    }
    if (index === null) return null;
    const mxFrame = index.mxFrame;
    const pageSize = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
    // The -wal file: a 32-byte header, then frames of a 24-byte header and a page.
    const inUse = 32 + mxFrame * (pageSize + 24);
    const to = Math.max(inUse, sizeLimit, from - step);
    if (to >= from) return null;
    fs.truncateSync(wal, to);
    return { from, to, ms: performance.now() - began };
  } finally {
    db.exec("COMMIT");
  }
}

/** Runs inside the worker: its only imports are bun:sqlite and node:fs (passed in), its input the messages. */
function workerMain(Db: typeof Database, fs: WorkerFs, trim: typeof trimStep, walIndex: typeof readWalIndex): void {
  let db: Database | null = null;
  self.onmessage = (event: MessageEvent) => {
    const { path, op, sizeLimit, step } = event.data as {
      path: string;
      op: "checkpoint" | "catchUp" | "close";
      sizeLimit: number;
      step: number;
    };
    if (op === "close") {
      db?.close();
      db = null;
      postMessage({ op, ok: true });
      return;
    }
    try {
      if (!db) {
        db = new Db(path, { readwrite: true, create: false });
        // The checkpoint syncs the -wal file before and the database file after copying (NORMAL and FULL both do).
        db.exec("PRAGMA synchronous = NORMAL");
        db.exec("PRAGMA busy_timeout = 0");
      }
      const started = performance.now();
      const row = db.query("PRAGMA wal_checkpoint(PASSIVE)").get() as { busy: number; log: number; checkpointed: number };
      let truncated = null;
      if (op === "catchUp") {
        // The commits this sync stands for are on the card even when the checkpoint had nothing to copy.
        const fd = fs.openSync(`${path}-wal`, "r+");
        try {
          fs.fdatasyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        // No batch commits during a catch-up: the moment to cut a -wal file a long read let grow, a step at a time.
        truncated = trim(db, path, fs, walIndex, sizeLimit, step);
      }
      postMessage({ op, ok: true, ...row, truncated, ms: performance.now() - started });
    } catch (err) {
      postMessage({ op, ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  };
}

const WORKER_SOURCE = `import { Database } from "bun:sqlite";\nimport * as fs from "node:fs";\n(${workerMain.toString()})(Database, fs, ${trimStep.toString()}, ${readWalIndex.toString()});\n`;

/**
 * How many frames of the -wal file are not in the database file yet, read
 * from the -shm file open as `fd` (0 when it cannot be read).
 */
export function framesWaiting(fd: number): number {
  const index = readWalIndex(readSync, fd);
  return index === null ? 0 : Math.max(0, index.mxFrame - index.nBackfill);
}

/**
 * Creates the checkpointer of the database at `dbPath`: `poke()` after a
 * commit starts a checkpoint on the worker when enough is waiting;
 * `catchUpDue()` says whether the next sync should be `catchUp()`. `close()`
 * waits for the job under way (a thread stopped mid-checkpoint would keep
 * its locks) and ends the worker.
 */
export function createCheckpointer(
  dbPath: string,
  log: Log,
  { pages = CHECKPOINT_PAGES, idleMs = IDLE_MS }: { pages?: number; idleMs?: number } = {},
) {
  const shmPath = `${dbPath}-shm`;
  /** The -shm file, opened once (SQLite keeps it while the server's connection is open); null until it could be. */
  let shm: number | null = null;
  /** The worker, started for a job and ended after IDLE_MS without one (a Bun worker is a JavaScript VM of its own: memory). */
  let worker: Worker | null = null;
  let url = "";
  let idleTimer: ReturnType<typeof setTimeout> | null = null;
  /** The jobs sent, answered in order. */
  const jobs: ((r: WorkerAnswer) => void)[] = [];
  let checkpointing = false;
  let catchUpDue = false;
  /** Until when a checkpoint that a reader held back is not tried again (performance.now() ms). */
  let blockedUntil = 0;
  let failing = false;
  let closed = false;
  /** Steps of the cut under way (trimStep), 0 when none. */
  let cutSteps = 0;
  const stats = {
    checkpoints: 0,
    catchUps: 0,
    truncated: 0,
    failed: 0,
    lastMs: 0,
    lastPages: 0,
    workersStarted: 0,
    workersEnded: 0,
  };

  type WorkerAnswer = ({ ok: true } & Partial<CheckpointResult>) | { ok: false; error: string };

  function started(): Worker {
    if (worker) return worker;
    url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    const w = new Worker(url);
    stats.workersStarted++;
    w.onmessage = (event: MessageEvent) => {
      jobs.shift()?.(event.data as WorkerAnswer);
      if (jobs.length === 0 && !closed) idleTimer = setTimeout(() => void end(), idleMs).unref();
    };
    w.onerror = (event) => {
      for (const job of jobs.splice(0)) job({ ok: false, error: `checkpoint worker: ${event.message}` });
    };
    return (worker = w);
  }

  /** Closes the worker's connection (after the job under way) and ends the worker. */
  async function end(): Promise<void> {
    if (!worker) return;
    const w = worker;
    await Promise.race([send("close"), Bun.sleep(30_000)]);
    if (worker !== w || jobs.length > 0) return; // a job came meanwhile: keep it
    w.terminate();
    URL.revokeObjectURL(url);
    worker = null;
    stats.workersEnded++;
  }

  function send(op: "checkpoint" | "catchUp" | "close"): Promise<WorkerAnswer> {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = null;
    const w = started();
    return new Promise((resolve) => {
      jobs.push(resolve);
      w.postMessage({ path: dbPath, op, sizeLimit: WAL_SIZE_LIMIT, step: TRIM_STEP_BYTES });
    });
  }

  function outcome(r: WorkerAnswer): Error | undefined {
    if (r.ok) {
      stats.lastMs = r.ms ?? 0;
      if (failing) log.info("checkpoints work again");
      failing = false;
      return undefined;
    }
    stats.failed++;
    // One line per outage; the -wal file keeps everything meanwhile (it grows).
    if (!failing) log.error("cannot checkpoint the database; its -wal file grows until it can", { error: r.error });
    failing = true;
    return new Error(r.error);
  }

  /** A checkpoint on the worker while ingestion goes on; `round` counts those run back to back. */
  function checkpoint(round: number): void {
    checkpointing = true;
    void send("checkpoint").then((r) => {
      checkpointing = false;
      if (outcome(r) !== undefined) return;
      const { log: frames, checkpointed } = r as CheckpointResult;
      stats.checkpoints++;
      stats.lastPages = checkpointed;
      if (frames - checkpointed >= pages) {
        // A reader (a backup, an export) still needs the old pages: nothing to catch up before it ends. Look again in a second.
        blockedUntil = performance.now() + BLOCKED_RETRY_MS;
        return;
      }
      // What was committed meanwhile is copied by the next sync (step 2), while the readings behind it wait: when
      // that is much (a checkpoint of what a backup held back took a while), another round first, a few at most.
      const left = shm !== null ? framesWaiting(shm) : 0;
      if (left >= CATCH_UP_PAGES && round < MAX_ROUNDS && !closed) return checkpoint(round + 1);
      catchUpDue = !closed;
    });
  }

  return {
    /** Starts a checkpoint when CHECKPOINT_PAGES frames wait and none runs. */
    poke(): void {
      if (checkpointing || catchUpDue || closed || performance.now() < blockedUntil) return;
      try {
        shm ??= openSync(shmPath, "r");
      } catch {
        return;
      }
      if (framesWaiting(shm) < pages) return;
      checkpoint(0);
    },
    /** Whether the next sync should be `catchUp()` (a checkpoint left frames behind). */
    catchUpDue(): boolean {
      return catchUpDue;
    },
    /** Copies what the last checkpoint left, then syncs the -wal file; rejects when either fails. */
    async catchUp(): Promise<void> {
      catchUpDue = false;
      const r = await send("catchUp");
      const err = outcome(r);
      if (err) throw err;
      stats.catchUps++;
      const cut = (r as CheckpointResult).truncated;
      if (cut) {
        stats.truncated++;
        // Two lines per cut: when it starts and when it is done (a step per catch-up in between).
        if (cutSteps++ === 0) log.info("cutting back the -wal file a long read let grow", { bytes: cut.from });
        if (cut.to <= WAL_SIZE_LIMIT) {
          log.info("the -wal file is cut back", { bytes: cut.to, steps: cutSteps, last_step_ms: Math.round(cut.ms) });
          cutSteps = 0;
        }
      }
    },
    /** Waits for the job under way, closes the worker's connection and ends the worker. */
    async close(): Promise<void> {
      closed = true;
      catchUpDue = false;
      if (idleTimer) clearTimeout(idleTimer);
      await end();
      if (shm !== null) closeSync(shm);
      shm = null;
    },
    stats,
  };
}

/** The checkpointer's interface. */
export type Checkpointer = ReturnType<typeof createCheckpointer>;
