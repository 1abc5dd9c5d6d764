// The agent's parts on their own, each with its dependencies faked or
// injected (a publisher that records, a clock the test moves, a real outbox in
// a temp dir): the drain's window, order and PUBACK deletion; the remote
// config over device.conf; the clock hold; the sampler's offsets and failures.
// The agent as a whole, with the real server, is in sensor-agent.test.ts.

import { afterEach, describe, expect, test } from "bun:test";
import { createClockHold } from "../lib/sensor/clock-hold.ts";
import type { AgentClock } from "../lib/sensor/clock.ts";
import { PUBLISH_WINDOW, createDrain, type ReadingPublisher } from "../lib/sensor/drain.ts";
import { ClockState, openOutbox, outboxPath, type Outbox } from "../lib/sensor/outbox.ts";
import { createRemoteConfig } from "../lib/sensor/remote-config.ts";
import { createSampler } from "../lib/sensor/sampler.ts";
import { createLog } from "../lib/shared/log.ts";
import { tempDir, waitFor } from "./helpers.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

function logged() {
  const lines: string[] = [];
  return { lines, log: createLog({ sink: (l) => lines.push(l), name: "sensor", level: "debug" }) };
}

function outbox(): Outbox {
  const dir = tempDir();
  const o = openOutbox(outboxPath(dir.path, "aht20-parts1"), { maxReadings: 10_000, log: createLog({ sink() {} }) });
  cleanups.push(() => dir.cleanup());
  cleanups.push(() => o.close());
  return o;
}

/** A connection that records what is published and acknowledges on demand. */
function publisher() {
  const sent: { payload: string; ack?: (err?: Error) => void }[] = [];
  const p: ReadingPublisher = {
    publish: (_topic, payload, _options, ack) => sent.push({ payload, ack }),
  };
  return { p, sent, ts: () => sent.map((s) => JSON.parse(s.payload).ts as number) };
}

const reading = (ts: number, state: ClockState = ClockState.Synced) => ({ ts, t: 21, h: 45, mono: ts, boot: "b", state });

describe("the drain", () => {
  test("publishes oldest first, at most PUBLISH_WINDOW unacknowledged, and deletes a reading on its PUBACK", () => {
    const o = outbox();
    o.addMany(Array.from({ length: PUBLISH_WINDOW + 44 }, (_, i) => reading(1000 + i)));
    const stats = { published: 0, acked: 0 };
    const drain = createDrain({ config: { outbox_drain_rate: 100_000 }, outbox: o, log: logged().log, stats, topic: "r" });
    const a = publisher();
    drain.connected(a.p);
    expect(a.ts()).toEqual(Array.from({ length: PUBLISH_WINDOW }, (_, i) => 1000 + i));
    for (const s of a.sent.slice(0, 10)) s.ack!();
    // Each PUBACK frees a place in the window for the next reading.
    expect(a.sent).toHaveLength(PUBLISH_WINDOW + 10);
    expect(stats).toEqual({ published: PUBLISH_WINDOW + 10, acked: 10 });
    drain.disconnected();
    expect(o.count).toBe(PUBLISH_WINDOW + 34);
  });

  test("after a disconnect, what was in flight goes again from the oldest, and late PUBACKs are ignored", () => {
    const o = outbox();
    o.addMany([reading(1), reading(2), reading(3, ClockState.Unsynced)]);
    const stats = { published: 0, acked: 0 };
    const drain = createDrain({ config: { outbox_drain_rate: 100_000 }, outbox: o, log: logged().log, stats, topic: "r" });
    const first = publisher();
    drain.connected(first.p);
    first.sent[0]!.ack!();
    drain.disconnected();
    first.sent[1]!.ack!();
    expect(stats.acked).toBe(1);
    const second = publisher();
    drain.connected(second.p);
    expect(second.ts()).toEqual([2, 3]);
    expect(JSON.parse(second.sent[1]!.payload)).toEqual({ temperature_c: 21, humidity_pct: 45, ts: 3, clock_synced: false });
  });

  test("keeps to the drain rate", async () => {
    const o = outbox();
    o.addMany(Array.from({ length: 30 }, (_, i) => reading(i)));
    const drain = createDrain({
      config: { outbox_drain_rate: 100 },
      outbox: o,
      log: logged().log,
      stats: { published: 0, acked: 0 },
      topic: "r",
    });
    const a = publisher();
    const started = performance.now();
    drain.connected(a.p);
    // A tenth of a second's worth at once, then the rest at 100 per second.
    expect(a.sent).toHaveLength(10);
    await waitFor(() => a.sent.length === 30, 5000, "the whole outbox sent");
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    drain.disconnected();
  });
});

