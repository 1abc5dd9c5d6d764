// A room's history follows placements: buckets that a move cuts in two are
// split exactly while raw readings exist (the same as a GROUP BY over raw
// readings), and go whole to the room holding the middle of the hour once
// retention has deleted them.

import { afterEach, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { openDatabase } from "../lib/server/store/db.ts";
import { createLog } from "../lib/shared/log.ts";
import { createHistory, type BucketPoint } from "../lib/server/history/history.ts";
import { createRetention } from "../lib/server/store/retention.ts";
import { createStore, type IncomingReading } from "../lib/server/store/store.ts";
import { tempDir } from "./helpers.ts";
import { prng, reading } from "./history-helpers.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 2, 1);

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.reverse()) c();
  cleanup = [];
});

function world(start: number) {
  const dir = tempDir();
  const db = openDatabase(join(dir.path, "techtemp.db"));
  cleanup.push(() => {
    db.close();
    dir.cleanup();
  });
  const clock = { now: start };
  const store = createStore(db, { now: () => clock.now });
  const history = createHistory(store.history);
  return { db, clock, store, history };
}

/** The earlier server's way: GROUP BY over the raw readings of the room's placements, [from, to] inclusive. */
function naive(db: Database, roomId: number, from: number, to: number, width: number): BucketPoint[] {
  const round2 = (v: number) => Math.round(v * 100) / 100;
  return db
    .query<
      { b: number; t: number; t_min: number; t_max: number; h: number; h_min: number; h_max: number; n: number },
      [number, number, number, number]
    >(
      `SELECT (r.ts / ?4) * ?4 AS b, avg(r.t) AS t, min(r.t) AS t_min, max(r.t) AS t_max,
         avg(r.h) AS h, min(r.h) AS h_min, max(r.h) AS h_max, count(*) AS n
       FROM placements p JOIN readings r ON r.device_id = p.device_id
        AND r.ts >= max(p.from_ts, ?2) AND r.ts <= ?3 AND (p.to_ts IS NULL OR r.ts < p.to_ts)
       WHERE p.room_id = ?1 AND p.from_ts <= ?3 AND (p.to_ts IS NULL OR p.to_ts > ?2)
       GROUP BY b ORDER BY b`,
    )
    .all(roomId, from, to, width)
    .map((r) => ({
      ts: r.b,
      temperature: round2(r.t / 100),
      temperature_min: r.t_min / 100,
      temperature_max: r.t_max / 100,
      humidity: round2(r.h / 100),
      humidity_min: r.h_min / 100,
      humidity_max: r.h_max / 100,
      count: r.n,
    }));
}

test("room series equal the GROUP BY over raw readings through random moves, gaps and ranges", () => {
  const { db, clock, store, history } = world(T0);
  const random = prng(42);
  const uids = ["aht20-00000a", "aht20-00000b", "aht20-00000c"];
  const rooms = ["Salon", "Cuisine", "Chambre"];
  for (const [i, uid] of uids.entries()) store.createDevice({ uid, roomName: rooms[i], at: T0 });
  // Moves at odd times (never on an hour), sometimes out of any room for a while.
  for (const uid of uids) {
    let at = T0;
    for (let m = 0; m < 6; m++) {
      at += Math.floor(random() * 14 * HOUR) + 7 * MIN + 13_000;
      clock.now = at;
      const unplace = random() < 0.2;
      store.updateDevice(
        uid,
        unplace ? { roomUid: null, movedAt: at } : { roomName: rooms[Math.floor(random() * rooms.length)]!, movedAt: at },
      );
    }
  }
  // Readings every 1-5 minutes, with a few gaps of hours.
  for (const uid of uids) {
    const batch: IncomingReading[] = [];
    for (let ts = T0 + Math.floor(random() * MIN); ts < T0 + 4 * DAY; ts += MIN + Math.floor(random() * 4 * MIN)) {
      if (random() < 0.002) ts += Math.floor(random() * 6 * HOUR);
      batch.push(reading(uid, ts, 15 + Math.round(random() * 1000) / 100, 30 + Math.round(random() * 4000) / 100));
    }
    store.insertReadings(batch);
  }
  for (let k = 0; k < 25; k++) {
    const from = T0 - HOUR + Math.floor(random() * 4 * DAY);
    const to = from + Math.floor(random() * (k < 5 ? 2 * DAY : 6 * HOUR));
    for (const name of ["salon", "cuisine", "chambre"]) {
      const room = store.getRoom(name);
      for (const bucket of ["hour", "day"] as const) {
        const got = history.chart({ kind: "room", id: room.id }, { from, to, points: 800, bucket }).points;
        expect(got).toEqual(naive(db, room.id, from, to, bucket === "hour" ? HOUR : DAY));
      }
      const raw = history.chart({ kind: "room", id: room.id }, { from, to, points: 800, bucket: "raw" }).points;
      const expected = naive(db, room.id, from, to, 1).reduce((n, p) => n + p.count, 0);
      expect(raw).toHaveLength(Math.min(expected, 10_000));
    }
  }
});

