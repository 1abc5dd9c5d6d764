// Which devices exist: uid → row id (and the home id it publishes under),
// cached in memory so ingestion does not look each device up, and the
// registration of a device the server has not seen yet (unplaced). Shared by
// the writes of what devices send and by the devices a person manages.

import type { Database } from "bun:sqlite";

/** Creates the device registry over an open database; fills its cache from the devices table. */
export function createRegistry(db: Database) {
  const q = {
    deviceIds: db.query<{ id: number; uid: string; home_id: string | null }, []>("SELECT id, uid, home_id FROM devices"),
    setHome: db.query<null, [string, number]>("UPDATE devices SET home_id = ? WHERE id = ?"),
    // Returns the existing row too (the no-op update makes RETURNING see it): another process
    // (import-legacy) may have added the device since this one filled its cache.
    insertDevice: db.query<{ id: number; home_id: string | null }, [string, number]>(
      `INSERT INTO devices (uid, created_at) VALUES (?, ?)
       ON CONFLICT (uid) DO UPDATE SET uid = excluded.uid RETURNING id, home_id`,
    ),
  };

  const cache = new Map<string, { id: number; home: string | null }>();
  for (const { id, uid, home_id } of q.deviceIds.all()) cache.set(uid, { id, home: home_id });

  return {
    /**
     * A device's id, registering an unknown device as unplaced (created at
     * `at`). `home` is the home id it publishes under, remembered so its
     * config reaches it.
     */
    ensure(uid: string, at: number, home: string | null = null): number {
      const cached = cache.get(uid);
      if (cached === undefined) {
        const row = q.insertDevice.get(uid, at)!;
        if (home !== null && row.home_id !== home) q.setHome.run(home, row.id);
        cache.set(uid, { id: row.id, home: home ?? row.home_id });
        return row.id;
      }
      if (home !== null && cached.home !== home) {
        q.setHome.run(home, cached.id);
        cached.home = home;
      }
      return cached.id;
    },
    /** A known device's id, or null (nothing is registered). */
    idOf: (uid: string): number | null => cache.get(uid)?.id ?? null,
    /** Whether the device is known (in the cache). */
    has: (uid: string): boolean => cache.has(uid),
    /** How many devices are known. */
    count: (): number => cache.size,
    /** Forgets a device: it was deleted, or the transaction that registered it rolled back. */
    forget: (uid: string): void => void cache.delete(uid),
  };
}

/** The device registry's interface. */
export type Registry = ReturnType<typeof createRegistry>;
