// `bun run demo` (`bun server.ts --demo`): the server plus three simulated
// sensors, each a full agent (simulated AHT20, outbox, MQTT.js over TCP, or
// TLS when plain MQTT is off, through the real broker) with its own MQTT
// secret as enrollment gives one, placed in three rooms, so a new user sees
// live data at once. On first start each sensor back-fills a week of history
// through MQTT (from its outbox, like readings after an outage), so the
// charts are not empty. Ctrl-C stops the sensors, then the server.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAgent, type Agent } from "./sensor/agent.ts";
import { createSystemClock } from "./sensor/clock.ts";
import { hashSecret, newSecret } from "./server/auth/secrets.ts";
import type { Config } from "./server/config.ts";
import type { Store } from "./server/store/store.ts";
import type { TlsInfo } from "./server/tls/certificates.ts";
import { DEVICE_DEFAULTS, outboxBound, type AgentConfig } from "./sensor/device-config.ts";
import { createLog, type Log } from "./shared/log.ts";
import { ClockState, openOutbox, outboxPath, type NewReading } from "./sensor/outbox.ts";
import { createSensor } from "./sensor/probe.ts";
import { simulatedClimate } from "./sensor/sim-aht20.ts";

/** The demo's sensors and the rooms they are put in. */
export const DEMO_SENSORS = [
  { uid: "demo-living-room", room: "Living room", label: "Demo sensor (living room)" },
  { uid: "demo-bedroom", room: "Bedroom", label: "Demo sensor (bedroom)" },
  { uid: "demo-kitchen", room: "Kitchen", label: "Demo sensor (kitchen)" },
] as const;

/** The running server as the demo uses it (server.ts's Running). */
export interface DemoServer {
  httpPort: number;
  mqttPort: number;
  mqttsPort: number | null;
  tls: TlsInfo | null;
  store: Pick<Store, "setDeviceSecret" | "findDevice" | "devicePlacements" | "updateDevice">;
  close(): Promise<void>;
}

/** What the demo needs from server.ts (passed in, so this module does not import server.ts). */
export interface DemoOptions {
  /** server.ts's `start`. */
  start: (config: Config, options: { log?: Log }) => Promise<DemoServer>;
  config: Config;
  log?: Log;
  /** Seconds between readings (default 10: data shows up at once). */
  intervalS?: number;
  /** Days of history back-filled on first start (default 7; 0 = none). */
  backfillDays?: number;
  /** Minutes between back-filled readings (default 5). */
  backfillStepMinutes?: number;
  /** Log level of the simulated sensors (default warn: the console stays readable). */
  sensorLogLevel?: "debug" | "info" | "warn" | "error";
}

/** A running demo. */
export interface Demo {
  httpPort: number;
  mqttPort: number;
  agents: Agent[];
  /** Stops the sensors (they say offline), then the server. */
  close(): Promise<void>;
}

/** The address a local client uses to reach a server bound to `host`. */
const localAddress = (host: string) => (host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host);

