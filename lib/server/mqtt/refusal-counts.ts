// Refused readings counted on their devices, a batch at a time: every
// refusal that arrives in one turn of the event loop is written in one
// transaction (one fsync), as readings are (ingest.ts). A flood of garbage
// (10,000 made-up device topics) therefore costs a few transactions instead
// of 10,000, and the sensors' PUBACKs behind it are not kept waiting.
// Refusals of devices the server does not know are not stored (the store
// would have to register them); the broker counts them in /api/v1/stats.

import type { Log } from "../../shared/log.ts";
import type { Store } from "../store/store.ts";

/** Most devices remembered between two writes; a flood beyond it is counted, not kept (the write comes on the next tick anyway). */
const MAX_PENDING = 10_000;

/** Creates the refusal counter in front of `store.recordRefusals`. */
export function createRefusalCounts(deps: {
  store: Pick<Store, "recordRefusals">;
  log: Log;
  /** Called with how many refusals were not counted on a device (unknown devices, or past MAX_PENDING). */
  onNotCounted(count: number): void;
}) {
  let pending = new Map<string, { deviceUid: string; count: number; reason: string; at: number }>();
  let scheduled = false;
  let failing = false;

  function flush(): void {
    scheduled = false;
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    try {
      deps.onNotCounted(deps.store.recordRefusals(batch.values()));
      failing = false;
    } catch (err) {
      // The count is lost, the reading was refused anyway; one line per outage.
      if (!failing) deps.log.error("cannot count refused readings", { devices: batch.size, error: err as Error });
      failing = true;
    }
  }

  return {
    /** Counts one refused reading of `deviceUid`; written with the others of this turn. */
    add(deviceUid: string, reason: string, at: number): void {
      const entry = pending.get(deviceUid);
      if (entry) {
        entry.count++;
        entry.reason = reason;
        entry.at = at;
      } else if (pending.size < MAX_PENDING) {
        pending.set(deviceUid, { deviceUid, count: 1, reason, at });
      } else {
        deps.onNotCounted(1);
      }
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    /** Writes what is pending now (shutdown). */
    flush,
  };
}