describe("the remote config", () => {
  function remote(saved: string | null = null) {
    const settings = new Map<string, string>();
    if (saved !== null) settings.set("config", saved);
    const bounds: number[] = [];
    const changes: number[] = [];
    const { lines, log } = logged();
    const stats = { intervalS: 30 };
    const r = createRemoteConfig({
      config: { interval_s: 30, temperature_offset: 0.5, humidity_offset: -1, outbox_max_readings: null },
      outbox: {
        getSetting: (k) => settings.get(k) ?? null,
        setSetting: (k, v) => void (v === null ? settings.delete(k) : settings.set(k, v)),
        setMaxReadings: (n) => void bounds.push(n),
      },
      log,
      stats,
      topic: "home/h/sensors/d/config",
      onIntervalChange: () => changes.push(r.intervalS()),
    });
    return { r, settings, bounds, changes, lines, stats };
  }

  test("the server's offsets add to device.conf's; a new interval is announced once and bounds the outbox", () => {
    const w = remote();
    w.r.restore();
    expect(w.bounds).toEqual([86_400]);
    w.r.apply(Buffer.from('{"interval_s":60,"temperature_offset":1,"humidity_offset":0}'));
    expect([w.r.intervalS(), w.r.temperatureOffset(), w.r.humidityOffset()]).toEqual([60, 1.5, -1]);
    expect(w.changes).toEqual([60]);
    expect(w.stats.intervalS).toBe(60);
    expect(w.bounds).toEqual([86_400, 43_200]);
    expect(w.settings.get("config")).toBe('{"interval_s":60,"temperature_offset":1,"humidity_offset":0}');
    // Offsets only: applied, but the schedule is left alone.
    w.r.apply(Buffer.from('{"interval_s":60,"temperature_offset":2,"humidity_offset":0}'));
    expect(w.r.temperatureOffset()).toBe(2.5);
    expect(w.changes).toEqual([60]);
    expect(w.lines.filter((l) => l.includes("config applied"))).toHaveLength(2);
  });

  test("a bad config is ignored and logged; an empty one (cleared) goes back to device.conf", () => {
    const w = remote();
    w.r.apply(Buffer.from('{"interval_s":5}'));
    w.r.apply(Buffer.from('{"interval_s":0}'));
    expect(w.r.intervalS()).toBe(5);
    expect(w.lines.some((l) => l.includes("WARN  sensor.mqtt: ignored a bad config message topic=home/h/sensors/d/config"))).toBe(
      true,
    );
    w.r.apply(Buffer.alloc(0));
    expect(w.r.intervalS()).toBe(30);
    expect(w.settings.has("config")).toBe(false);
  });

  test("restore() takes the config remembered from the last run", () => {
    const w = remote('{"interval_s":10}');
    w.r.restore();
    expect(w.r.intervalS()).toBe(10);
    expect(w.stats.intervalS).toBe(10);
    expect(w.lines.some((l) => l.includes("using the last config received from the server interval_s=10"))).toBe(true);
  });
});

