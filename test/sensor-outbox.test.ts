// The outbox on its own: committed before add() returns (another connection
// sees it, a SIGKILL right after loses nothing), bounded with the oldest
// dropped and counted, held readings skipped until re-stamped or released.

import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createLog } from "../lib/shared/log.ts";
import { ClockState, openOutbox, outboxPath, type NewReading, type Outbox } from "../lib/sensor/outbox.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { spawnWithLines } from "./sensor-helpers.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

function fresh(maxReadings = 1000): { outbox: Outbox; path: string; lines: string[] } {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const lines: string[] = [];
  const path = outboxPath(dir.path, "aht20-ob0001");
  const outbox = openOutbox(path, { maxReadings, log: createLog({ sink: (l) => lines.push(l), name: "outbox" }) });
  cleanups.unshift(() => {
    try {
      outbox.close();
    } catch {}
  });
  return { outbox, path, lines };
}

const reading = (ts: number, state: NewReading["state"] = ClockState.Synced, boot = "boot-a", mono = ts): NewReading => ({
  ts,
  t: 21.5,
  h: 40.25,
  mono,
  boot,
  state,
});

describe("the outbox", () => {
  test("one fsync'd transaction per reading: acknowledged readings are deleted with the next reading's commit", () => {
    const { outbox, path } = fresh();
    const rows = () => {
      const other = new Database(path, { readonly: true });
      try {
        return other
          .query<{ id: number }, []>("SELECT id FROM outbox ORDER BY id")
          .all()
          .map((r) => r.id);
      } finally {
        other.close();
      }
    };
    const first = outbox.add(reading(1000));
    // The first acknowledgement of a run is noted at once (techtemp-sensor status waits for it), without an fsync.
    outbox.ack(first);
    expect(rows()).toEqual([]);
    let last = first;
    for (let i = 2; i <= 50; i++) {
      const id = outbox.add(reading(i * 1000));
      // The reading acknowledged before is gone in the same commit that stored this one.
      expect(rows()).toEqual([id]);
      outbox.ack(id);
      expect(outbox.count).toBe(0);
      last = id;
    }
    expect(outbox.stats.syncedCommits).toBe(50);
    expect(outbox.stats.commits).toBe(51);
    outbox.flushAcks();
    expect(rows()).not.toContain(last);
    expect(outbox.stats.syncedCommits).toBe(50);
  });

  test("a reading is committed when add() returns: another connection sees it", () => {
    const { outbox, path } = fresh();
    const id = outbox.add(reading(1000));
    const other = new Database(path, { readonly: true });
    try {
      expect(other.query("SELECT id, ts, t, h FROM outbox").all()).toEqual([{ id, ts: 1000, t: 21.5, h: 40.25 }]);
    } finally {
      other.close();
    }
  });

  test("a process killed with SIGKILL while adding loses no reading it had added", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const path = join(dir.path, "outbox-kill.db");
    const script = `
      import { openOutbox } from ${JSON.stringify(join(import.meta.dir, "..", "lib", "sensor", "outbox.ts"))};
      import { createLog } from ${JSON.stringify(join(import.meta.dir, "..", "lib", "shared", "log.ts"))};
      const outbox = openOutbox(${JSON.stringify(path)}, { maxReadings: 1e6, log: createLog({ sink() {} }) });
      for (let i = 1; ; i++) {
        const id = outbox.add({ ts: i, t: 20, h: 50, mono: i, boot: "b", state: 1 });
        process.stdout.write(id + "\\n");
        if (i % 7 === 0) outbox.ack(id - 3);
        await null;
      }`;
    const child = spawnWithLines(["bun", "-e", script]);
    await waitFor(() => child.lines.length >= 300, 20_000, "300 readings added");
    await child.kill("SIGKILL");
    const confirmed = child.lines.filter((l) => /^\d+$/.test(l)).map(Number);
    const db = new Database(path);
    try {
      expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
      const ids = new Set(
        db
          .query<{ id: number }, []>("SELECT id FROM outbox")
          .all()
          .map((r) => r.id),
      );
      // Every id confirmed on stdout is there, except those acknowledged (deleted on purpose).
      const acked = new Set(confirmed.filter((id) => id % 7 === 0).map((id) => id - 3));
      const missing = confirmed.filter((id) => !ids.has(id) && !acked.has(id));
      expect(missing).toEqual([]);
    } finally {
      db.close();
    }
  }, 30_000);

  test("when full, the oldest readings are dropped and the count is logged", () => {
    const { outbox, lines } = fresh(5);
    for (let i = 1; i <= 8; i++) outbox.add(reading(i * 1000));
    expect(outbox.count).toBe(5);
    expect(outbox.next(0, 100).map((r) => r.ts)).toEqual([4000, 5000, 6000, 7000, 8000]);
    expect(outbox.stats.dropped).toBe(3);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("WARN  outbox: outbox full: dropped the oldest readings dropped=1 kept=5 max_readings=5");
    outbox.setMaxReadings(2);
    expect(outbox.next(0, 100).map((r) => r.ts)).toEqual([7000, 8000]);
  });

  test("sends oldest first, skips held readings, and deletes only acknowledged ones", () => {
    const { outbox } = fresh();
    const a = outbox.add(reading(1000));
    const b = outbox.add(reading(2000, ClockState.Unsynced));
    outbox.add(reading(3000, ClockState.Held));
    expect(outbox.next(0, 10).map((r) => [r.id, r.state])).toEqual([
      [a, 1],
      [b, 2],
    ]);
    expect(outbox.next(a, 10).map((r) => r.id)).toEqual([b]);
    outbox.ack(a);
    outbox.flushAcks();
    expect(outbox.count).toBe(2);
    expect(outbox.next(0, 10).map((r) => r.id)).toEqual([b]);
    expect(outbox.held()).toBe(1);
  });

  test("ids keep growing after the outbox empties, so a reading added after a full drain is never skipped", () => {
    const { outbox } = fresh();
    const first = outbox.add(reading(1000));
    outbox.ack(first);
    outbox.flushAcks();
    expect(outbox.count).toBe(0);
    const second = outbox.add(reading(2000));
    expect(second).toBeGreaterThan(first);
    expect(outbox.next(first, 10).map((r) => r.ts)).toEqual([2000]);
  });

  test("held readings of this boot are re-stamped from the monotonic clock when the clock syncs", () => {
    const { outbox } = fresh();
    // Taken at boot-times 10 s and 11 s while the wall clock said 1970.
    outbox.add(reading(5, ClockState.Held, "boot-a", 10_000));
    outbox.add(reading(6, ClockState.Held, "boot-a", 11_000));
    outbox.add(reading(7, ClockState.Held, "boot-b", 12_000));
    expect(outbox.oldestHeld("boot-a")).toBe(10_000);
    // Synced at boot-time 20 s, when the real time is 1 725 427 200 000.
    expect(outbox.restamp("boot-a", 1_725_427_200_000, 20_000)).toBe(2);
    expect(outbox.next(0, 10).map((r) => [r.ts, r.state])).toEqual([
      [1_725_427_190_000, ClockState.Synced],
      [1_725_427_191_000, ClockState.Synced],
    ]);
    // Another boot's monotonic times mean nothing now: they go flagged.
    expect(outbox.releaseOtherBoots("boot-a")).toBe(1);
    expect(outbox.next(0, 10).at(-1)).toMatchObject({ ts: 7, state: ClockState.Unsynced });
  });

  test("held readings are released flagged when the clock never syncs", () => {
    const { outbox } = fresh();
    outbox.add(reading(5, ClockState.Held, "boot-a", 10_000));
    expect(outbox.releaseHeld("boot-a")).toBe(1);
    expect(outbox.next(0, 10)).toMatchObject([{ ts: 5, state: ClockState.Unsynced }]);
    expect(outbox.oldestHeld("boot-a")).toBeNull();
  });

  test("remembers a setting across reopening", () => {
    const { outbox, path } = fresh();
    outbox.setSetting("config", '{"interval_s":60}');
    outbox.close();
    const again = openOutbox(path, { maxReadings: 10, log: createLog({ sink() {} }) });
    try {
      expect(again.getSetting("config")).toBe('{"interval_s":60}');
      again.setSetting("config", null);
      expect(again.getSetting("config")).toBeNull();
    } finally {
      again.close();
    }
  });

  test("an outbox that cannot be created names the file", () => {
    expect(() => openOutbox("/proc/no-such-dir/outbox.db", { maxReadings: 10, log: createLog({ sink() {} }) })).toThrow(
      /^open outbox \/proc\/no-such-dir\/outbox\.db: /,
    );
  });
});
