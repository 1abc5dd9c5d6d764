// The agent's outbox on a full disk (issue 16): a real file system that runs
// out of space, a small tmpfs mounted for the agent alone (in its own mount
// namespace: `unshare`, so this works as root in CI and as a user where user
// namespaces are allowed). The test fills and frees it through
// /proc/<agent pid>/root. Readings taken while the disk is full are kept in
// memory and sent from there, written to the file once space is back, and
// none is lost, with the server reachable or not.

import { afterEach, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { startServer, tempDir, waitFor } from "./helpers.ts";
import { agentEnv, sensorLogin, spawnWithLines, startRelay, storedTs } from "./sensor-helpers.ts";

const SENSOR = join(import.meta.dir, "..", "sensor.ts");
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Writes zeros to `path` until the file system refuses (ENOSPC); returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(16 * 1024);
  let bytes = 0;
  try {
    for (;;) bytes += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/**
 * A server behind a relay, and an agent (device `uid`, `extra` environment) in its
 * own mount namespace with a 1 MiB tmpfs as its data directory, reachable here
 * as `disk` (/proc/<pid>/root/...).
 */
async function fullDiskWorld(uid: string, extra: Record<string, string> = {}) {
  const server = await startServer({}, { logLevel: "info" });
  cleanups.push(() => server.stop());
  const relay = await startRelay(server.mqttPort);
  cleanups.push(() => relay.close());
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const mount = join(dir.path, "disk");
  mkdirSync(mount);
  const env = agentEnv(relay.port, mount, uid, { ...sensorLogin(server, uid), ...extra });
  const agent = spawnWithLines(
    ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0" && exec bun "$1"', mount, SENSOR],
    { env },
  );
  cleanups.push(async () => void (await agent.kill()));
  const taken = () =>
    agent.lines.flatMap((l) => (/ sensor: reading .* ts=(\d+)/.exec(l) ? [Number(/ ts=(\d+)/.exec(l)![1])] : []));
  /** The counter `k` of the agent's "stopped" line. */
  const stoppedField = (k: string) => {
    const stopped = agent.lines.find((l) => / sensor: stopped /.test(l))!;
    return Number(new RegExp(`\\b${k}=(\\d+)`).exec(stopped)?.[1] ?? 0);
  };
  return { server, relay, agent, taken, stoppedField, disk: `/proc/${agent.proc.pid}/root${mount}` };
}

test("a full outbox disk: readings wait in memory, go to the server from there, reach the file once space is back; none is lost and the counts at stop are right", async () => {
  const uid = "aht20-fulldisk";
  const { server, relay, agent, taken, stoppedField: field, disk } = await fullDiskWorld(uid);

  await waitFor(async () => (await storedTs(server, uid)).length >= 2, 30_000, "two readings stored");
  // The disk fills up (another program's file): the next readings cannot be stored in the outbox.
  expect(fill(join(disk, "filler"))).toBeGreaterThan(0);
  const fullAt = agent.lines.length;
  await agent.waitForLine(/keeping readings in memory/, 15_000, fullAt);
  // With the server up they still go, from memory (a copy until the PUBACK).
  const storedAtFull = (await storedTs(server, uid)).length;
  await waitFor(async () => (await storedTs(server, uid)).length >= storedAtFull + 3, 20_000, "readings stored from memory");

  // The server unreachable too: readings pile up in memory.
  relay.hold();
  relay.cut();
  const takenAtCut = taken().length;
  await waitFor(() => taken().length >= takenAtCut + 3, 20_000, "readings taken while cut off");
  // Space is back: the next reading writes what memory held to the file.
  unlinkSync(join(disk, "filler"));
  await agent.waitForLine(/the outbox takes readings again/, 15_000, fullAt);
  relay.release();
  await waitFor(
    async () => {
      const stored = new Set(await storedTs(server, uid));
      return taken().every((ts) => stored.has(ts));
    },
    30_000,
    "every reading taken stored by the server",
  );

  expect(await agent.kill("SIGTERM")).toBe(0);
  const stored = new Set(await storedTs(server, uid));
  // unsent counts the readings the server has not stored (kept for the next start), plus at most the one
  // reading that may be stored with its PUBACK still on the way when SIGTERM comes (resent at the next
  // start; the server keeps it once).
  const notStored = taken().filter((ts) => !stored.has(ts)).length;
  expect(field("unsent")).toBeGreaterThanOrEqual(notStored);
  expect(field("unsent")).toBeLessThanOrEqual(notStored + 1);
  expect(field("lost")).toBe(0);
  expect(field("readings")).toBe(taken().length);
  const output = agent.lines.join("\n");
  // Nothing was sent without a copy, and no raw SQLite error escaped.
  expect(output).not.toContain("without a copy");
  expect(output).not.toContain("SQLiteError");
  expect(output).not.toMatch(/^\s+at /m);
  // The first failure logged once, not once per reading.
  expect(agent.lines.filter((l) => l.includes("keeping readings in memory"))).toHaveLength(1);
}, 120_000);

test("the memory buffer is bounded: beyond [outbox] memory_readings the oldest are dropped, said once, and counted as lost at stop", async () => {
  const uid = "aht20-fullmem";
  const {
    server,
    relay,
    agent,
    taken,
    stoppedField: field,
    disk,
  } = await fullDiskWorld(uid, { TECHTEMP_OUTBOX_MEMORY_READINGS: "3" });
  await waitFor(async () => (await storedTs(server, uid)).length >= 1, 30_000, "a reading stored");
  relay.hold();
  relay.cut();
  fill(join(disk, "filler"));
  const from = agent.lines.length;
  await agent.waitForLine(/the buffer is full, dropped the oldest/, 20_000, from);
  await waitFor(() => taken().length >= 8, 20_000, "more readings taken while cut off");
  const storedBefore = (await storedTs(server, uid)).length;
  relay.release();
  await waitFor(async () => (await storedTs(server, uid)).includes(taken().at(-1)!), 20_000, "the newest reading stored");
  expect(await agent.kill("SIGTERM")).toBe(0);
  const stored = new Set(await storedTs(server, uid));
  const missing = taken().filter((ts) => !stored.has(ts)).length;
  expect(missing).toBeGreaterThan(0);
  // Every reading the server lacks is counted: kept in the file (unsent) or lost to the full disk. Unsent may
  // also hold readings the server stored after the release whose PUBACK was still on the way at SIGTERM
  // (resent at the next start, kept once): never more than those.
  expect(field("unsent") + field("lost")).toBeGreaterThanOrEqual(missing);
  expect(field("unsent") + field("lost")).toBeLessThanOrEqual(missing + (stored.size - storedBefore));
  expect(agent.lines.filter((l) => l.includes("the buffer is full"))).toHaveLength(1);
  expect(agent.lines.join("\n")).not.toContain("SQLiteError");
}, 120_000);
