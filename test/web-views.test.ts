// The views' own wording: "… ago", kept current by static/app.js from the same table.

import { describe, expect, test } from "bun:test";
import { formatAgo } from "../views/parts.tsx";

const T = Date.parse("2026-01-15T12:00:00Z");

describe("'… ago'", () => {
  test("words each range", () => {
    expect(formatAgo(T, T + 3000)).toBe("just now");
    expect(formatAgo(T, T + 42_000)).toBe("42 s ago");
    expect(formatAgo(T, T + 2 * 60_000 + 30_000)).toBe("2 min ago");
    expect(formatAgo(T, T + 5 * 3_600_000)).toBe("5 h ago");
    expect(formatAgo(T, T + 3 * 86_400_000)).toBe("3 days ago");
  });
  test("a time in the future is 'just now'", () => {
    expect(formatAgo(T + 60_000, T)).toBe("just now");
  });
});
