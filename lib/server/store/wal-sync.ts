// Durable commits without holding the event loop (issue 17).
//
// With `synchronous = FULL` SQLite calls fdatasync on the -wal file inside
// every COMMIT, and bun:sqlite is synchronous: for as long as the card takes
// to sync (a few ms on a good SD card, hundreds on a worn one) no socket is
// read and no PUBACK goes out. The server's connection runs with `synchronous
// = NORMAL` instead (db.ts, `walSync: "deferred"`): a COMMIT appends its
// frames to the -wal file and returns, and this module syncs that file on
// libuv's thread pool (node:fs fdatasync) while the event loop goes on
// reading packets; while syncs are fast (under INLINE_BELOW_MS) it syncs on
// the loop, which costs less than handing them over. A reading is
// acknowledged only after a sync that began after its commit had returned, so
// "a PUBACK means the reading is on the
// card" holds as before. One sync covers every commit made before it began,
// and a reading that arrives while a sync runs cannot be acknowledged before
// the next one anyway: the ingest queue (mqtt/ingest.ts) keeps those readings
// and commits them together when the sync ends (`beforeNextSync`), one
// transaction where committing as they come would make many.
//
// Why this is as safe as FULL for what is acknowledged: in WAL mode a commit
// is its frames in the -wal file, and recovery after a power cut keeps every
// transaction whose frames (with its commit frame) reached the disk. NORMAL
// still syncs the -wal file before a checkpoint and the database file after
// one, so a checkpoint never overwrites what is not on the card yet.
//
// Other writes (a room renamed, an account, a session) are not waited for:
// they reach the card with the next sync, and `sweep` syncs within
// SWEEP_MS of any write while the -wal file keeps changing without readings.

import { closeSync, fdatasync, fdatasyncSync, fstatSync, openSync } from "node:fs";
import type { Log } from "../../shared/log.ts";
import type { Checkpointer } from "./checkpointer.ts";

/** Called once the commits made before it was asked for are on the card (err: the sync failed). */
export type Synced = (err?: Error) => void;

/** How soon a write that no reading's sync covers reaches the card (ms). */
export const SWEEP_MS = 1000;
/**
 * A sync on the event loop that takes longer than this (ms) sends the syncs
 * of the next OFF_LOOP_MS to the thread pool; then one runs on the loop again
 * to see whether the card is still slow. Handing a sync over costs more CPU
 * than a fast disk's sync itself (~0.1 ms of CPU against ~0.2 ms on the
 * 2-core machine of bench/ingest.ts), so fast syncs stay on the loop; an SD
 * card's take 2-20 ms, and then the loop blocks for one sync per OFF_LOOP_MS.
 */
export const INLINE_BELOW_MS = 1;
/** How long syncs stay off the loop after a slow one (ms). */
export const OFF_LOOP_MS = 10_000;

/**
 * Syncs `dbPath`-wal off the event loop. `afterCommit(cb)` runs `cb` once a
 * sync that started after the call has finished. `close()` waits for the
 * sync in flight and closes the file. With a `checkpointer`, it is poked
 * after each sync, and a sync it asks for is its catch-up checkpoint
 * (checkpointer.ts, step 2).
 */
