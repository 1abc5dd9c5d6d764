import { describe, expect, test } from "bun:test";
import { comfort, comfortWord, dewPoint, humidex } from "../lib/server/live/comfort.ts";

// Expected values computed independently (Python, same Magnus constants as the earlier dashboard).
describe("dew point (Magnus, A = 17.625, B = 243.04)", () => {
  test("matches known values", () => {
    expect(dewPoint(20, 50)!).toBeCloseTo(9.2611, 3);
    expect(dewPoint(25, 80)!).toBeCloseTo(21.3089, 3);
  });
  test("equals the air temperature at 100 % humidity", () => {
    expect(dewPoint(0, 100)!).toBeCloseTo(0, 6);
    expect(dewPoint(23.5, 100)!).toBeCloseTo(23.5, 6);
  });
  test("does not exist at 0 % humidity", () => {
    expect(dewPoint(20, 0)).toBeNull();
  });
});

describe("humidex", () => {
  test("matches the earlier dashboard's formula", () => {
    expect(humidex(30, 70)).toBeCloseTo(40.9262, 3);
    expect(humidex(25, 50)).toBeCloseTo(28.2305, 3);
    expect(humidex(35, 60)).toBeCloseTo(48.1763, 3);
  });
  test("is never below the air temperature", () => {
    expect(humidex(10, 10)).toBe(10);
  });
});

describe("comfort word (same thresholds as the earlier confortable / lourd / pénible)", () => {
  test("below 30 is comfortable, below 40 muggy, from 40 oppressive", () => {
    expect(comfortWord(29.99)).toBe("comfortable");
    expect(comfortWord(30)).toBe("muggy");
    expect(comfortWord(39.99)).toBe("muggy");
    expect(comfortWord(40)).toBe("oppressive");
  });
  test("comfort() puts the three together", () => {
    const c = comfort(30, 70);
    expect(c.word).toBe("oppressive");
    expect(c.humidex).toBeCloseTo(40.93, 2);
    expect(c.dewPoint!).toBeGreaterThan(23);
  });
});
