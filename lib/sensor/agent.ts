// The sensor agent: reads the AHT20 every interval (on the monotonic clock),
// commits each reading to the outbox, and publishes the outbox over MQTT
// (MQTT.js, QoS 1) oldest first, deleting a reading only on its PUBACK. It
// announces itself with a retained birth `status` (last will: offline), takes
// its interval and offsets from the retained `config` topic without a restart,
// reconnects forever with backoff and jitter, and holds readings taken before
// the system clock synchronised until they can be re-stamped.

import { MqttClient } from "mqtt";
import { createConnection } from "node:net";
import pkg from "../../package.json" with { type: "json" };
import { Aht20Error, createAht20, type Aht20, type Aht20Measurement } from "./aht20.ts";
import { probeKernelClock, type AgentClock, type KernelClock } from "./clock.ts";
import {
  HUMIDITY_RANGE,
  TEMPERATURE_RANGE,
  formatReading,
  formatStatus,
  parseConfig,
  topicFor,
  type DeviceConfig,
  type Status,
} from "../shared/contract.ts";
import { outboxBound, type AgentConfig } from "./device-config.ts";
import { I2cError, busPath, openI2cBus, type I2cBus } from "./i2c.ts";
import type { Log } from "../shared/log.ts";
import { ClockState, type Outbox, type OutboxRow } from "./outbox.ts";
import { createSimAht20, createSimBus, simulatedClimate, type SimFaults } from "./sim-aht20.ts";

/** The agent's version, announced in its birth message. */
export const AGENT_VERSION: string = pkg.version;

/** Most QoS 1 readings published and not yet acknowledged: enough to keep the link busy, few enough not to flood it. */
export const PUBLISH_WINDOW = 256;
/** First reconnect delay; it doubles up to `reconnect_max_seconds`, with jitter. */
const RECONNECT_BASE_MS = 1000;
/** While the clock is not synchronised, look again this often. */
const CLOCK_CHECK_MS = 1000;
/** A sensor read that takes longer than this is abandoned (a hung bus). */
const SENSOR_TIMEOUT_MS = 10_000;
/** After this many identical failures in a row, log again (once an hour at 1 reading/min). */
const FAILURE_LOG_EVERY = 60;

/** Something that measures. */
export interface Sensor {
  read(): Promise<Aht20Measurement>;
  close(): Promise<void>;
}

/**
 * The sensor the config asks for: the real AHT20 on /dev/i2c-N, or the
 * simulated one (`driver = sim`), both through the same driver. The bus is
 * opened on first use and again after a failure, so a sensor plugged in
 * (or I2C enabled) later is picked up without a restart.
 */
export function createSensor(
  config: Pick<AgentConfig, "driver" | "i2c_bus" | "i2c_address" | "device_uid" | "libc">,
  options: { faults?: SimFaults } = {},
): Sensor {
  if (config.driver === "sim") {
    const device = createSimAht20({ climate: simulatedClimate(config.device_uid), faults: options.faults });
    const bus = createSimBus({ [config.i2c_address]: device });
    // No self-heating in a simulation: demos and benchmarks may read every second.
    const driver = createAht20(bus, { address: config.i2c_address, busNumber: config.i2c_bus, minIntervalMs: 0 });
    return { read: () => driver.read(), close: () => bus.close() };
  }
  let bus: I2cBus | null = null;
  let driver: Aht20 | null = null;
  return {
    async read() {
      if (!bus) {
        bus = await openI2cBus(config.i2c_bus, config.i2c_address, { library: config.libc });
        driver = createAht20(bus, { address: config.i2c_address, busNumber: config.i2c_bus });
      }
      try {
        return await driver!.read();
      } catch (err) {
        // Re-initialise from scratch next time (the sensor may have been unplugged).
        await bus.close();
        bus = null;
        driver = null;
        throw err;
      }
    },
    async close() {
      await bus?.close();
      bus = null;
    },
  };
}

/**
 * Probes what the agent depends on (`bun sensor.ts check`): one reading from
 * the sensor, and — unless the clock is trusted (`[clock] sync_wait_seconds = 0`)
 * — whether the kernel can be asked if the clock is synchronised. One line per
 * part; not ok when either cannot work in this environment.
 */
