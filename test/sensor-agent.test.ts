// The sensor agent end to end with the real server: `bun sensor.ts` as a child
// process (simulated AHT20) through the real broker over TCP. Readings arrive
// with their timestamps; a retained config changes the interval without a
// restart; a cut connection shows the device offline (last will); sensor
// failures are reported in the status and never stop the agent.

import { afterEach, describe, expect, test } from "bun:test";
import { createAgent } from "../lib/sensor/agent.ts";
import { createSystemClock } from "../lib/sensor/clock.ts";
import { createLog } from "../lib/shared/log.ts";
import { openOutbox, outboxPath } from "../lib/sensor/outbox.ts";
import { createSensor } from "../lib/sensor/probe.ts";
import type { SimFaults } from "../lib/sensor/sim-aht20.ts";
import { startServer, tempDir, waitFor, type TestServer } from "./helpers.ts";
import {
  agentEnv,
  deviceOf,
  sensorLogin,
  spawnAgent,
  startRelay,
  storedTs,
  testAgentConfig,
  type AgentProcess,
  type Relay,
} from "./sensor-helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function world(): Promise<{ server: TestServer; dir: string }> {
  const server = await startServer({}, { logLevel: "info" });
  cleanups.push(() => server.stop());
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  return { server, dir: dir.path };
}

function agent(env: Record<string, string>): AgentProcess {
  const a = spawnAgent(env);
  cleanups.push(async () => void (await a.kill()));
  return a;
}

describe("the agent with the real server", () => {
  test("readings arrive with the timestamps they were taken at, and the birth message shows it online", async () => {
    const { server, dir } = await world();
    const a = agent(agentEnv(server.mqttPort, dir, "aht20-e2e001", sensorLogin(server, "aht20-e2e001")));
    await waitFor(async () => (await storedTs(server, "aht20-e2e001")).length >= 4, 20_000, "4 readings stored");
    const stored = await storedTs(server, "aht20-e2e001");
    // Every stored timestamp is one the agent logged when it took the reading (its stdout may lag a little)…
    await waitFor(() => stored.every((ts) => a.taken().includes(ts)), 5000, "stored readings in the agent's log");
    // …and every reading taken is stored, in order, none skipped.
    expect(stored).toEqual(a.taken().slice(0, stored.length));
    const device = await deviceOf(server, "aht20-e2e001");
    expect(device).toMatchObject({
      state: "online",
      interval_s: 1,
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      sensor_failures: 0,
    });
    const line = a.lines.find((l) => l.includes("sensor: reading"))!;
    expect(line).toMatch(/temperature_c=-?\d+(\.\d+)? humidity_pct=\d+(\.\d+)? ts=\d+/);
  }, 40_000);

  test("a retained config change applies the new interval at once, without a restart", async () => {
    const { server, dir } = await world();
    const a = agent(
      agentEnv(server.mqttPort, dir, "aht20-e2e002", { ...sensorLogin(server, "aht20-e2e002"), TECHTEMP_INTERVAL_S: "3600" }),
    );
    await waitFor(async () => (await storedTs(server, "aht20-e2e002")).length === 1, 20_000, "the first reading");
    await waitFor(async () => (await deviceOf(server, "aht20-e2e002"))?.interval_s === 3600, 10_000, "interval 3600 announced");
    const put = await server.api("/api/v1/devices/aht20-e2e002", { method: "PUT", body: { interval_s: 1 } });
    expect(put.status).toBe(200);
    // With 3600 s the next reading would be an hour away: these come from the new interval.
    await waitFor(async () => (await storedTs(server, "aht20-e2e002")).length >= 4, 20_000, "readings at the new interval");
    await waitFor(async () => (await deviceOf(server, "aht20-e2e002"))?.interval_s === 1, 10_000, "interval 1 announced");
    expect(a.proc.exitCode).toBeNull();
    expect(a.lines.some((l) => l.includes("config applied interval_s=1"))).toBe(true);
  }, 60_000);

  test("a retained config waiting on the broker is applied when the agent connects, and a bad one is ignored", async () => {
    const { server, dir } = await world();
    // Only the server publishes config messages (in-process; no client may).
    await server.broker.publish("home/home-001/sensors/aht20-e2e003/config", '{"interval_s":1,"temperature_offset":10}', {
      retain: true,
    });
    const a = agent(
      agentEnv(server.mqttPort, dir, "aht20-e2e003", { ...sensorLogin(server, "aht20-e2e003"), TECHTEMP_INTERVAL_S: "3600" }),
    );
    await a.waitForLine(/config applied interval_s=1 temperature_offset=10/);
    await waitFor(async () => (await storedTs(server, "aht20-e2e003")).length >= 2, 20_000, "readings at the retained interval");
    // Now a bad config: logged and ignored, the agent carries on at its interval.
    const from = a.lines.length;
    await server.broker.publish("home/home-001/sensors/aht20-e2e003/config", '{"interval_s":0}', { retain: true });
    await a.waitForLine(/ignored a bad config message .*interval_s must be a whole number 1…3600, got 0/, 10_000, from);
    const before = (await storedTs(server, "aht20-e2e003")).length;
    await waitFor(
      async () => (await storedTs(server, "aht20-e2e003")).length >= before + 2,
      20_000,
      "readings after the bad config",
    );
    expect(a.proc.exitCode).toBeNull();
  }, 60_000);

  test("the agent's connection cut shows the device offline (last will), and it comes back by itself", async () => {
    const { server, dir } = await world();
    const relay: Relay = await startRelay(server.mqttPort);
    cleanups.push(() => relay.close());
    const a = agent(agentEnv(relay.port, dir, "aht20-e2e004", sensorLogin(server, "aht20-e2e004")));
    await waitFor(async () => (await deviceOf(server, "aht20-e2e004"))?.state === "online", 20_000, "online");
    relay.hold();
    relay.cut();
    await waitFor(
      async () => (await deviceOf(server, "aht20-e2e004"))?.state === "offline",
      10_000,
      "offline from the last will",
    );
    expect(a.proc.exitCode).toBeNull();
    relay.release();
    await waitFor(async () => (await deviceOf(server, "aht20-e2e004"))?.state === "online", 20_000, "online again");
  }, 60_000);

  test("an agent killed outright shows offline; one stopped with SIGTERM says offline itself and exits 0", async () => {
    const { server, dir } = await world();
    const killed = agent(agentEnv(server.mqttPort, dir, "aht20-e2e005", sensorLogin(server, "aht20-e2e005")));
    await waitFor(async () => (await deviceOf(server, "aht20-e2e005"))?.state === "online", 20_000, "online");
    await killed.kill("SIGKILL");
    await waitFor(async () => (await deviceOf(server, "aht20-e2e005"))?.state === "offline", 10_000, "offline after SIGKILL");

    const stopped = agent(agentEnv(server.mqttPort, dir, "aht20-e2e006", sensorLogin(server, "aht20-e2e006")));
    await waitFor(async () => (await deviceOf(server, "aht20-e2e006"))?.state === "online", 20_000, "online");
    expect(await stopped.kill("SIGTERM")).toBe(0);
    expect((await deviceOf(server, "aht20-e2e006")).state).toBe("offline");
    expect(stopped.lines.some((l) => l.includes("sensor: stopped"))).toBe(true);
  }, 60_000);
});

