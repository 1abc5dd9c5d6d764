// Group commit: readings are queued and stored together in one transaction
// (one fsync), then each publisher is answered. This is what lets "PUBACK only
// after commit" keep up with many sensors, and what keeps an SD card alive:
//
// - The commit window (`ingest_commit_window_ms`): a reading that arrives to
//   an empty queue waits at most this long for others to join its
//   transaction. 50 sensors reporting once a second at random moments make
//   ~4 commits a second at 250 ms instead of 50, and each commit rewrites
//   whole 4 KiB pages, so the bytes written per reading fall with it
//   (bench/writes.ts). The price: a PUBACK comes up to the window later.
// - A full batch does not wait: once BATCH_NOW readings are queued they are
//   committed at the next turn of the event loop (the per-reading cost of a
//   commit is already small there), so a busy server or a sensor replaying
//   its outbox is not slowed down by the window.
// - Nor does a device that sends again within twice the window: it is
//   replaying a backlog one reading at a time (MQTT.js resending after a
//   reconnect, an earlier agent with one message in flight), and a window per
//   reading would slow it to a few readings a second.
// - Window 0 is the behaviour before the window: every turn of the event
//   loop commits what arrived in it.
//
// A commit returns once its frames are in the -wal file; the publishers are
// answered after `durable` says a sync that began after the commit is done
// (store/wal-sync.ts: the sync runs off the event loop, so packets are read
// meanwhile). Readings that arrive while a sync runs are committed together
// when it ends, right before the next sync: they could not be acknowledged
// sooner, and one transaction costs less CPU than many. Without `durable`
// (tests that build an ingest by hand, a database that syncs in its COMMIT)
// they are answered once COMMIT returns.

import type { Log } from "../../shared/log.ts";
import type { IncomingReading, Store } from "../store/store.ts";
import type { Synced } from "../store/wal-sync.ts";
import { createHistogram } from "../metrics/format.ts";

/** What makes a commit durable (store/wal-sync.ts): its callback runs once the commits before it are on the card. */
export interface Durable {
  afterCommit(synced: Synced): void;
  /** Whether a sync is in flight (a commit now would wait for the next one). */
  busy(): boolean;
  /** Runs `fn` when the sync in flight ends, before the next starts. */
  beforeNextSync(fn: () => void): void;
}

/** COMMIT is durable by itself (synchronous = FULL): nothing to wait for. */
const SYNCED_IN_COMMIT: Durable = { afterCommit: (synced) => synced(), busy: () => false, beforeNextSync: (fn) => fn() };

/** Called once the reading is committed (err undefined) or could not be (err set). */
export type Done = (err?: Error) => void;

/** Most readings in one transaction; more wait for the next one. */
const MAX_BATCH = 5000;
/** Buckets of the time from a reading's arrival to its commit's sync, when its PUBACK goes (seconds; /metrics). */
export const ACK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Buckets of the readings per commit (/metrics). */
export const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
/** Queued readings that are committed without waiting for the window to end. */
export const BATCH_NOW = 100;
/**
 * Readings waiting for a commit at most. They wait while a sync of the card is
 * under way (a card that hangs holds them all); past this a new reading is
 * refused (no PUBACK, so its sensor keeps it and sends it again) instead of
 * growing the queue without end. ~200 B each: ~4 MB.
 */
export const MAX_QUEUED = 20_000;
/** A full queue is logged at most this often. */
const FULL_LOG_EVERY_MS = 60_000;
/** Devices whose last arrival is remembered (to tell a replay from a periodic reading); beyond it the memory starts over. */
const RECENT_DEVICES = 10_000;

/**
 * Creates the ingest queue in front of `store.insertReadings`; `windowMs` is
 * the commit window (0 = none), `durable` runs its callback once what was
 * committed before the call is on the card (none: it is once COMMIT returns).
 */
