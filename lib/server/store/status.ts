// What a device says about itself besides readings: its retained status
// (birth with its interval, version and sensor health; last will), and the
// readings the broker refused from it, counted with the last reason.

import type { Database } from "bun:sqlite";
import type { Status } from "../../shared/contract.ts";
import type { Events } from "./events.ts";
import type { Registry } from "./registry.ts";

/** Creates the status writes over an open database. */
export function createStatusWrites(db: Database, deps: { registry: Registry; events: Events }) {
  const { registry, events } = deps;
  const q = {
    setStatus: db.query<null, [string, number, number | null, string | null, number | null, string | null, number]>(
      `UPDATE devices SET state = ?1, state_at = ?2,
         interval_s = coalesce(?3, interval_s), version = coalesce(?4, version),
         -- a last will says nothing about the sensor: keep what the device reported last
         sensor_failures = CASE WHEN ?1 = 'online' THEN ?5 ELSE sensor_failures END,
         last_error = CASE WHEN ?1 = 'online' THEN ?6 ELSE last_error END,
         last_seen_at = max(coalesce(last_seen_at, 0), ?2)
       WHERE id = ?7`,
    ),
    refuse: db.query<null, [number, string, number, number]>(
      `UPDATE devices SET refused_count = refused_count + ?1, last_refusal = ?2, last_refusal_at = ?3,
         last_seen_at = max(coalesce(last_seen_at, 0), ?3)
       WHERE id = ?4`,
    ),
  };

  return {
    /** Records a retained status message (birth or last will); emits `status`. */
    applyStatus(homeId: string, deviceUid: string, status: Status, at: number): void {
      const id = registry.ensure(deviceUid, at, homeId);
      q.setStatus.run(
        status.state,
        at,
        status.interval_s ?? null,
        status.version ?? null,
        status.sensor_failures ?? null,
        status.last_error ?? null,
        id,
      );
      events.emit("status", { homeId, deviceUid, status, at });
    },
    /**
     * Counts refused readings against their devices, with the last reason,
     * in one transaction. Only devices the server knows are counted: garbage
     * on 10,000 made-up device topics must not register 10,000 devices.
     * Returns how many refusals were of unknown devices (not stored).
     */
    recordRefusals(refusals: Iterable<{ deviceUid: string; count: number; reason: string; at: number }>): number {
      let unknown = 0;
      db.transaction(() => {
        for (const r of refusals) {
          const id = registry.idOf(r.deviceUid);
          if (id === null) unknown += r.count;
          else q.refuse.run(r.count, r.reason, r.at, id);
        }
      })();
      return unknown;
    },
    /** Whether the server knows this device (a refusal of an unknown one is not stored). */
    knowsDevice: (deviceUid: string): boolean => registry.has(deviceUid),
  };
}
