// The sampler: reads the sensor every interval on a monotonic grid (a reading
// that took long, or a hung sensor, skips the readings it missed instead of
// bunching them), applies the offsets, and commits each reading to the outbox
// before anything is sent. Failures are counted and logged without flooding
// the journal (the first, a new error, then every 60th); each failure and the
// recovery are announced in the status.

import { HUMIDITY_RANGE, TEMPERATURE_RANGE } from "../shared/contract.ts";
import type { Log } from "../shared/log.ts";
import { Aht20Error, type Aht20Measurement } from "./aht20.ts";
import type { ClockHold } from "./clock-hold.ts";
import type { AgentClock } from "./clock.ts";
import { I2cError } from "./i2c.ts";
import { ClockState, type Outbox } from "./outbox.ts";
import type { Sensor } from "./probe.ts";
import type { EffectiveSettings } from "./remote-config.ts";
import { withTimeout } from "./timeout.ts";

/**
 * A whole sensor read (the driver's retries and waits included) that takes
 * longer than this is given up. It is a backstop: each bus transfer is bounded
 * by the kernel (i2c.ts, I2C_TIMEOUT), and a transfer that times out ends the
 * read, so this timer gets the thread back in time to fire.
 */
const SENSOR_TIMEOUT_MS = 10_000;
/** After this many identical failures in a row, log again (once an hour at 1 reading/min). */
const FAILURE_LOG_EVERY = 60;

/** The sampler's counters (part of the agent's stats). */
export interface SamplerStats {
  /** Readings taken and stored in the outbox. */
  readings: number;
  /** Consecutive failed reads (0 once one succeeds). */
  sensorFailures: number;
  /** The message of the last failure, null once a read succeeds. */
  lastError: string | null;
}

/** What the sampler needs. */
export interface SamplerDeps {
  sensor: Sensor;
  outbox: Pick<Outbox, "add">;
  clock: AgentClock;
  log: Log;
  stats: SamplerStats;
  /** Whether a reading taken now is sendable, held or flagged. */
  hold: Pick<ClockHold, "check" | "state" | "held">;
  /** The interval and offsets in force. */
  settings: EffectiveSettings;
  /** The sensor failed, or works again: announce it. */
  onHealthChange(): void;
  /** A reading is in the outbox. */
  onReading(): void;
  /** Monotonic milliseconds, for the schedule (default performance.now). */
  now?: () => number;
}

const round2 = (v: number) => Math.round(v * 100) / 100;
const clamp = (v: number, [min, max]: readonly [number, number]) => Math.min(max, Math.max(min, v));

/** Creates the sampler; `start()` takes the first reading at once. */
export function createSampler(deps: SamplerDeps) {
  const { sensor, outbox, clock, log, stats, hold, settings } = deps;
  const now = deps.now ?? (() => performance.now());
  let running = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let nextAt = 0;
  let lastTickAt = 0;
  let reading = false;

  function schedule(at: number): void {
    if (timer) clearTimeout(timer);
    nextAt = at;
    timer = setTimeout(tick, Math.max(0, at - now()));
  }

  async function tick(): Promise<void> {
    timer = null;
    if (!running || reading) return;
    reading = true;
    lastTickAt = now();
    try {
      await takeReading();
    } finally {
      reading = false;
    }
    if (!running) return;
    // Next reading on the monotonic grid; readings missed while the sensor hung are skipped, not bunched.
    const interval = settings.intervalS() * 1000;
    let at = nextAt + interval;
    const t = now();
    if (at <= t) at = t + interval - ((t - nextAt) % interval);
    schedule(at);
  }

  async function takeReading(): Promise<void> {
    let m: Aht20Measurement;
    try {
      m = await withTimeout(sensor.read(), SENSOR_TIMEOUT_MS, "the sensor did not answer within 10 s");
    } catch (err) {
      failed(err as Error);
      return;
    }
    if (stats.sensorFailures > 0) {
      log.info("sensor works again", { after_failures: stats.sensorFailures });
      stats.sensorFailures = 0;
      stats.lastError = null;
      deps.onHealthChange();
    }
    hold.check();
    const state = hold.state();
    const t = round2(clamp(m.temperature + settings.temperatureOffset(), TEMPERATURE_RANGE));
    const h = round2(clamp(m.humidity + settings.humidityOffset(), HUMIDITY_RANGE));
    const ts = clock.wall();
    try {
      outbox.add({ ts, t, h, mono: clock.mono(), boot: clock.bootId, state });
    } catch (err) {
      // The outbox keeps a reading in memory when its file cannot take it (a full
      // disk); an error here is something else: say so and keep measuring.
      log.error("cannot store the reading in the outbox; it is lost", {
        error: err as Error,
        temperature_c: t,
        humidity_pct: h,
        ts,
      });
      return;
    }
    stats.readings++;
    log.info("reading", { temperature_c: t, humidity_pct: h, ts, held: state === ClockState.Held || undefined });
    if (state === ClockState.Held) hold.held();
    deps.onReading();
  }

  function failed(err: Error): void {
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
    deps.onHealthChange();
  }

  return {
    /** Takes the first reading now, then one every interval. */
    start(): void {
      running = true;
      schedule(now());
    },
    /** The interval changed: it counts from the last reading, so a shorter one may be due now. */
    reschedule(): void {
      if (running && !reading) schedule(Math.max(now(), lastTickAt + settings.intervalS() * 1000));
    },
    /** Takes no more readings (one under way still completes). */
    stop(): void {
      running = false;
      if (timer) clearTimeout(timer);
    },
  };
}