describe("sensor failures", () => {
  test("are reported in the status (consecutive failures, last error) and never stop the agent", async () => {
    const { server, dir } = await world();
    const config = testAgentConfig(agentEnv(server.mqttPort, dir, "aht20-e2e007", sensorLogin(server, "aht20-e2e007")));
    const faults: SimFaults = { missing: true };
    const lines: string[] = [];
    const log = createLog({ sink: (line) => lines.push(line), name: "sensor" });
    const outbox = openOutbox(outboxPath(dir, config.device_uid), { maxReadings: 1000, log });
    const a = createAgent({
      config,
      sensor: createSensor(config, { faults }),
      outbox,
      clock: createSystemClock({ trust: true }),
      log,
    });
    a.start();
    cleanups.push(() => a.stop());
    const failing = await waitFor(
      async () => {
        const d = await deviceOf(server, "aht20-e2e007");
        return d?.sensor_failures >= 2 ? d : null;
      },
      20_000,
      "two failures reported",
    );
    expect(failing.state).toBe("online");
    expect(failing.last_error).toContain("no AHT20 answers at 0x38 on I2C bus 1");
    expect(failing.last_error).toContain("i2cdetect -y 1");
    expect(lines.filter((l) => l.includes("ERROR sensor: cannot read the sensor"))).toHaveLength(1);

    faults.missing = false;
    await waitFor(
      async () => (await storedTs(server, "aht20-e2e007")).length >= 1,
      20_000,
      "a reading after the sensor came back",
    );
    const healthy = await waitFor(
      async () => {
        const d = await deviceOf(server, "aht20-e2e007");
        return d?.sensor_failures === 0 ? d : null;
      },
      10_000,
      "failures back to 0",
    );
    expect(healthy.last_error).toBeNull();
    expect(lines.some((l) => l.includes("sensor works again"))).toBe(true);
  }, 60_000);
});
