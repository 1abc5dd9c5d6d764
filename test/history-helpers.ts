// Helpers for the tests of the store and what is built on it (rollups,
// history, retention, statistics, export, live summaries, config publishing):
// a store on a fresh database, a seeded PRNG for random data sets and a
// reading as ingestion hands it to the store.

import { expect } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../lib/server/store/db.ts";
import { createStore, type IncomingReading } from "../lib/server/store/store.ts";
import type { Log } from "../lib/shared/log.ts";
import { tempDir, type TestServer } from "./helpers.ts";

/** A store over a new database file in a temp directory; `close()` closes the database and removes the directory. */
export function openTempStore(options: { now?: () => number; log?: Log } = {}) {
  const dir = tempDir();
  const db = openDatabase(join(dir.path, "techtemp.db"));
  return {
    db,
    store: createStore(db, options),
    close() {
      db.close();
      dir.cleanup();
    },
  };
}

/** mulberry32: the same sequence for a seed on every run, different data per seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A reading of `uid` taken (and received) at `ts`, as the ingest queue passes it to `store.insertReadings`. */
export const reading = (uid: string, ts: number, temperature: number, humidity = 50, clockSynced = true): IncomingReading => ({
  homeId: "home-001",
  deviceUid: uid,
  reading: { ts, temperature_c: temperature, humidity_pct: humidity, ...(clockSynced ? {} : { clock_synced: false }) },
  receivedAt: ts,
});

/** Asks every path with every query and expects a 400 whose message starts with the field's name. */
export async function expectBadRequests(
  server: TestServer,
  paths: string[],
  cases: [query: string, field: string][],
): Promise<void> {
  for (const [query, field] of cases) {
    for (const path of paths) {
      const r = await server.api(`${path}?${query}`);
      expect(r.status, `${path}?${query}`).toBe(400);
      expect(r.body.error, `${path}?${query}`).toStartWith(`${field}: `);
    }
  }
}
