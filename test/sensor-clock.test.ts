// Time you can trust: readings taken before the system clock syncs are held,
// then re-stamped from the monotonic clock when it syncs in the same boot; if
// it never syncs in time they go out with "clock_synced": false, which the
// server stores as a flag. The agent runs in-process with an injected clock,
// against the real server over TCP.

import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAgent } from "../lib/sensor/agent.ts";
import { createSystemClock, kernelClockSynced, type AgentClock } from "../lib/sensor/clock.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { createLog } from "../lib/shared/log.ts";
import { ClockState, openOutbox, outboxPath } from "../lib/sensor/outbox.ts";
import { createSensor } from "../lib/sensor/probe.ts";
import { connectMqtt, endMqtt, startServer, tempDir, waitFor, type TestServer } from "./helpers.ts";
import { agentEnv, sensorLogin, storedTs, testAgentConfig } from "./sensor-helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A Pi without an RTC: the wall clock is three years behind until `sync()`. */
function unsyncedPi(bootId = "boot-1") {
  const SKEW = -3 * 365 * 86_400_000;
  let synced = false;
  const clock: AgentClock = {
    wall: () => Date.now() + (synced ? 0 : SKEW),
    mono: () => Math.round(performance.now()) + 5_000_000,
    bootId,
    synced: () => synced,
  };
  return { clock, SKEW, sync: () => void (synced = true) };
}

async function world(uid: string, clock: AgentClock, waitS: number, options: { before?: (dir: string) => void } = {}) {
  const server: TestServer = await startServer({}, { logLevel: "info" });
  cleanups.push(() => server.stop());
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const payloads: string[] = [];
  const sub = await connectMqtt(server.mqttPort);
  cleanups.push(() => endMqtt(sub));
  sub.on("message", (_t, p) => payloads.push(p.toString()));
  await new Promise<void>((resolve) => sub.subscribe(`home/+/sensors/${uid}/reading`, { qos: 1 }, () => resolve()));
  options.before?.(dir.path);
  const config = testAgentConfig(
    agentEnv(server.mqttPort, dir.path, uid, { ...sensorLogin(server, uid), TECHTEMP_CLOCK_SYNC_WAIT_S: String(waitS) }),
  );
  const lines: string[] = [];
  const log = createLog({ sink: (l) => lines.push(l), name: "sensor" });
  const outbox = openOutbox(outboxPath(dir.path, uid), { maxReadings: 10_000, log });
  const agent = createAgent({ config, sensor: createSensor(config), outbox, clock, log });
  agent.start();
  cleanups.push(() => agent.stop());
  const flags = () => {
    const db = new Database(join(server.dataDir, DB_FILE), { readonly: true });
    try {
      return db.query<{ ts: number; flags: number }, []>("SELECT ts, flags FROM reading_flags ORDER BY ts").all();
    } finally {
      db.close();
    }
  };
  const logged = () => lines.flatMap((l) => (/ sensor: reading .* ts=(\d+)/.exec(l) ? [Number(/ ts=(\d+)/.exec(l)![1])] : []));
  return { server, lines, payloads, flags, logged };
}

