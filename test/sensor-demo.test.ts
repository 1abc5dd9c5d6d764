// The demo: the real server plus three simulated sensors (full agents over
// TCP through the broker) placed in three rooms, with history back-filled
// once; and `bun server.ts --demo` stopping cleanly on Ctrl-C.

import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { loadConfig } from "../lib/server/config.ts";
import { DEMO_SENSORS, startDemo, type Demo } from "../lib/demo.ts";
import { createLog } from "../lib/shared/log.ts";
import { start } from "../server.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { spawnAgent } from "./sensor-helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function demoOn(dataDir: string): Promise<Demo> {
  const config = loadConfig({ env: {}, overrides: { http_port: 0, mqtt_port: 0, host: "127.0.0.1", data_dir: dataDir } });
  const demo = await startDemo({
    start,
    config,
    log: createLog({ sink() {} }),
    intervalS: 1,
    backfillDays: 1,
    backfillStepMinutes: 30,
    sensorLogLevel: "error",
  });
  let closed = false;
  cleanups.push(() => (closed ? undefined : demo.close()));
  return {
    ...demo,
    async close() {
      closed = true;
      await demo.close();
    },
  };
}

const get = async (demo: Demo, path: string) =>
  (await (await fetch(`http://127.0.0.1:${demo.httpPort}/api/v1${path}`)).json()).data;

test("three simulated sensors in three rooms send live readings through the broker, after a back-filled history", async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const demo = await demoOn(dir.path);
  const devices = await get(demo, "/devices");
  expect(devices.map((d: any) => [d.uid, d.room?.name]).sort()).toEqual(DEMO_SENSORS.map((s) => [s.uid, s.room]).sort());

  for (const s of DEMO_SENSORS) {
    const roomUid = devices.find((d: any) => d.uid === s.uid).room.uid;
    // A day of history every 30 min (~47 points) plus live readings, all in the room.
    const history = await waitFor(
      async () => {
        const h = await get(demo, `/rooms/${roomUid}/history?from=${Date.now() - 2 * 86_400_000}&bucket=raw`);
        return h.points.length >= 47 && Date.parse(h.points.at(-1).ts) > Date.now() - 10_000 ? h : null;
      },
      20_000,
      `history and live readings of ${s.room}`,
    );
    for (const p of history.points) {
      expect(p.temperature).toBeGreaterThan(10);
      expect(p.temperature).toBeLessThan(30);
      expect(p.humidity).toBeGreaterThan(20);
      expect(p.humidity).toBeLessThan(80);
    }
  }
  const live = await waitFor(
    async () => {
      const d = await get(demo, "/devices");
      return d.every((x: any) => x.state === "online" && x.interval_s === 1) ? d : null;
    },
    10_000,
    "all online",
  );
  expect(live).toHaveLength(3);
  // Different rooms, different climates.
  const latest = await get(demo, "/readings/latest");
  expect(new Set(latest.map((r: any) => r.temperature)).size).toBeGreaterThan(1);

  // Started again on the same data: no second back-fill, no second placement.
  const before = (await get(demo, "/devices/demo-kitchen/readings?limit=10000")).length;
  await demo.close();
  const again = await demoOn(dir.path);
  await waitFor(
    async () => (await get(again, "/devices/demo-kitchen/readings?limit=10000")).length > before,
    20_000,
    "new live readings",
  );
  const after = (await get(again, "/devices/demo-kitchen/readings?limit=10000")).length;
  expect(after - before).toBeLessThan(20);
  expect(await get(again, "/devices/demo-kitchen/placements")).toHaveLength(1);
}, 60_000);

test("`bun server.ts --demo` prints where to look and stops cleanly on Ctrl-C", async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const proc = spawnAgent(
    { TECHTEMP_HTTP_PORT: "0", TECHTEMP_MQTT_PORT: "0", TECHTEMP_HOST: "127.0.0.1", TECHTEMP_DATA_DIR: dir.path },
    { args: ["--demo"], script: join(import.meta.dir, "..", "server.ts") },
  );
  cleanups.push(async () => void (await proc.kill()));
  const banner = await proc.waitForLine(/TechTemp demo: open http:\/\/localhost:\d+/, 30_000);
  const port = Number(/:(\d+)/.exec(banner)![1]);
  const devices = await waitFor(
    async () => {
      const body = await (await fetch(`http://127.0.0.1:${port}/api/v1/devices`)).json();
      return body.data.length === 3 && body.data.every((d: any) => d.room !== null) ? body.data : null;
    },
    20_000,
    "three placed devices",
  );
  expect(devices).toHaveLength(3);
  expect(await proc.kill("SIGINT")).toBe(0);
}, 60_000);
