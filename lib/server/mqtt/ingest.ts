// Group commit: readings that arrive while the event loop is busy are queued
// and stored together in one transaction (one fsync), then each publisher is
// answered. This is what lets "PUBACK only after commit" keep up with many
// sensors: the busier the server, the larger each batch.

import type { Log } from "../../shared/log.ts";
import type { IncomingReading, Store } from "../store/store.ts";
import { createHistogram } from "../metrics/format.ts";

/** Called once the reading is committed (err undefined) or could not be (err set). */
export type Done = (err?: Error) => void;

/** Most readings in one transaction; more wait for the next one. */
const MAX_BATCH = 5000;
/** Buckets of the time from a reading's arrival to its commit (seconds; /metrics). */
export const ACK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Buckets of the readings per commit (/metrics). */
export const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/** Creates the ingest queue in front of `store.insertReadings`. */
export function createIngest({ store, log }: { store: Pick<Store, "insertReadings">; log: Log }) {
  let queue: IncomingReading[] = [];
  let waiters: Done[] = [];
  let scheduled = false;
  let failing = false;
  const stats = { committed: 0, batches: 0, failedBatches: 0, largestBatch: 0 };
  // For /metrics: when each queued reading arrived, and the histograms (issue 13).
  const arrived: number[] = [];
  const histograms = { ack: createHistogram(ACK_BUCKETS), batch: createHistogram(BATCH_BUCKETS) };

  function flush(): void {
    scheduled = false;
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
      const end = performance.now();
      for (const t of since) histograms.ack.observe((end - t) / 1000);
      histograms.batch.observe(batch.length);
      for (const d of done) d();
    }
  }

  return {
    /** Queues a reading; `done` runs after its transaction commits or fails. */
    submit(item: IncomingReading, done: Done): void {
      queue.push(item);
      waiters.push(done);
      arrived.push(performance.now());
      if (!scheduled) {
        scheduled = true;
        // setImmediate, not a microtask: lets every socket that is readable
        // now add its readings to this batch first.
        setImmediate(flush);
      }
    },
    /** Commits what is queued now (shutdown). */
    drain: flush,
    /** Readings waiting for a commit. */
    get pending() {
      return queue.length;
    },
    /** Whether the last commit failed (for /health). */
    get failing() {
      return failing;
    },
    stats,
    /** Arrival-to-commit time (the PUBACK follows at once) and readings per commit, for /metrics. */
    histograms,
  };
}

/** The ingest queue's interface. */
export type Ingest = ReturnType<typeof createIngest>;