describe("readings taken before the clock syncs", () => {
  test("are held, then re-stamped with the true time when the clock syncs in the same boot", async () => {
    const pi = unsyncedPi();
    const uid = "aht20-clk001";
    const w = await world(uid, pi.clock, 120);
    await waitFor(() => w.lines.filter((l) => l.includes("held=true")).length >= 3, 20_000, "3 held readings");
    expect(await storedTs(w.server, uid)).toEqual([]);
    const held = w.logged();

    pi.sync();
    await waitFor(async () => (await storedTs(w.server, uid)).length >= held.length, 20_000, "the held readings stored");
    const stored = await storedTs(w.server, uid);
    // Each held reading now carries the real time it was taken at (wall skew removed), within clock rounding.
    for (const [i, skewed] of held.entries()) expect(Math.abs(stored[i]! - (skewed - pi.SKEW))).toBeLessThanOrEqual(20);
    expect(stored.every((ts) => ts > Date.now() - 60_000)).toBe(true);
    expect(w.flags()).toEqual([]);
    expect(w.payloads.some((p) => p.includes("clock_synced"))).toBe(false);
    expect(w.lines.some((l) => /system clock synchronised; re-stamped the readings held for it readings=\d+/.test(l))).toBe(true);
  }, 40_000);

  test("go out flagged clock_synced:false when the clock does not sync in time, and the server flags them", async () => {
    const pi = unsyncedPi();
    const uid = "aht20-clk002";
    const w = await world(uid, pi.clock, 2);
    await waitFor(async () => (await storedTs(w.server, uid)).length >= 4, 20_000, "4 readings stored");
    expect(w.lines.some((l) => l.includes("system clock not synchronised after 2 s"))).toBe(true);
    const stored = await storedTs(w.server, uid);
    const flagged = w.flags();
    expect(flagged.map((f) => f.ts)).toEqual(expect.arrayContaining(stored));
    expect(flagged.every((f) => f.flags === 1)).toBe(true);
    // The broker forwards a reading after storing it: wait for the subscriber too.
    await waitFor(() => w.payloads.length >= 4, 10_000, "4 readings forwarded to the subscriber");
    for (const p of w.payloads) expect(JSON.parse(p)).toMatchObject({ clock_synced: false });
  }, 40_000);

  test("held readings from before a reboot cannot be re-stamped and go out flagged", async () => {
    const pi = unsyncedPi("boot-2");
    pi.sync();
    const uid = "aht20-clk003";
    const w = await world(uid, pi.clock, 120, {
      before(dir) {
        const outbox = openOutbox(outboxPath(dir, uid), { maxReadings: 100, log: createLog({ sink() {} }) });
        outbox.add({ ts: 1_600_000_000_000, t: 20, h: 50, mono: 1000, boot: "boot-1", state: ClockState.Held });
        outbox.close();
      },
    });
    await waitFor(async () => (await storedTs(w.server, uid)).includes(1_600_000_000_000), 20_000, "the old held reading");
    expect(w.flags()).toContainEqual({ ts: 1_600_000_000_000, flags: 1 });
    expect(w.lines.some((l) => l.includes("before a reboot cannot be re-stamped"))).toBe(true);
  }, 40_000);
});

describe("the system clock", () => {
  test("is synchronised when timesyncd's file exists, whatever the kernel says, and stays so", () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const syncFile = join(dir.path, "synchronized");
    const clock = createSystemClock({ syncFile, kernelSynced: () => false });
    expect(clock.synced()).toBe(false);
    writeFileSync(syncFile, "");
    expect(clock.synced()).toBe(true);
    rmSync(syncFile);
    expect(clock.synced()).toBe(true);
  });

  test("follows the kernel without timesyncd, and trusts a machine it cannot ask", () => {
    expect(createSystemClock({ syncFile: "/nonexistent", kernelSynced: () => true }).synced()).toBe(true);
    expect(createSystemClock({ syncFile: "/nonexistent", kernelSynced: () => false }).synced()).toBe(false);
    expect(createSystemClock({ syncFile: "/nonexistent", kernelSynced: () => null }).synced()).toBe(true);
    expect(createSystemClock({ syncFile: "/nonexistent", kernelSynced: () => false, trust: true }).synced()).toBe(true);
    // On Linux the kernel can always be asked: a boolean, never "unknown".
    expect(typeof kernelClockSynced()).toBe("boolean");
  });

  test("counts monotonic time from boot (/proc/uptime) and knows the boot id", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    mkdirSync(join(dir.path, "sys/kernel/random"), { recursive: true });
    writeFileSync(join(dir.path, "uptime"), "1234.56 99.00\n");
    writeFileSync(join(dir.path, "sys/kernel/random/boot_id"), "6fd20348-5a10-4a11-abbb-a55cfec2a9a2\n");
    const clock = createSystemClock({ procRoot: dir.path, kernelSynced: () => true });
    expect(clock.bootId).toBe("6fd20348-5a10-4a11-abbb-a55cfec2a9a2");
    const first = clock.mono();
    const firstAt = performance.now();
    expect(first).toBeGreaterThanOrEqual(1_234_560);
    expect(first).toBeLessThan(1_234_560 + 1000);
    // It advances with the process's monotonic clock, to the millisecond it is rounded to.
    await waitFor(() => clock.mono() - first >= 30, 5000, "30 ms of monotonic time");
    expect(Math.abs(clock.mono() - first - (performance.now() - firstAt))).toBeLessThanOrEqual(2);
  });

  test("two clocks made at different moments of the same boot agree (runs of the agent compare their times)", async () => {
    const a = createSystemClock({ kernelSynced: () => true });
    const uptime = () => Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
    const madeAt = uptime();
    // A later moment of the same boot: /proc/uptime (10 ms steps) has moved on by 100 ms.
    await waitFor(() => uptime() - madeAt >= 100, 5000, "/proc/uptime to advance");
    const b = createSystemClock({ kernelSynced: () => true });
    expect(a.bootId).toBe(b.bootId);
    // /proc/uptime has 10 ms resolution.
    expect(Math.abs(a.mono() - b.mono())).toBeLessThanOrEqual(25);
  });
});