test("an hour cut by a move is split exactly, then goes whole to the room holding its middle once raw readings are gone", async () => {
  const { db, clock, store, history } = world(T0);
  store.createDevice({ uid: "aht20-aaaaaa", roomName: "Salon", at: T0 });
  store.createDevice({ uid: "aht20-bbbbbb", roomName: "Bureau", at: T0 });
  // aht20-aaaaaa moves to the kitchen at 10:20; aht20-bbbbbb at 14:40.
  clock.now = T0 + 10 * HOUR + 20 * MIN;
  store.updateDevice("aht20-aaaaaa", { roomName: "Cuisine", movedAt: clock.now });
  clock.now = T0 + 14 * HOUR + 40 * MIN;
  store.updateDevice("aht20-bbbbbb", { roomName: "Cuisine", movedAt: clock.now });
  const batch: IncomingReading[] = [];
  for (let ts = T0; ts < T0 + DAY; ts += MIN)
    batch.push(reading("aht20-aaaaaa", ts, 20, 50), reading("aht20-bbbbbb", ts, 25, 40));
  store.insertReadings(batch);
  const counts = (room: string) =>
    Object.fromEntries(
      history
        .chart({ kind: "room", id: store.getRoom(room).id }, { from: T0, to: T0 + DAY - 1, points: 800, bucket: "hour" })
        .points.map((p) => [(p.ts - T0) / HOUR, (p as BucketPoint).count]),
    );
  expect(counts("salon")[10]).toBe(20);
  expect(counts("cuisine")[10]).toBe(40);
  expect(counts("bureau")[14]).toBe(40);
  expect(counts("cuisine")[14]).toBe(60 + 20);

  clock.now = T0 + 3 * DAY;
  const retention = createRetention({ db, days: 1, log: createLog({ level: "error" }), now: () => clock.now });
  const result = await retention.runOnce();
  expect(result.deleted).toBe(2 * 1440);
  // 10:30 is in the kitchen: the whole 10:00 hour is the kitchen's; 14:30 is still in the office.
  expect(counts("salon")[10]).toBeUndefined();
  expect(counts("cuisine")[10]).toBe(60);
  expect(counts("bureau")[14]).toBe(60);
  expect(counts("cuisine")[14]).toBe(60);
  // Each hour counts once, in one room: nothing lost, nothing doubled.
  const total = ["salon", "cuisine", "bureau"].reduce((n, room) => n + Object.values(counts(room)).reduce((a, b) => a + b, 0), 0);
  expect(total).toBe(2 * 1440);
  // Daily buckets of the whole day still come from the rollups, exactly.
  const day = history.chart(
    { kind: "device", id: store.findDevice("aht20-aaaaaa")!.id, uid: "aht20-aaaaaa" },
    {
      from: T0,
      to: T0 + DAY - 1,
      points: 800,
      bucket: "day",
    },
  );
  expect(day.points).toEqual([
    expect.objectContaining({ count: 1440, temperature: 20, temperature_min: 20, temperature_max: 20 }),
  ]);
});