export function createWalSync(dbPath: string, log: Log, checkpointer?: Pick<Checkpointer, "poke" | "catchUpDue" | "catchUp">) {
  const walPath = `${dbPath}-wal`;
  let fd: number | null = null;
  /** Waiting for the next sync to start. */
  let next: Synced[] = [];
  /** Whether a sync is in flight. */
  let syncing: Promise<void> | null = null;
  /** Run when the sync in flight ends, before the next one starts. */
  let beforeNext: (() => void)[] = [];
  let failing = false;
  /** The -wal file's size and change time when the sweep last looked. */
  let sweptStamp = "";
  const stats = { syncs: 0, offLoop: 0, failed: 0 };
  /** Until when syncs run off the loop (performance.now() ms); the first one runs on the loop and measures the card. */
  let offLoopUntil = 0;

  /**
   * The -wal file, opened once: SQLite keeps it (the same file) while the
   * server's connection is open. The sweep looks once a second whether it was
   * removed all the same, and opens it again then.
   */
  function file(): number {
    fd ??= openSync(walPath, "r+");
    return fd;
  }

  function closeQuietly(): void {
    if (fd === null) return;
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    fd = null;
  }

  function stamp(f: number): string {
    const s = fstatSync(f);
    return `${s.size}:${s.mtimeMs}`;
  }

  function start(): void {
    const waiting = next;
    next = [];
    let resolve!: () => void;
    // Set before the sync runs: an inline one ends (and clears it) before this function returns.
    syncing = new Promise<void>((r) => (resolve = r));
    const ended = (err?: Error | null) => finish(waiting, err ?? undefined, resolve);
    let f: number;
    try {
      f = file();
    } catch (err) {
      return ended(err as Error);
    }
    stats.syncs++;
    if (checkpointer?.catchUpDue()) {
      stats.offLoop++;
      checkpointer.catchUp().then(() => ended(), ended);
    } else if (performance.now() < offLoopUntil) {
      stats.offLoop++;
      fdatasync(f, ended);
    } else {
      const began = performance.now();
      let err: Error | undefined;
      try {
        fdatasyncSync(f);
      } catch (e) {
        err = e as Error;
      }
      const took = performance.now() - began;
      if (took >= INLINE_BELOW_MS) offLoopUntil = began + took + OFF_LOOP_MS;
      ended(err);
    }
  }

  function finish(waiting: Synced[], err: Error | undefined, resolve: () => void): void {
    if (err) {
      stats.failed++;
      // One line per outage, not one per sync.
      if (!failing)
        log.error("cannot sync the database's journal to the card; readings are not acknowledged", { error: err.message });
      failing = true;
    } else if (failing) {
      log.info("syncing the database's journal again");
      failing = false;
    }
    syncing = null;
    resolve();
    for (const cb of waiting) cb(err);
    // What waited for this sync to end commits now, and shares the next one.
    const ready = beforeNext;
    beforeNext = [];
    for (const fn of ready) fn();
    if (!syncing && next.length > 0) start();
    checkpointer?.poke();
  }

  // Writes other than readings (and a -wal file removed under us) are caught here.
  const sweep = setInterval(() => {
    try {
      if (fd !== null && fstatSync(fd).nlink === 0) closeQuietly();
      // Only a sync that starts now covers what changed: with one under way, look again at the next sweep.
      const now = stamp(file());
      if (now !== sweptStamp && !syncing) {
        sweptStamp = now;
        start();
      }
    } catch {
      // no -wal file yet; the next reading's sync reports a real problem
    }
  }, SWEEP_MS);
  sweep.unref();

  return {
    /** Runs `cb` after a sync of the -wal file that starts after this call. */
    afterCommit(cb: Synced): void {
      next.push(cb);
      if (!syncing) start();
    },
    /** Whether a sync is in flight: a commit now would wait for the next one anyway. */
    busy(): boolean {
      return syncing !== null;
    },
    /** Runs `fn` when the sync in flight ends, before the next one starts (at once when none is in flight). */
    beforeNextSync(fn: () => void): void {
      if (syncing) beforeNext.push(fn);
      else fn();
    },
    /** Resolves once no sync is in flight or asked for (every callback has run). */
    async idle(): Promise<void> {
      while (syncing) await syncing;
    },
    /** Waits for every asked-for sync, then closes the file. */
    async close(): Promise<void> {
      clearInterval(sweep);
      while (syncing) await syncing;
      closeQuietly();
    },
    /** Syncs done and failed (/metrics, tests). */
    stats,
  };
}

/** The WAL syncer's interface. */
export type WalSync = ReturnType<typeof createWalSync>;
