// Recent readings for the dashboard (lib/server/live/live.ts): a device's
// last two readings and its last day in slots, which the live summaries read
// once and then keep current from each commit; and the room a reading was
// taken in, for a latest reading older than its device's current placement.

import type { Database } from "bun:sqlite";
import type { RawRow } from "./history-queries.ts";

/** One device's readings over one slot, values in hundredths. */
export interface RecentSlot {
  /** Slot start (epoch ms, a multiple of the slot width). */
  b: number;
  n: number;
  t_sum: number;
  t_min: number;
  t_max: number;
  h_sum: number;
  h_min: number;
  h_max: number;
}

/** Creates the recent-readings queries over an open database. */
export function createRecentQueries(db: Database) {
  const q = {
    lastTwo: db.query<RawRow, [number]>("SELECT ts, t, h FROM readings WHERE device_id = ? ORDER BY ts DESC LIMIT 2"),
    // Integer division floors epoch ms to the slot start (ts ≥ 0 here).
    slots: db.query<RecentSlot, [number, number, number]>(
      `SELECT (ts / ?3) * ?3 AS b, count(*) AS n, sum(t) AS t_sum, min(t) AS t_min, max(t) AS t_max,
         sum(h) AS h_sum, min(h) AS h_min, max(h) AS h_max
       FROM readings WHERE device_id = ?1 AND ts >= ?2 GROUP BY b ORDER BY b`,
    ),
    roomAt: db.query<{ uid: string }, [number, number]>(
      `SELECT r.uid FROM placements p JOIN rooms r ON r.id = p.room_id
       WHERE p.device_id = ?1 AND p.from_ts <= ?2 AND (p.to_ts IS NULL OR p.to_ts > ?2)`,
    ),
  };
  return {
    /** The device's two newest readings, newest first (values in hundredths). */
    lastTwo: (deviceId: number): RawRow[] => q.lastTwo.all(deviceId),
    /** The device's readings since `from`, per slot of `widthMs`, oldest first. */
    slots: (deviceId: number, from: number, widthMs: number): RecentSlot[] => q.slots.all(deviceId, Math.max(0, from), widthMs),
    /** The uid of the room the device was in at `ts`, or null. */
    roomAt: (deviceId: number, ts: number): string | null => q.roomAt.get(deviceId, ts)?.uid ?? null,
  };
}

/** The recent-readings queries' interface. */
export type RecentQueries = ReturnType<typeof createRecentQueries>;
