// The aggregate maths on their own (lib/server/history/aggregate.ts), without
// a database: the rollups and the statistics rely on merges that give the
// same result in any order.

import { expect, test } from "bun:test";
import { addReading, ceilTo, copyAgg, floorTo, mergeInto, single, type Agg } from "../lib/server/history/aggregate.ts";
import { prng } from "./history-helpers.ts";

/** Aggregates the readings one by one, in the order given. */
function aggregate(readings: [number, number, number][]): Agg {
  const [first, ...rest] = readings;
  const agg = single(...first!);
  for (const r of rest) addReading(agg, ...r);
  return agg;
}

test("merging partial aggregates in any order gives the aggregate of all the readings, ties keeping the earliest time", () => {
  const random = prng(10);
  // Few distinct values, so that minima and maxima are reached several times.
  const readings: [number, number, number][] = Array.from({ length: 200 }, (_, i) => [
    1_000 + i * 60_000,
    Math.floor(random() * 5) * 100,
    Math.floor(random() * 5) * 100,
  ]);
  const whole = aggregate(readings);
  const parts = [readings.slice(0, 70), readings.slice(70, 150), readings.slice(150)].map(aggregate);
  for (const order of [
    [0, 1, 2],
    [2, 1, 0],
    [1, 2, 0],
  ]) {
    const merged = copyAgg(parts[order[0]!]!);
    for (const i of order.slice(1)) mergeInto(merged, parts[i]!);
    expect(merged).toEqual(whole);
  }
  expect(aggregate([...readings].reverse())).toEqual(whole);
});

test("a copy is not changed by merging into the original", () => {
  const a = single(0, 100, 200);
  const copy = copyAgg(a);
  mergeInto(a, single(1, 50, 300));
  expect(copy).toEqual(single(0, 100, 200));
  expect(a).toMatchObject({ n: 2, t_min: 50, t_min_ts: 1, h_max: 300, h_max_ts: 1 });
});

test("bucket bounds floor and ceil, also before 1970", () => {
  expect(floorTo(3_599_999, 3_600_000)).toBe(0);
  expect(floorTo(-1, 3_600_000)).toBe(-3_600_000);
  expect(ceilTo(1, 3_600_000)).toBe(3_600_000);
  expect(ceilTo(-3_600_000, 3_600_000)).toBe(-3_600_000);
});
