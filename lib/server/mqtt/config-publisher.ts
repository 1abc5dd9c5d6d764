// Config publishing: the retained `config` message that carries a device's
// settings (interval, calibration offsets) to its sensor, which applies them
// without a restart. Published whenever a person changes those settings,
// through the API or the pages alike (the store's `device` event), and for
// every device at start: retained messages live in the broker's memory, so a
// restart forgets them and a reconnecting sensor would find nothing.

import { formatConfig, topicFor, type DeviceConfig } from "../../shared/contract.ts";
import type { Log } from "../../shared/log.ts";
import type { Broker } from "./broker.ts";
import type { Device, Store } from "../store/store.ts";

/** The config message of a device, from its stored settings. */
function configOf(device: Device): DeviceConfig {
  const config: DeviceConfig = {};
  // Without a configured interval the message repeats the one the device announced: it asks for no change.
  const interval = device.config_interval_s ?? device.interval_s;
  if (interval !== null) config.interval_s = interval;
  config.temperature_offset = device.temperature_offset;
  config.humidity_offset = device.humidity_offset;
  return config;
}

/** Whether a person gave the device settings of its own (else it needs no config message). */
const hasSettings = (d: Device) => d.config_interval_s !== null || d.temperature_offset !== 0 || d.humidity_offset !== 0;

/**
 * Creates the config publisher and subscribes it to the store's device
 * changes. `homeId` is the home for a device that never said which one it is
 * in (registered by a person before it published).
 */
export function createConfigPublisher(deps: {
  store: Pick<Store, "on" | "listDevices">;
  broker: Pick<Broker, "publish">;
  homeId: string;
  log: Log;
}) {
  const { store, broker, log } = deps;

  /** Publishes a device's retained config message. */
  function publish(device: Device): Promise<void> {
    const topic = topicFor(device.home_id ?? deps.homeId, device.uid, "config");
    return broker.publish(topic, formatConfig(configOf(device)), { retain: true });
  }

  const unsubscribe = store.on("device", async ({ device, configChanged }) => {
    if (!configChanged || device === null) return;
    try {
      await publish(device);
    } catch (err) {
      log.error("cannot publish config", { device: device.uid, error: err as Error });
    }
  });

  return {
    /** Publishes the config of every device that has settings (at start). */
    async publishAll(): Promise<void> {
      for (const device of store.listDevices()) if (hasSettings(device)) await publish(device);
    },
    /** Stops following the store's device changes. */
    close: unsubscribe,
  };
}

/** The config publisher's interface. */
export type ConfigPublisher = ReturnType<typeof createConfigPublisher>;
