// Home Assistant MQTT discovery: for every device placed in a room, two
// retained configs, `<prefix>/sensor/<uid>_temperature/config` and
// `…_humidity/config`, that make Home Assistant create the entities by
// itself: state from the device's reading topic (value_template), units,
// device_class, state_class `measurement`, the device (model, version,
// suggested_area = its room) and, once the device has announced a status,
// availability from its retained status topic ({"state":"online"|"offline"}
// through availability_template). Keys as Home Assistant's MQTT sensor schema
// documents them (test/ha-discovery.test.ts checks each against that list).
//
// Follows the store's `device` events (placed, renamed, moved, its room
// renamed: published again; taken out of its room or deleted: an empty
// retained payload removes the entity) and `status` events (a first status
// adds availability, a new version updates the device). Published for every
// placed device at start: the broker keeps retained messages in memory only.

import { DEFAULT_HOME_ID, topicFor } from "../../shared/contract.ts";
import type { Log } from "../../shared/log.ts";
import type { Device, Store } from "../store/store.ts";
import type { Broker } from "./broker.ts";

/** The two values each device has in Home Assistant. */
export const HA_VALUES = {
  temperature: { field: "temperature_c", unit: "°C", name: "Temperature" },
  humidity: { field: "humidity_pct", unit: "%", name: "Humidity" },
} as const;

/** One value of a device. */
export type HaValue = keyof typeof HA_VALUES;

/** The discovery topic of a device's value. */
export const discoveryTopic = (prefix: string, uid: string, value: HaValue) => `${prefix}/sensor/${uid}_${value}/config`;

/** The discovery config of a device's value, as Home Assistant's MQTT sensor reads it. */
export function discoveryConfig(device: Device, value: HaValue, version: string): Record<string, unknown> {
  const home = device.home_id ?? DEFAULT_HOME_ID;
  const v = HA_VALUES[value];
  const config: Record<string, unknown> = {
    name: v.name,
    unique_id: `techtemp_${device.uid}_${value}`,
    state_topic: topicFor(home, device.uid, "reading"),
    value_template: `{{ value_json.${v.field} }}`,
    unit_of_measurement: v.unit,
    device_class: value,
    state_class: "measurement",
    suggested_display_precision: value === "temperature" ? 1 : 0,
  };
  // The earlier C agent may never publish a status: without one, availability would keep its entities unavailable.
  if (device.state !== null) {
    Object.assign(config, {
      availability_topic: topicFor(home, device.uid, "status"),
      availability_template: "{{ value_json.state }}",
      payload_available: "online",
      payload_not_available: "offline",
    });
  }
  const info: Record<string, unknown> = {
    identifiers: [`techtemp_${device.uid}`],
    name: device.label ?? (device.room_name ? `${device.room_name} sensor` : device.uid),
    manufacturer: "TechTemp",
    model: device.model ?? "AHT20",
  };
  if (device.version) info.sw_version = device.version;
  if (device.room_name) info.suggested_area = device.room_name;
  config.device = info;
  config.origin = { name: "TechTemp", sw_version: version };
  return config;
}

/** Creates the discovery publisher and follows the store's changes. */
export function createHaDiscovery(deps: {
  store: Pick<Store, "on" | "listDevices" | "findDevice">;
  broker: Pick<Broker, "publish">;
  prefix: string;
  version: string;
  log: Log;
}) {
  const { store, broker, prefix, version, log } = deps;
  /** What was published last per topic, so an unchanged config is not sent again. */
  const published = new Map<string, string>();

  async function send(topic: string, payload: string): Promise<void> {
    if (published.get(topic) === payload) return;
    // Remembered first: a second change while this one is in flight compares against it.
    if (payload === "") published.delete(topic);
    else published.set(topic, payload);
    try {
      await broker.publish(topic, payload, { retain: true });
    } catch (err) {
      published.delete(topic);
      log.error("cannot publish Home Assistant discovery", { topic, error: err as Error });
    }
  }

  /** Publishes (placed) or removes (unplaced, deleted: empty retained payload) a device's configs. */
  async function sync(uid: string, device: Device | null): Promise<void> {
    for (const value of Object.keys(HA_VALUES) as HaValue[]) {
      const topic = discoveryTopic(prefix, uid, value);
      if (device === null || device.room_uid === null) {
        // An empty retained message tells Home Assistant to remove the entity (and clears the retained config).
        if (published.has(topic) || device === null) await send(topic, "");
      } else await send(topic, JSON.stringify(discoveryConfig(device, value, version)));
    }
  }

  const unsubscribe = [
    store.on("device", ({ deviceUid, device, kind }) => sync(deviceUid, kind === "deleted" ? null : device)),
    store.on("status", ({ deviceUid }) => {
      // Only devices already discovered: a status adds availability or a new version.
      if (!published.has(discoveryTopic(prefix, deviceUid, "temperature"))) return;
      return sync(deviceUid, store.findDevice(deviceUid));
    }),
  ];

  return {
    /** Publishes the configs of every placed device (at start). */
    async publishAll(): Promise<void> {
      for (const device of store.listDevices()) if (device.room_uid !== null) await sync(device.uid, device);
    },
    /** Stops following the store. */
    close(): void {
      for (const u of unsubscribe) u();
    },
  };
}

/** The discovery publisher's interface. */
export type HaDiscovery = ReturnType<typeof createHaDiscovery>;
