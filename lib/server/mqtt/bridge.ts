// The bridge: TechTemp as a client of another broker (usually Home
// Assistant's Mosquitto), forwarding what Home Assistant needs there:
//
// - every reading once it is stored (the store's `readings` event: valid and
//   not a duplicate), on its contract topic, QoS 1, not retained;
// - the retained state of the embedded broker that others read: devices'
//   status messages and the Home Assistant discovery configs (an empty one
//   removes an entity there too). It is kept as it changes (an internal
//   subscription) and published again, retained, at every (re)connection:
//   a broker restarted without persistence has forgotten it. A removal (empty
//   payload) made while that broker is away is kept until it is acknowledged
//   there, so a broker that persisted the old config drops it too.
//
// While the other broker is away, readings wait in a bounded buffer
// (`bridge_buffer`, 10 000 by default): beyond it the oldest are dropped,
// counted, and logged once per outage. After a reconnection the retained
// state goes first, then the buffer drains oldest first, at most IN_FLIGHT
// messages awaiting their PUBACK at a time. Nothing is ever subscribed on the
// other broker, so nothing can loop back.

import mqtt, { type MqttClient } from "mqtt";
import { hostname } from "node:os";
import { DEFAULT_HOME_ID, formatReading, topicFor } from "../../shared/contract.ts";
import type { Log } from "../../shared/log.ts";
import type { Store } from "../store/store.ts";
import type { Broker } from "./broker.ts";

/** Messages published on the other broker and not yet acknowledged, at most. */
const IN_FLIGHT = 100;

/** A message for the other broker. */
interface Message {
  topic: string;
  payload: string;
  retain: boolean;
}

/** Where to connect and how much to keep meanwhile. */
export interface BridgeSettings {
  url: string;
  username: string;
  password: string;
  clientId: string;
  /** Readings kept while the other broker is away. */
  buffer: number;
  /** The discovery prefix whose retained configs are mirrored. */
  prefix: string;
  /** Wait between connection attempts (ms). */
  reconnectMs?: number;
}

/** Creates the bridge and connects; `close()` disconnects. */
export function createBridge(deps: {
  settings: BridgeSettings;
  store: Pick<Store, "on" | "findDevice">;
  broker: Pick<Broker, "aedes">;
  log: Log;
}) {
  const { settings, store, broker, log } = deps;
  const retained = new Map<string, string>();
  const queue: Message[] = [];
  const figures = { forwarded: 0, dropped: 0 };
  let inFlight = 0;
  let connected = false;
  let droppedLogged = false;
  let lastError: string | null = null;
  const homes = new Map<string, string>();

  const client: MqttClient = mqtt.connect(settings.url, {
    clientId: settings.clientId || `techtemp-bridge-${hostname()}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64),
    username: settings.username || undefined,
    password: settings.password || undefined,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: settings.reconnectMs ?? 5000,
    connectTimeout: 10_000,
    queueQoSZero: false,
  });

  /** Sends what may go now: retained state first (on connect), then the buffer. */
  function pump(): void {
    while (connected && inFlight < IN_FLIGHT && queue.length > 0) {
      const m = queue.shift()!;
      inFlight++;
      client.publish(m.topic, m.payload, { qos: 1, retain: m.retain }, (err) => {
        inFlight--;
        if (err) {
          // Not acknowledged (the connection went): it goes again, first.
          queue.unshift(m);
        } else {
          figures.forwarded++;
          // A removal the other broker has acknowledged need not be sent again.
          if (m.retain && m.payload === "" && retained.get(m.topic) === "") retained.delete(m.topic);
        }
        pump();
      });
    }
  }

  function enqueue(m: Message): void {
    if (queue.length >= settings.buffer) {
      // The oldest reading goes; retained state is sent again on connect anyway.
      const i = queue.findIndex((q) => !q.retain);
      queue.splice(i === -1 ? 0 : i, 1);
      figures.dropped++;
      if (!droppedLogged) {
        droppedLogged = true;
        log.warn("bridge buffer full: dropping the oldest readings until the other broker is back", {
          limit: settings.buffer,
          setting: "bridge_buffer",
        });
      }
    }
    queue.push(m);
    pump();
  }

  client.on("connect", () => {
    connected = true;
    droppedLogged = false;
    log.info("bridge connected", { url: settings.url, buffered: queue.length, retained: retained.size });
    lastError = null;
    // The retained state goes before the readings that waited.
    const state = [...retained].map(([topic, payload]) => ({ topic, payload, retain: true }));
    queue.unshift(...state);
    pump();
  });
  client.on("close", () => {
    if (connected) log.warn("bridge disconnected; buffering readings", { url: settings.url });
    connected = false;
  });
  client.on("error", (err) => {
    // One line per cause while it lasts (reconnection is retried every reconnectMs).
    if (err.message !== lastError) log.warn("bridge cannot reach the other broker", { url: settings.url, error: err.message });
    lastError = err.message;
  });

  /** The home of a device (its topics'), cached: a device's home does not change. */
  function homeOf(uid: string): string {
    let home = homes.get(uid);
    if (home === undefined) {
      home = store.findDevice(uid)?.home_id ?? DEFAULT_HOME_ID;
      if (homes.size > 10_000) homes.clear();
      homes.set(uid, home);
    }
    return home;
  }

  const unsubscribe = store.on("readings", (batch) => {
    for (const { deviceUid, reading } of batch) {
      enqueue({ topic: topicFor(homeOf(deviceUid), deviceUid, "reading"), payload: formatReading(reading), retain: false });
    }
  });
  const unsubscribeDevice = store.on("device", ({ deviceUid }) => homes.delete(deviceUid));

  // The retained state, as the embedded broker sees it change.
  const patterns = ["home/+/sensors/+/status", `${settings.prefix}/#`];
  const onRetained = (packet: { topic: string; payload: Buffer | string; retain?: boolean }, cb: () => void) => {
    if (packet.retain) {
      const payload = String(packet.payload);
      // An empty payload (an entity removed) is kept until the other broker acknowledges it: a removal made while
      // that broker is away must reach it at the reconnection, or a broker that persisted the old config keeps it.
      retained.set(packet.topic, payload);
      // Retained on the other broker too; an empty payload clears it there.
      if (connected) enqueue({ topic: packet.topic, payload, retain: true });
    }
    cb();
  };
  for (const p of patterns) broker.aedes.subscribe(p, onRetained as never, () => {});

  return {
    /** For /metrics and the tests. */
    figures(): { connected: boolean; buffered: number; forwarded: number; dropped: number } {
      return { connected, buffered: queue.length + inFlight, forwarded: figures.forwarded, dropped: figures.dropped };
    },
    /** Disconnects (what is buffered is not kept across a restart: the database has it). */
    async close(): Promise<void> {
      unsubscribe();
      unsubscribeDevice();
      for (const p of patterns) broker.aedes.unsubscribe(p, onRetained as never, () => {});
      await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    },
  };
}

/** The bridge's interface. */
export type Bridge = ReturnType<typeof createBridge>;