describe("the clock hold", () => {
  /** A clock the test moves, and an outbox that records what the hold asks of it. */
  function world(waitS: number) {
    let synced = false;
    let mono = 1000;
    const clock: AgentClock = { wall: () => 1e12, mono: () => mono, bootId: "b", synced: () => synced };
    const calls: string[] = [];
    let oldest: number | null = null;
    const { lines, log } = logged();
    let released = 0;
    const hold = createClockHold({
      config: { clock_sync_wait_s: waitS },
      outbox: {
        restamp: (_b, wall, m) => (calls.push(`restamp ${wall} ${m}`), 2),
        oldestHeld: () => oldest,
        releaseHeld: () => (calls.push("releaseHeld"), 2),
        releaseOtherBoots: () => 0,
      },
      clock,
      log,
      onRelease: () => released++,
    });
    cleanups.push(() => hold.stop());
    return {
      hold,
      calls,
      lines,
      released: () => released,
      sync: () => void (synced = true),
      holdOne: () => void (oldest = mono),
      advance: (ms: number) => void (mono += ms),
    };
  }

  test("holds readings until the clock syncs, then re-stamps them from the monotonic clock", () => {
    const w = world(300);
    w.hold.start();
    expect(w.hold.state()).toBe(ClockState.Held);
    w.holdOne();
    w.advance(5000);
    w.hold.check();
    expect(w.calls).toEqual([]);
    w.sync();
    w.hold.check();
    expect(w.calls).toEqual(["restamp 1000000000000 6000"]);
    expect(w.hold.state()).toBe(ClockState.Synced);
    expect(w.released()).toBe(1);
  });

  test("releases them flagged once the oldest has waited sync_wait_seconds", () => {
    const w = world(2);
    w.hold.start();
    w.holdOne();
    w.advance(1999);
    w.hold.check();
    expect(w.hold.state()).toBe(ClockState.Held);
    w.advance(1);
    w.hold.check();
    expect(w.calls).toEqual(["releaseHeld"]);
    expect(w.hold.state()).toBe(ClockState.Unsynced);
    expect(w.lines.some((l) => l.includes("system clock not synchronised after 2 s") && l.includes("readings=2"))).toBe(true);
  });
});

describe("the sampler", () => {
  function world(sensor: { read(): Promise<{ temperature: number; humidity: number; status: number }> }) {
    const added: { t: number; h: number; state: ClockState }[] = [];
    const { lines, log } = logged();
    const stats = { readings: 0, sensorFailures: 0, lastError: null as string | null };
    let health = 0;
    const sampler = createSampler({
      sensor: { read: () => sensor.read(), close: async () => {} },
      outbox: { add: (r) => (added.push(r), added.length) },
      clock: { wall: () => 1e12, mono: () => 0, bootId: "b", synced: () => true },
      log,
      stats,
      hold: { check() {}, state: () => ClockState.Synced, held() {} },
      settings: { intervalS: () => 3600, temperatureOffset: () => 0.004, humidityOffset: () => 5 },
      onHealthChange: () => health++,
      onReading() {},
    });
    cleanups.push(() => sampler.stop());
    return { sampler, added, lines, stats, health: () => health };
  }

  test("applies the offsets, clamps humidity to 100 % and rounds to two decimals", async () => {
    const w = world({ read: async () => ({ temperature: 21.123, humidity: 97.5, status: 0x1c }) });
    w.sampler.start();
    await waitFor(() => w.added.length === 1, 5000, "the first reading");
    expect(w.added[0]).toMatchObject({ t: 21.13, h: 100, state: ClockState.Synced });
    expect(w.stats.readings).toBe(1);
  });

  test("counts a failure, announces it, and logs it as an error once", async () => {
    const w = world({ read: async () => Promise.reject(new Error("no AHT20 answers")) });
    w.sampler.start();
    await waitFor(() => w.stats.sensorFailures === 1, 5000, "a failure");
    expect(w.stats.lastError).toBe("no AHT20 answers");
    expect(w.health()).toBe(1);
    expect(
      w.lines.filter((l) => l.includes('ERROR sensor: cannot read the sensor error="no AHT20 answers" failures=1')),
    ).toHaveLength(1);
  });
});