/** Starts the server and the three simulated sensors. */
export async function startDemo(options: DemoOptions): Promise<Demo> {
  const log = options.log ?? createLog({ level: options.config.log_level });
  const intervalS = options.intervalS ?? 10;
  const backfillDays = options.backfillDays ?? 7;
  const step = (options.backfillStepMinutes ?? 5) * 60_000;
  const running = await options.start(options.config, { log });
  // Plain MQTT switched off: the sensors use MQTT over TLS, trusting the local CA (or the system's CAs).
  const tls = running.mqttPort === 0;
  let caFile = "";
  if (tls && running.tls?.caPem) {
    caFile = join(options.config.data_dir, "demo-ca.crt");
    writeFileSync(caFile, running.tls.caPem);
  }
  const sensorLog = createLog({ level: options.sensorLogLevel ?? "warn", name: "demo" });
  const agents: Agent[] = [];
  try {
    for (const s of DEMO_SENSORS) {
      const config: AgentConfig = {
        ...DEVICE_DEFAULTS,
        device_uid: s.uid,
        uid_source: "demo",
        label: s.label,
        driver: "sim",
        // The certificate names localhost (techtemp-server tls), not 127.0.0.1's name.
        broker_host: tls ? "localhost" : localAddress(options.config.host),
        broker_port: tls ? running.mqttsPort! : running.mqttPort,
        tls,
        ca_file: caFile,
        interval_s: intervalS,
        reconnect_max_s: 5,
        clock_sync_wait_s: 0,
        data_dir: options.config.data_dir,
        file: null,
        warnings: [],
      };
      const path = outboxPath(config.data_dir, s.uid);
      const firstStart = !existsSync(path) && running.store.findDevice(s.uid) === null;
      // A new secret at each start, as `install.sh sensor --enroll` would give it (stored hashed).
      const secret = newSecret();
      running.store.setDeviceSecret(s.uid, hashSecret(secret));
      config.username = s.uid;
      config.password = secret;
      const outbox = openOutbox(path, { maxReadings: outboxBound(config), log: sensorLog.child(s.uid) });
      const clock = createSystemClock({ trust: true });
      if (firstStart && backfillDays > 0) outbox.addMany(history(s.uid, backfillDays, step, clock.bootId));
      const agent = createAgent({ config, sensor: createSensor(config), outbox, clock, log: sensorLog.child(s.uid) });
      agent.start();
      agents.push(agent);
    }
    for (const s of DEMO_SENSORS) placeOnce(running.store, s, backfillDays);
  } catch (err) {
    for (const a of agents) await a.stop();
    await running.close();
    throw err;
  }
  return {
    httpPort: running.httpPort,
    mqttPort: running.mqttPort,
    agents,
    async close() {
      for (const a of agents) await a.stop();
      await running.close();
    },
  };
}

/** Readings for the past `days`, every `step` ms, on the sensor's simulated climate. */
function history(uid: string, days: number, step: number, boot: string): NewReading[] {
  const climate = simulatedClimate(uid);
  const now = Date.now();
  const out: NewReading[] = [];
  for (let ts = Math.ceil((now - days * 86_400_000) / step) * step; ts < now - step; ts += step) {
    const { temperature, humidity } = climate(ts);
    out.push({
      ts,
      t: Math.round(temperature * 100) / 100,
      h: Math.round(humidity * 100) / 100,
      mono: 0,
      boot,
      state: ClockState.Synced,
    });
  }
  return out;
}

/**
 * Puts a demo sensor in its room the first time (its secret has registered
 * it, unplaced), back-dated to cover the back-filled history. A sensor
 * someone has moved since is left where it is. Through the store, in
 * process: the demo is the server's own code, not an API client.
 */
function placeOnce(store: DemoServer["store"], s: (typeof DEMO_SENSORS)[number], backfillDays: number): void {
  if (store.devicePlacements(s.uid).length > 0) return;
  const movedAt = Date.now() - (backfillDays * 86_400_000 + 3_600_000);
  store.updateDevice(s.uid, { roomName: s.room, label: s.label, movedAt });
}

/** `bun server.ts --demo`: runs the demo until Ctrl-C (SIGINT) or SIGTERM. Returns the exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  let demo: Demo;
  try {
    demo = await startDemo(options);
  } catch (err) {
    console.error(`cannot start the demo: ${(err as Error).message}`);
    return 1;
  }
  const host = localAddress(options.config.host);
  console.log(
    [
      "",
      `TechTemp demo: open http://${host === "127.0.0.1" ? "localhost" : host}:${demo.httpPort}`,
      `  three simulated sensors publish every ${options.intervalS ?? 10} s through the MQTT broker on port ${demo.mqttPort}:`,
      ...DEMO_SENSORS.map((s) => `    ${s.room.padEnd(12)} ${s.uid}`),
      `  a week of history is back-filled on first start; data lives in ${options.config.data_dir}`,
      "  Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await demo.close();
  return 0;
}
