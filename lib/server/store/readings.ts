// Storing readings: the ingest hot path. A batch (everything the ingest queue
// gathered in one turn of the event loop, lib/server/mqtt/ingest.ts) goes in
// one transaction together with its hourly and daily rollups, then the
// `readings` event tells the listeners what was stored.

import type { Database } from "bun:sqlite";
import type { CommittedReading, Events } from "./events.ts";
import { toCenti, type IncomingReading } from "./model.ts";
import type { Registry } from "./registry.ts";
import { createRollups } from "./rollups.ts";

/** Creates the reading writes over an open database. */
export function createReadingWrites(db: Database, deps: { registry: Registry; events: Events }) {
  const { registry, events } = deps;
  const rollups = createRollups(db);
  const q = {
    insertReading: db.query<null, [number, number, number, number]>(
      "INSERT OR IGNORE INTO readings (device_id, ts, t, h) VALUES (?, ?, ?, ?)",
    ),
    insertFlag: db.query<null, [number, number, number]>(
      "INSERT OR IGNORE INTO reading_flags (device_id, ts, flags) VALUES (?, ?, ?)",
    ),
    touch: db.query<null, [number, number]>("UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), ?1) WHERE id = ?2"),
  };

  /** Stores the batch; fills `stored` with what was new and `registered` with the devices it added. */
  const storeBatch = db.transaction((batch: IncomingReading[], stored: CommittedReading[], registered: string[]) => {
    // Hourly and daily rollups change in the same commit as the readings (rollups.ts).
    const rollup = rollups.accumulator();
    // last_seen_at once per device and batch, not once per reading.
    const seen = new Map<number, number>();
    for (const { homeId, deviceUid, reading, receivedAt } of batch) {
      if (!registry.has(deviceUid)) registered.push(deviceUid);
      const id = registry.ensure(deviceUid, receivedAt, homeId);
      const t = toCenti(reading.temperature_c);
      const h = toCenti(reading.humidity_pct);
      const changes = q.insertReading.run(id, reading.ts, t, h).changes;
      if (reading.clock_synced === false) q.insertFlag.run(id, reading.ts, 1);
      seen.set(id, Math.max(seen.get(id) ?? 0, receivedAt));
      if (changes > 0) {
        stored.push({ deviceId: id, deviceUid, reading });
        rollup.add(id, reading.ts, t, h);
      }
    }
    for (const [id, at] of seen) q.touch.run(at, id);
    rollup.write();
  });

  return {
    /**
     * Stores a batch of readings in one transaction (group commit): unknown
     * devices are registered as unplaced, a reading already stored (same
     * device and ts) is ignored. Throws when the database cannot commit; then
     * nothing of the batch is stored. Emits `readings` after the commit.
     */
    insertReadings(batch: IncomingReading[]): void {
      const stored: CommittedReading[] = [];
      const registered: string[] = [];
      try {
        storeBatch(batch, stored, registered);
      } catch (err) {
        // The transaction rolled back: forget the devices it had registered.
        for (const uid of registered) registry.forget(uid);
        throw err;
      }
      // The batch is committed whatever a listener does: emit never throws (a throw
      // here would make the broker withhold PUBACKs for stored readings).
      if (stored.length > 0) events.emit("readings", stored);
    },
  };
}
