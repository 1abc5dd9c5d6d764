// What /metrics asks the database (lib/server/metrics): how far retention
// has got. Cheap at every scrape: one index seek per device.

import type { Database } from "bun:sqlite";

/** Creates the operations queries over an open database. */
export function createOpsQueries(db: Database) {
  const q = {
    // The oldest raw reading: the smallest per device, each one seek on the (device_id, ts) key.
    oldest: db.query<{ ts: number | null }, []>(
      "SELECT min((SELECT min(ts) FROM readings r WHERE r.device_id = d.id)) AS ts FROM devices d",
    ),
    horizon: db.query<{ value: number }, []>("SELECT value FROM history_meta WHERE key = 'raw_horizon'"),
  };
  return {
    /** The time of the oldest raw reading kept (epoch ms), or null when there is none. */
    oldestRawReading(): number | null {
      return q.oldest.get()?.ts ?? null;
    },
    /** Retention's horizon: raw readings before it may have been deleted (epoch ms), or null before its first run. */
    rawHorizon(): number | null {
      return q.horizon.get()?.value ?? null;
    },
  };
}

/** The operations queries' interface. */
export type OpsQueries = ReturnType<typeof createOpsQueries>;
