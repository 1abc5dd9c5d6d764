// The sensor agent, wired from its parts: the sampler reads the AHT20 every
// interval and commits each reading to the outbox; the clock hold keeps
// readings taken before the system clock synchronised until they can be
// re-stamped; the link keeps the MQTT connection (birth, last will, status,
// config subscription, reconnects); the drain publishes the outbox oldest
// first and deletes a reading only on its PUBACK; the remote config applies
// the server's retained config without a restart.

import pkg from "../../package.json" with { type: "json" };
import { topicFor } from "../shared/contract.ts";
import type { Log } from "../shared/log.ts";
import { createClockHold } from "./clock-hold.ts";
import type { AgentClock } from "./clock.ts";
import type { AgentConfig } from "./device-config.ts";
import { createDrain, type DrainStats } from "./drain.ts";
import { createLink, type LinkStats } from "./link.ts";
import type { Outbox } from "./outbox.ts";
import type { Sensor } from "./probe.ts";
import { createRemoteConfig } from "./remote-config.ts";
import { createSampler, type SamplerStats } from "./sampler.ts";

/** The agent's version, announced in its birth message. */
export const AGENT_VERSION: string = pkg.version;

/** What the agent needs. Everything with a clock or a disk is injected. */
export interface AgentDeps {
  config: AgentConfig;
  sensor: Sensor;
  outbox: Outbox;
  clock: AgentClock;
  log: Log;
  version?: string;
  /** For reconnect jitter (tests make it deterministic). */
  random?: () => number;
}

/** Counters and state, for logs, the demo and tests. */
export interface AgentStats extends SamplerStats, DrainStats, Omit<LinkStats, "sensorFailures" | "lastError"> {
  /** The interval in force (device.conf or the server's config). */
  intervalS: number;
}

/** Creates the agent; `start()` begins reading and connecting, `stop()` ends cleanly. */
export function createAgent(deps: AgentDeps) {
  const { config, sensor, outbox, clock, log } = deps;
  const uid = config.device_uid;
  const topics = {
    reading: topicFor(config.home_id, uid, "reading"),
    status: topicFor(config.home_id, uid, "status"),
    config: topicFor(config.home_id, uid, "config"),
  };
  const stats: AgentStats = {
    readings: 0,
    published: 0,
    acked: 0,
    sensorFailures: 0,
    lastError: null,
    connected: false,
    connections: 0,
    intervalS: config.interval_s,
  };
  let running = false;
  let stopping = false;

  // The parts call each other through these arrows, after all are made.
  const remote = createRemoteConfig({
    config,
    outbox,
    log,
    stats,
    topic: topics.config,
    onIntervalChange() {
      link.publishStatus();
      sampler.reschedule();
    },
  });
  const drain = createDrain({ config, outbox, log, stats, topic: topics.reading });
  const hold = createClockHold({ config, outbox, clock, log, onRelease: () => drain.pump() });
  const link = createLink({
    config,
    topics,
    log,
    stats,
    version: deps.version ?? AGENT_VERSION,
    intervalS: remote.intervalS,
    queued: () => outbox.count,
    random: deps.random ?? Math.random,
    onConnected: (client) => drain.connected(client),
    onDisconnected: () => drain.disconnected(),
    onConfig: (payload) => remote.apply(payload),
  });
  const sampler = createSampler({
    sensor,
    outbox,
    clock,
    log,
    stats,
    hold,
    settings: remote,
    onHealthChange: () => link.publishStatus(),
    onReading: () => drain.pump(),
  });

  return {
    stats,
    topics,
    /** Starts reading and connecting. */
    start(): void {
      if (running) return;
      running = true;
      remote.restore();
      hold.start();
      sampler.start();
      link.start();
    },
    /** Stops reading, says offline, disconnects cleanly and closes the outbox. */
    async stop(): Promise<void> {
      if (stopping) return;
      stopping = true;
      running = false;
      sampler.stop();
      drain.pause();
      hold.stop();
      await link.close();
      drain.detach();
      outbox.close();
      await sensor.close();
    },
    /** The interval in force (device.conf or the server's config). */
    get intervalS() {
      return remote.intervalS();
    },
  };
}

/** The agent's interface. */
export type Agent = ReturnType<typeof createAgent>;
