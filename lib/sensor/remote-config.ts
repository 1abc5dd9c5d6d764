// The settings the server may change without a restart (SPEC "MQTT contract",
// the retained `config` topic): the interval and the offsets, over
// device.conf's. The last config received is remembered in the outbox, so an
// agent restarted while the broker is away still uses it.

import { parseConfig, type DeviceConfig } from "../shared/contract.ts";
import type { Log } from "../shared/log.ts";
import { outboxBound, type AgentConfig } from "./device-config.ts";
import type { Outbox } from "./outbox.ts";

/** The settings in force: device.conf's, with the server's config over them. */
export interface EffectiveSettings {
  /** Seconds between readings. */
  intervalS(): number;
  /** Added to every temperature, °C. */
  temperatureOffset(): number;
  /** Added to every humidity, %RH. */
  humidityOffset(): number;
}

/** What the remote config needs. */
export interface RemoteConfigDeps {
  config: Pick<AgentConfig, "interval_s" | "temperature_offset" | "humidity_offset" | "outbox_max_readings">;
  outbox: Pick<Outbox, "getSetting" | "setSetting" | "setMaxReadings">;
  log: Log;
  /** Where the interval in force is shown (the agent's stats). */
  stats: { intervalS: number };
  /** The config topic, named when a bad message is ignored. */
  topic: string;
  /** Called when a config changes the interval (to announce it and reschedule the next reading). */
  onIntervalChange(): void;
}

/** Creates the remote config; `restore()` at start, then `apply()` each config message. */
export function createRemoteConfig(deps: RemoteConfigDeps) {
  const { config, outbox, log, stats } = deps;
  const mqttLog = log.child("mqtt");
  let remote: DeviceConfig = {};

  const settings: EffectiveSettings = {
    intervalS: () => remote.interval_s ?? config.interval_s,
    // Offsets from the server add to device.conf's, so a calibration made in
    // device.conf is never silently lost when the server sends its (zero) offsets.
    temperatureOffset: () => config.temperature_offset + (remote.temperature_offset ?? 0),
    humidityOffset: () => config.humidity_offset + (remote.humidity_offset ?? 0),
  };

  /** With no bound in device.conf, the outbox holds 30 days at the interval in force. */
  function boundOutbox(): void {
    if (config.outbox_max_readings === null)
      outbox.setMaxReadings(outboxBound({ outbox_max_readings: null, interval_s: settings.intervalS() }));
  }

  function set(next: DeviceConfig, raw: string | null): void {
    const before = { interval: settings.intervalS(), t: settings.temperatureOffset(), h: settings.humidityOffset() };
    remote = next;
    try {
      outbox.setSetting("config", raw);
    } catch (err) {
      log.warn("cannot remember the config", { error: err as Error });
    }
    const after = { interval: settings.intervalS(), t: settings.temperatureOffset(), h: settings.humidityOffset() };
    if (before.interval === after.interval && before.t === after.t && before.h === after.h) return;
    log.info("config applied", { interval_s: after.interval, temperature_offset: after.t, humidity_offset: after.h });
    stats.intervalS = after.interval;
    boundOutbox();
    if (before.interval !== after.interval) deps.onIntervalChange();
  }

  return {
    ...settings,
    /** Takes the config remembered from the last run, if any, and bounds the outbox for the interval in force. */
    restore(): void {
      const saved = outbox.getSetting("config");
      if (saved !== null) {
        const parsed = parseConfig(saved);
        if (parsed.ok) {
          remote = parsed.value;
          stats.intervalS = settings.intervalS();
          log.info("using the last config received from the server", { interval_s: settings.intervalS() });
        }
      }
      boundOutbox();
    },
    /** Applies a message of the config topic: a config, or empty (the retained config was cleared: back to device.conf). */
    apply(payload: Buffer): void {
      if (payload.length === 0) {
        set({}, null);
        return;
      }
      const parsed = parseConfig(payload);
      if (!parsed.ok) {
        mqttLog.warn("ignored a bad config message", { topic: deps.topic, reason: parsed.reason });
        return;
      }
      set(parsed.value, payload.toString());
    },
  };
}