export async function checkSensor(config: AgentConfig): Promise<{ ok: boolean; message: string }> {
  const sensor = createSensor(config);
  const where =
    config.driver === "sim" ? "simulated AHT20" : `AHT20 at 0x${config.i2c_address.toString(16)} on ${busPath(config.i2c_bus)}`;
  const lines: string[] = [];
  let ok = true;
  try {
    const m = await sensor.read();
    lines.push(`OK: ${where}: ${m.temperature.toFixed(2)} °C, ${m.humidity.toFixed(2)} %RH`);
  } catch (err) {
    ok = false;
    lines.push(`PROBLEM: ${(err as Error).message}`);
  } finally {
    await sensor.close();
  }
  if (config.clock_sync_wait_s > 0 && config.driver !== "sim") {
    const clock = probeKernelClock(config.libc);
    if (clock.state === "unknown" && process.platform === "linux") {
      ok = false;
      lines.push(`PROBLEM: cannot tell whether the clock is synchronised: ${clock.reason}`);
    } else lines.push(`OK: ${describeKernelClock(clock)}`);
  }
  return { ok, message: lines.join("\n") };
}

/** The kernel clock probe in words, for logs and `check`. */
export function describeKernelClock(clock: KernelClock): string {
  if (clock.state === "synced") return "clock: the kernel says it is synchronised";
  if (clock.state === "unsynced") return "clock: the kernel says it is not synchronised yet (readings wait for NTP)";
  return `clock: cannot ask the kernel whether it is synchronised: ${clock.reason}`;
}

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
export interface AgentStats {
  readings: number;
  published: number;
  acked: number;
  sensorFailures: number;
  lastError: string | null;
  connected: boolean;
  connections: number;
  intervalS: number;
}

const round2 = (v: number) => Math.round(v * 100) / 100;
const clamp = (v: number, [min, max]: readonly [number, number]) => Math.min(max, Math.max(min, v));

