// Storing readings: the ingest hot path. A batch (everything the ingest queue
// gathered in one turn of the event loop, lib/server/mqtt/ingest.ts) goes in
// one transaction together with its hourly and daily rollups, then the
// `readings` event tells the listeners what was stored. And the same writes
// for readings brought in from the earlier server (import-legacy), in big
// chunks, with the ledger that keeps a second import from counting again.

import type { Database } from "bun:sqlite";
import type { CommittedReading, Events } from "./events.ts";
import { toCenti, type IncomingReading } from "./model.ts";
import type { Registry } from "./registry.ts";
import { addToHours, type HeldRollups, type HourAggs } from "./held-rollups.ts";
import { createRollups } from "./rollups.ts";

/** A reading brought in from elsewhere (import-legacy), in °C and %. */
export interface ImportedReading {
  deviceUid: string;
  ts: number;
  temperature: number;
  humidity: number;
}

/** What storing a chunk of imported readings did. */
export interface ImportedCounts {
  /** New: stored, or put in the rollups only. */
  added: number;
  /** Already here (stored, or covered by an earlier import). */
  present: number;
  /** Of the added ones, those older than the raw horizon: in the rollups only. */
  rollupsOnly: number;
}

/** Creates the reading writes over an open database. */
export function createReadingWrites(db: Database, deps: { registry: Registry; events: Events; held: HeldRollups }) {
  const { registry, events, held } = deps;
  const rollups = createRollups(db);
  const q = {
    insertReading: db.query<null, [number, number, number, number]>(
      "INSERT OR IGNORE INTO readings (device_id, ts, t, h) VALUES (?, ?, ?, ?)",
    ),
    insertFlag: db.query<null, [number, number, number]>(
      "INSERT OR IGNORE INTO reading_flags (device_id, ts, flags) VALUES (?, ?, ?)",
    ),
    touch: db.query<null, [number, number]>("UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), ?1) WHERE id = ?2"),
    ledger: db.query<{ first_ts: number; last_ts: number }, [number]>(
      "SELECT first_ts, last_ts FROM legacy_import WHERE device_id = ?",
    ),
    setLedger: db.query<null, [number, number, number]>(
      `INSERT INTO legacy_import (device_id, first_ts, last_ts) VALUES (?1, ?2, ?3)
       ON CONFLICT (device_id) DO UPDATE SET first_ts = min(first_ts, ?2), last_ts = max(last_ts, ?3)`,
    ),
  };

  /**
   * Stores the batch; fills `stored` with what was new, `registered` with the
   * devices it added and `hold` with the rollups of new readings at or after
   * `heldFrom` (held in memory after the commit, held-rollups.ts).
   */
  const storeBatch = db.transaction(
    (batch: IncomingReading[], stored: CommittedReading[], registered: string[], heldFrom: number, hold: HourAggs) => {
      // Rollups of past hours change in the same commit as the readings (rollups.ts);
      // the open hour's are held, and written here once their hour is over.
      const rollup = rollups.accumulator();
      if (heldFrom > held.from) for (const e of held.takeBefore(heldFrom).values()) rollup.addHour(e.deviceId, e.b, e.day, e.agg);
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
          if (reading.ts >= heldFrom) addToHours(hold, held.dayOf, id, reading.ts, t, h);
          else rollup.add(id, reading.ts, t, h);
        }
      }
      for (const [id, at] of seen) q.touch.run(at, id);
      rollup.write();
    },
  );

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
      const heldFrom = held.due();
      const hold: HourAggs = new Map();
      try {
        storeBatch(batch, stored, registered, heldFrom, hold);
      } catch (err) {
        // The transaction rolled back: forget the devices it had registered (what is held stays as it was).
        for (const uid of registered) registry.forget(uid);
        throw err;
      }
      held.committed(heldFrom, hold);
      // The batch is committed whatever a listener does: emit never throws (a throw
      // here would make the broker withhold PUBACKs for stored readings).
      if (stored.length > 0) events.emit("readings", stored);
    },

    /**
     * Starts an import of readings from the earlier server: returns a writer
     * that stores one chunk per transaction, with its rollups, and says what
     * it added. A reading already stored (same device and ts) is present. A
     * reading older than the raw horizon is not stored raw (retention would
     * delete it) but goes into the rollups, unless it lies in the span an
     * earlier import of its device covered: the legacy_import ledger keeps a
     * second import from counting it again, where the raw rows are gone. The
     * devices' last_seen_at moves up to their newest reading. Nothing is
     * announced: the import runs with the server stopped.
     */
    importReadings(): (chunk: ImportedReading[]) => ImportedCounts {
      const horizon = rollups.horizon();
      // Each device's ledger as it was before this import reached it.
      const ledgers = new Map<number, { first_ts: number; last_ts: number } | null>();
      const importChunk = db.transaction((chunk: ImportedReading[], hold: HourAggs): ImportedCounts => {
        const counts = { added: 0, present: 0, rollupsOnly: 0 };
        const acc = rollups.accumulator({ keepOld: true });
        const span = new Map<number, { first: number; last: number }>();
        for (const r of chunk) {
          const id = registry.ensure(r.deviceUid, r.ts);
          const t = toCenti(r.temperature);
          const h = toCenti(r.humidity);
          let added = false;
          if (r.ts < horizon) {
            let ledger = ledgers.get(id);
            if (ledger === undefined) ledgers.set(id, (ledger = q.ledger.get(id)));
            if (ledger && r.ts >= ledger.first_ts && r.ts <= ledger.last_ts) counts.present++;
            else {
              added = true;
              counts.rollupsOnly++;
            }
          } else if (q.insertReading.run(id, r.ts, t, h).changes > 0) added = true;
          else counts.present++;
          if (added) {
            counts.added++;
            // Readings of the held hours are held like ingested ones (held-rollups.ts).
            if (r.ts >= held.from) addToHours(hold, held.dayOf, id, r.ts, t, h);
            else acc.add(id, r.ts, t, h);
          }
          const s = span.get(id);
          if (!s) span.set(id, { first: r.ts, last: r.ts });
          else ((s.first = Math.min(s.first, r.ts)), (s.last = Math.max(s.last, r.ts)));
        }
        acc.write();
        for (const [id, s] of span) {
          q.setLedger.run(id, s.first, s.last);
          q.touch.run(s.last, id);
        }
        return counts;
      });
      return (chunk) => {
        const hold: HourAggs = new Map();
        const counts = importChunk(chunk, hold);
        held.committed(held.from, hold);
        return counts;
      };
    },
  };
}