export function createIngest({
  store,
  log,
  windowMs = 0,
  durable = SYNCED_IN_COMMIT,
  maxQueued = MAX_QUEUED,
}: {
  store: Pick<Store, "insertReadings">;
  log: Log;
  windowMs?: number;
  durable?: Durable;
  /** Readings waiting for a commit at most (MAX_QUEUED). */
  maxQueued?: number;
}) {
  let queue: IncomingReading[] = [];
  let waiters: Done[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let immediate = false;
  let failing = false;
  const stats = { committed: 0, batches: 0, failedBatches: 0, largestBatch: 0, refusedFull: 0 };
  let fullLoggedAt = -Infinity;
  // For /metrics: when each queued reading arrived, and the histograms (issue 13).
  const arrived: number[] = [];
  const histograms = { ack: createHistogram(ACK_BUCKETS), batch: createHistogram(BATCH_BUCKETS) };
  /** When each device's last reading arrived (monotonic ms). */
  const lastArrival = new Map<string, number>();

  /** Whether a flush waits for the sync in flight to end. */
  let afterSync = false;
  /** Whether the last sync of a commit failed (the readings stored, not acknowledged). */
  let syncFailing = false;

  /** Commits what is queued, unless a sync is in flight: then when it ends (`force`: now, at shutdown). */
  function flush(force = false): void {
    if (timer) clearTimeout(timer);
    timer = null;
    immediate = false;
    if (!force && durable.busy()) {
      if (!afterSync) {
        afterSync = true;
        durable.beforeNextSync(() => {
          afterSync = false;
          flush();
        });
      }
      return;
    }
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      const done = waiters.splice(0, batch.length);
      const since = arrived.splice(0, batch.length);
      try {
        store.insertReadings(batch);
      } catch (err) {
        stats.failedBatches++;
        const error = err instanceof Error ? err : new Error(String(err));
        // One line per outage, not one per reading.
        if (!failing)
          log.error("cannot store readings; not acknowledging them so sensors send them again", {
            error: error.message,
            readings: batch.length,
          });
        failing = true;
        for (const d of done) d(error);
        continue;
      }
      if (failing) log.info("storing readings again");
      failing = false;
      stats.committed += batch.length;
      stats.batches++;
      stats.largestBatch = Math.max(stats.largestBatch, batch.length);
      histograms.batch.observe(batch.length);
      durable.afterCommit((err) => {
        // A failed sync (logged by the syncer): stored, but not known to be on the card; the sensor sends again.
        syncFailing = err !== undefined;
        if (err) return done.forEach((d) => d(err));
        const end = performance.now();
        for (const t of since) histograms.ack.observe((end - t) / 1000);
        for (const d of done) d();
      });
    }
  }

  /** Commits at the next turn of the event loop: after every socket readable now has added its readings. */
  function flushSoon(): void {
    if (immediate) return;
    immediate = true;
    if (timer) clearTimeout(timer);
    timer = null;
    // setImmediate, not a microtask: lets every socket that is readable
    // now add its readings to this batch first.
    setImmediate(flush);
  }

  return {
    /** Queues a reading; `done` runs after its transaction commits or fails. */
    submit(item: IncomingReading, done: Done): void {
      if (queue.length >= maxQueued) {
        stats.refusedFull++;
        const at = performance.now();
        if (at - fullLoggedAt >= FULL_LOG_EVERY_MS) {
          fullLoggedAt = at;
          log.warn("readings refused: the queue waiting for the card is full (is the card hanging?); sensors send them again", {
            queued: queue.length,
            refused_so_far: stats.refusedFull,
          });
        }
        return done(new Error(`ingest queue full (${maxQueued} readings waiting for the card)`));
      }
      queue.push(item);
      waiters.push(done);
      const at = performance.now();
      arrived.push(at);
      if (windowMs <= 0) return flushSoon();
      const last = lastArrival.get(item.deviceUid);
      if (lastArrival.size >= RECENT_DEVICES) lastArrival.clear();
      lastArrival.set(item.deviceUid, at);
      if (immediate) return;
      const replaying = last !== undefined && at - last < 2 * windowMs;
      if (replaying || queue.length >= BATCH_NOW) flushSoon();
      else timer ??= setTimeout(flush, windowMs);
    },
    /** Commits what is queued now (shutdown). */
    drain: () => flush(true),
    /** Readings waiting for a commit. */
    get pending() {
      return queue.length;
    },
    /** Whether the last commit, or the last sync of one, failed (for /health). */
    get failing() {
      return failing || syncFailing;
    },
    /** The commit window in ms (0 = none). */
    windowMs,
    stats,
    /** Arrival-to-commit time (the PUBACK follows at once) and readings per commit, for /metrics. */
    histograms,
  };
}

/** The ingest queue's interface. */
export type Ingest = ReturnType<typeof createIngest>;