/** Creates the agent; `start()` begins reading and connecting, `stop()` ends cleanly. */
export function createAgent(deps: AgentDeps) {
  const { config, sensor, outbox, clock } = deps;
  const log = deps.log;
  const mqttLog = log.child("mqtt");
  const version = deps.version ?? AGENT_VERSION;
  const random = deps.random ?? Math.random;
  const uid = config.device_uid;
  const topics = {
    reading: topicFor(config.home_id, uid, "reading"),
    status: topicFor(config.home_id, uid, "status"),
    config: topicFor(config.home_id, uid, "config"),
  };

  // The effective settings: device.conf, then the server's retained config.
  let remote: DeviceConfig = {};
  const intervalS = () => remote.interval_s ?? config.interval_s;
  // Offsets from the server add to device.conf's, so a calibration made in
  // device.conf is never silently lost when the server sends its (zero) offsets.
  const temperatureOffset = () => config.temperature_offset + (remote.temperature_offset ?? 0);
  const humidityOffset = () => config.humidity_offset + (remote.humidity_offset ?? 0);

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

  // ---- time ----

  let clockSynced = false;
  let gaveUpOnClock = false;
  let clockTimer: ReturnType<typeof setInterval> | null = null;

  /** Looks at the clock: re-stamps held readings on sync, or releases them flagged after the wait. */
  function checkClock(): void {
    if (clockSynced) return;
    if (clock.synced()) {
      clockSynced = true;
      stopClockTimer();
      const n = outbox.restamp(clock.bootId, clock.wall(), clock.mono());
      if (n > 0 || gaveUpOnClock) log.info("system clock synchronised; re-stamped the readings held for it", { readings: n });
      pump();
      return;
    }
    if (gaveUpOnClock) return;
    const oldest = outbox.oldestHeld(clock.bootId);
    if (oldest !== null && clock.mono() - oldest >= config.clock_sync_wait_s * 1000) {
      gaveUpOnClock = true;
      const n = outbox.releaseHeld(clock.bootId);
      log.warn(
        `system clock not synchronised after ${config.clock_sync_wait_s} s: sending readings flagged clock_synced=false ` +
          "(check NTP with `timedatectl timesync-status`; set [clock] sync_wait_seconds = 0 if this Pi has a real-time clock)",
        { readings: n },
      );
      pump();
    }
  }
  function stopClockTimer(): void {
    if (clockTimer) clearInterval(clockTimer);
    clockTimer = null;
  }

  // ---- reading ----

  let timer: ReturnType<typeof setTimeout> | null = null;
  let nextAt = 0;
  let lastTickAt = 0;
  let reading = false;

  function schedule(at: number): void {
    if (timer) clearTimeout(timer);
    nextAt = at;
    timer = setTimeout(tick, Math.max(0, at - performance.now()));
  }

  async function tick(): Promise<void> {
    timer = null;
    if (!running || reading) return;
    reading = true;
    lastTickAt = performance.now();
    try {
      await takeReading();
    } finally {
      reading = false;
    }
    if (!running) return;
    // Next reading on the monotonic grid; readings missed while the sensor hung are skipped, not bunched.
    const interval = intervalS() * 1000;
    let at = nextAt + interval;
    const now = performance.now();
    if (at <= now) at = now + interval - ((now - nextAt) % interval);
    schedule(at);
  }

  async function takeReading(): Promise<void> {
    let m: Aht20Measurement;
    try {
      m = await withTimeout(sensor.read(), SENSOR_TIMEOUT_MS, "the sensor did not answer within 10 s");
    } catch (err) {
      sensorFailed(err as Error);
      return;
    }
    if (stats.sensorFailures > 0) {
      log.info("sensor works again", { after_failures: stats.sensorFailures });
      stats.sensorFailures = 0;
      stats.lastError = null;
      publishStatus();
    }
    checkClock();
    const state = clockSynced ? ClockState.Synced : gaveUpOnClock ? ClockState.Unsynced : ClockState.Held;
    const t = round2(clamp(m.temperature + temperatureOffset(), TEMPERATURE_RANGE));
    const h = round2(clamp(m.humidity + humidityOffset(), HUMIDITY_RANGE));
    const ts = clock.wall();
    try {
      outbox.add({ ts, t, h, mono: clock.mono(), boot: clock.bootId, state });
    } catch (err) {
      // A full disk or a broken file: say so and keep measuring. When connected,
      // send the reading anyway (untracked: lost only if this one send fails too).
      const sent = state !== ClockState.Held && stats.connected && client !== null;
      log.error(`cannot store the reading in the outbox${sent ? "; sending it without a copy on disk" : "; it is lost"}`, {
        error: err as Error,
        temperature_c: t,
        humidity_pct: h,
        ts,
      });
      const unsynced = state === ClockState.Unsynced ? { clock_synced: false } : {};
      if (sent)
        client!.publish(topics.reading, formatReading({ temperature_c: t, humidity_pct: h, ts, ...unsynced }), { qos: 1 });
      return;
    }
    stats.readings++;
    log.info("reading", { temperature_c: t, humidity_pct: h, ts, held: state === ClockState.Held || undefined });
    if (state === ClockState.Held && !clockTimer) clockTimer = setInterval(checkClock, CLOCK_CHECK_MS);
    pump();
  }

  function sensorFailed(err: Error): void {
    const message = err.message;
    const changed = message !== stats.lastError;
    stats.sensorFailures++;
    stats.lastError = message;
    if (changed || stats.sensorFailures === 1)
      log.error("cannot read the sensor", { error: message, failures: stats.sensorFailures });
    else if (stats.sensorFailures % FAILURE_LOG_EVERY === 0) {
      log.warn("sensor still failing", { error: message, failures: stats.sensorFailures });
    } else log.debug("cannot read the sensor", { error: message, failures: stats.sensorFailures });
    if (!(err instanceof I2cError) && !(err instanceof Aht20Error)) log.debug("unexpected sensor error", { stack: err.stack });
    publishStatus();
  }

  // ---- MQTT ----

  let client: MqttClient | null = null;
  let generation = 0;
  let attempt = 0;
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  let lastMqttError: string | null = null;
  /** Highest outbox id published on this connection; everything after it is still to send. */
  let cursor = 0;
  const inflight = new Set<number>();
  // Token bucket for the drain rate: a tenth of a second's worth may go at once.
  const burst = Math.max(1, Math.ceil(config.outbox_drain_rate / 10));
  let tokens = burst;
  let tokensAt = performance.now();
  let pumpTimer: ReturnType<typeof setTimeout> | null = null;

  function status(): Status {
    const s: Status = { state: "online", interval_s: intervalS(), version, sensor_failures: stats.sensorFailures };
    if (stats.lastError !== null) s.last_error = stats.lastError;
    return s;
  }

  function publishStatus(): void {
    if (!stats.connected || !client) return;
    client.publish(topics.status, formatStatus(status()), { qos: 1, retain: true }, (err) => {
      if (err && stats.connected) mqttLog.warn("cannot publish status", { error: err.message });
    });
  }

  function connect(): void {
    reconnectTimer = null;
    if (stopping) return;
    const gen = ++generation;
    // MqttClient with a plain TCP stream, not mqtt.connect(): that loads every
    // transport it knows on first use (WebSocket, TLS, SOCKS: ~8 MB of code)
    // for a device that only ever speaks MQTT over TCP.
    const c = new MqttClient(() => createConnection(config.broker_port, config.broker_host), {
      host: config.broker_host,
      port: config.broker_port,
      protocol: "mqtt",
      protocolVersion: 4,
      clientId: `techtemp-${uid}`,
      username: config.username === "" ? undefined : config.username,
      password: config.username === "" ? undefined : config.password,
      keepalive: config.keepalive_s,
      clean: true,
      // We reconnect ourselves, with backoff and jitter, and resend from the outbox.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      resubscribe: false,
      // mqtt-packet otherwise builds a cache of 65,536 two-byte Buffers (one per
      // packet id) on the first publish: ~15 MB on a device that sends a few
      // packets a minute. Making the two bytes per packet costs nothing here.
      writeCache: false,
      will: { topic: topics.status, payload: Buffer.from(formatStatus({ state: "offline" })), qos: 1, retain: true },
    });
    client = c;
    c.on("connect", () => {
      if (gen !== generation) return;
      attempt = 0;
      lastMqttError = null;
      stats.connected = true;
      stats.connections++;
      mqttLog.info("connected", {
        broker: `${config.broker_host}:${config.broker_port}`,
        client_id: `techtemp-${uid}`,
        outbox: outbox.count,
      });
      publishStatus();
      c.subscribe(topics.config, { qos: 1 }, (err) => {
        if (err && gen === generation)
          mqttLog.warn("cannot subscribe to the config topic", { topic: topics.config, error: err.message });
      });
      cursor = 0;
      inflight.clear();
      pump();
    });
    c.on("message", (topic, payload) => {
      if (gen === generation && topic === topics.config) applyConfig(payload);
    });
    c.on("error", (err: Error & { code?: string | number }) => {
      if (gen !== generation) return;
      lastMqttError =
        err.code === 5 || err.code === 4 || /not authori[sz]ed|bad user/i.test(err.message)
          ? `${err.message}: check username and password in [mqtt] of device.conf`
          : err.message;
    });
    c.on("close", () => {
      if (gen === generation) disconnected();
    });
  }

  function disconnected(): void {
    const wasConnected = stats.connected;
    stats.connected = false;
    generation++; // callbacks of the old client are ignored from here on
    inflight.clear();
    if (pumpTimer) clearTimeout(pumpTimer);
    pumpTimer = null;
    try {
      outbox.flushAcks();
    } catch (err) {
      log.error("cannot delete acknowledged readings", { error: err as Error });
    }
    client?.end(true);
    client = null;
    if (stopping) return;
    const ceiling = Math.min(config.reconnect_max_s * 1000, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 20));
    attempt++;
    // "Equal jitter": half fixed, half random, so sensors that lost the same server do not return in step.
    const delay = Math.round(ceiling / 2 + (random() * ceiling) / 2);
    const fields = {
      broker: `${config.broker_host}:${config.broker_port}`,
      error: lastMqttError ?? undefined,
      retry_in_s: delay / 1000,
      outbox: outbox.count,
    };
    if (wasConnected) mqttLog.warn("disconnected from the broker", fields);
    else if (attempt === 1 || attempt % 10 === 0) mqttLog.warn("cannot connect to the broker", { ...fields, attempts: attempt });
    else mqttLog.debug("cannot connect to the broker", { ...fields, attempts: attempt });
    reconnectTimer = setTimeout(connect, delay);
  }

  function applyConfig(payload: Buffer): void {
    if (payload.length === 0) {
      // The retained config was cleared: back to device.conf.
      setRemote({}, null);
      return;
    }
    const parsed = parseConfig(payload);
    if (!parsed.ok) {
      mqttLog.warn("ignored a bad config message", { topic: topics.config, reason: parsed.reason });
      return;
    }
    setRemote(parsed.value, payload.toString());
  }

  function setRemote(next: DeviceConfig, raw: string | null): void {
    const before = { interval: intervalS(), t: temperatureOffset(), h: humidityOffset() };
    remote = next;
    try {
      outbox.setSetting("config", raw);
    } catch (err) {
      log.warn("cannot remember the config", { error: err as Error });
    }
    const after = { interval: intervalS(), t: temperatureOffset(), h: humidityOffset() };
    if (before.interval === after.interval && before.t === after.t && before.h === after.h) return;
    log.info("config applied", { interval_s: after.interval, temperature_offset: after.t, humidity_offset: after.h });
    stats.intervalS = after.interval;
    if (config.outbox_max_readings === null)
      outbox.setMaxReadings(outboxBound({ outbox_max_readings: null, interval_s: after.interval }));
    if (before.interval !== after.interval) {
      publishStatus();
      // The new interval counts from the last reading: a shorter one may be due now.
      if (running && !reading) schedule(Math.max(performance.now(), lastTickAt + after.interval * 1000));
    }
  }

  /** Publishes from the outbox while the window and the drain rate allow. */
  function pump(): void {
    if (!stats.connected || !client || pumpTimer) return;
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - tokensAt) * config.outbox_drain_rate) / 1000);
    tokensAt = now;
    while (inflight.size < PUBLISH_WINDOW) {
      const room = Math.min(PUBLISH_WINDOW - inflight.size, Math.floor(tokens));
      if (room <= 0) {
        pumpTimer = setTimeout(
          () => {
            pumpTimer = null;
            pump();
          },
          Math.max(5, Math.ceil(1000 / config.outbox_drain_rate)),
        );
        return;
      }
      let rows: OutboxRow[];
      try {
        // Held readings (clock not synced) are skipped. They are always newer
        // than everything sendable, so the cursor never passes one.
        rows = outbox.next(cursor, room);
      } catch (err) {
        log.error("cannot read the outbox", { error: err as Error });
        return;
      }
      if (rows.length === 0) return;
      for (const row of rows) {
        cursor = row.id;
        tokens--;
        send(row);
      }
    }
  }

  function send(row: OutboxRow): void {
    const gen = generation;
    const payload = formatReading({
      temperature_c: row.t,
      humidity_pct: row.h,
      ts: row.ts,
      ...(row.state === ClockState.Unsynced ? { clock_synced: false } : {}),
    });
    inflight.add(row.id);
    stats.published++;
    client!.publish(topics.reading, payload, { qos: 1 }, (err) => {
      // An error here means the connection closed; the reading stays in the outbox and goes again.
      if (gen !== generation) return;
      inflight.delete(row.id);
      if (err) return;
      stats.acked++;
      try {
        outbox.ack(row.id);
      } catch (e) {
        log.error("cannot delete an acknowledged reading", { error: e as Error });
      }
      pump();
    });
  }

  return {
    stats,
    topics,
    /** Starts reading and connecting. */
    start(): void {
      if (running) return;
      running = true;
      const saved = outbox.getSetting("config");
      if (saved !== null) {
        const parsed = parseConfig(saved);
        if (parsed.ok) {
          remote = parsed.value;
          stats.intervalS = intervalS();
          log.info("using the last config received from the server", { interval_s: intervalS() });
        }
      }
      if (config.outbox_max_readings === null)
        outbox.setMaxReadings(outboxBound({ outbox_max_readings: null, interval_s: intervalS() }));
      const stale = outbox.releaseOtherBoots(clock.bootId);
      if (stale > 0) {
        log.warn("readings held for the clock before a reboot cannot be re-stamped; sending them flagged clock_synced=false", {
          readings: stale,
        });
      }
      if (outbox.oldestHeld(clock.bootId) !== null) clockTimer = setInterval(checkClock, CLOCK_CHECK_MS);
      checkClock();
      if (!clockSynced && config.clock_sync_wait_s > 0) {
        log.warn(`system clock not synchronised yet: holding readings until it is (at most ${config.clock_sync_wait_s} s)`);
      }
      schedule(performance.now());
      connect();
    },
    /** Stops reading, says offline, disconnects cleanly and closes the outbox. */
    async stop(): Promise<void> {
      if (stopping) return;
      stopping = true;
      running = false;
      if (timer) clearTimeout(timer);
      if (reconnectTimer) clearTimeout(reconnectTimer);
      if (pumpTimer) clearTimeout(pumpTimer);
      stopClockTimer();
      const c = client;
      if (c && stats.connected) {
        // A clean DISCONNECT suppresses the last will, so say offline ourselves.
        await withTimeout(
          new Promise<void>((resolve) =>
            c.publish(topics.status, formatStatus({ state: "offline" }), { qos: 1, retain: true }, () => resolve()),
          ),
          2000,
          "offline status",
        ).catch(() => {});
        await withTimeout(new Promise<void>((resolve) => c.end(false, {}, () => resolve())), 2000, "disconnect").catch(() =>
          c.end(true),
        );
      } else c?.end(true);
      generation++;
      stats.connected = false;
      client = null;
      outbox.close();
      await sensor.close();
    },
    /** The interval in force (device.conf or the server's config). */
    get intervalS() {
      return intervalS();
    },
  };
}

/** The agent's interface. */
export type Agent = ReturnType<typeof createAgent>;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]);
}
