import { describe, expect, test } from "bun:test";
import { DEFAULT_INTERVAL_S, expectedIntervalS, freshness } from "../lib/server/live/freshness.ts";

const T = Date.parse("2026-01-15T12:00:00Z");
const at = (input: Partial<Parameters<typeof freshness>[0]>, now: number) =>
  freshness({ lastReadingAt: T, intervalS: 60, state: null, stateAt: null, ...input }, now);

describe("device status from its interval", () => {
  test("online within 2 intervals, late after, offline after 5", () => {
    expect(at({}, T).status).toBe("online");
    expect(at({}, T + 119_999).status).toBe("online");
    expect(at({}, T + 120_000).status).toBe("late");
    expect(at({}, T + 299_999).status).toBe("late");
    expect(at({}, T + 300_000).status).toBe("offline");
  });
  test("the same age is online for a slow sensor and offline for a fast one", () => {
    expect(at({ intervalS: 600 }, T + 10 * 60_000).status).toBe("online");
    expect(at({ intervalS: 30 }, T + 10 * 60_000).status).toBe("offline");
  });
  test("says when it will change by itself", () => {
    expect(at({}, T)).toEqual({ status: "online", lateAt: T + 120_000, offlineAt: T + 300_000 });
  });
  test("a last will after the last reading makes it offline at once", () => {
    expect(at({ state: "offline", stateAt: T + 1000 }, T + 2000)).toEqual({ status: "offline", lateAt: null, offlineAt: null });
  });
  test("a reading after the last will counts again", () => {
    expect(at({ lastReadingAt: T + 5000, state: "offline", stateAt: T + 1000 }, T + 6000).status).toBe("online");
  });
  test("a device without readings is 'never'", () => {
    expect(at({ lastReadingAt: null }, T).status).toBe("never");
  });
  test("a reading stamped in the future (skewed clock) is online", () => {
    expect(at({ lastReadingAt: T + 60_000 }, T).status).toBe("online");
  });
});

describe("the interval a device is measured in", () => {
  test("a device that announces its interval: the longer of announced and configured", () => {
    expect(expectedIntervalS({ announced: 60, configured: null, observedS: 5 })).toBe(60);
    expect(expectedIntervalS({ announced: 60, configured: 300, observedS: null })).toBe(300);
    expect(expectedIntervalS({ announced: 300, configured: 60, observedS: null })).toBe(300);
  });
  test("the earlier agent (announces nothing, ignores config): the spacing of its readings", () => {
    expect(expectedIntervalS({ announced: null, configured: 60, observedS: 30 })).toBe(30);
  });
  test("nothing known: the earlier agents' 300 s", () => {
    expect(expectedIntervalS({ announced: null, configured: null, observedS: null })).toBe(DEFAULT_INTERVAL_S);
    expect(DEFAULT_INTERVAL_S).toBe(300);
  });
});
