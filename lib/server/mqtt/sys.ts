// The broker's statistics under `$SYS/broker/...`, with Mosquitto's names
// (its sys_tree.c), published retained every `intervalMs` (Mosquitto's
// sys_interval, 10 s), so monitoring written for the earlier system's
// Mosquitto (mqtt2prometheus, Home Assistant's broker sensors) reads them
// unchanged. The path does not change between starts (Aedes' own heartbeat
// topics use its id, which the broker sets to a fixed one). Readable with a
// write token only, like every $SYS topic (lib/server/auth/mqtt-acl.ts).

import pkg from "../../../package.json" with { type: "json" };

/** What the statistics count as the broker works (incremented by the broker). */
export interface SysCounters {
  /** Every MQTT packet received; PUBLISH packets sent (other packets sent are not counted). */
  messagesReceived: number;
  messagesSent: number;
  /** PUBLISH packets received from clients / sent to them, and dropped for a client (bounds, slow reader). */
  publishReceived: number;
  publishSent: number;
  publishDropped: number;
}

/** What the statistics read from the broker when they are published. */
export interface SysSources {
  connected(): number;
  /** Persistent sessions and the subscriptions they hold (Aedes' persistence). */
  offline(): Promise<{ clientsCount: number; subsCount: number }>;
  /** Subscriptions of the clients connected now. */
  subscriptions(): number;
  retained(): { messages: number; bytes: number };
  queued(): { messages: number; bytes: number };
  /** Bytes received and sent on every MQTT connection since the start. */
  bytes(): { received: number; sent: number };
  publish(topic: string, payload: string): Promise<void>;
}

/** Creates the counters and the publisher; `start()` publishes now and every `intervalMs`, `stop()` ends it. */
export function createSysStats(sources: SysSources, options: { intervalMs: number; now?: () => number }) {
  const now = options.now ?? Date.now;
  const started = now();
  const counters: SysCounters = {
    messagesReceived: 0,
    messagesSent: 0,
    publishReceived: 0,
    publishSent: 0,
    publishDropped: 0,
  };
  let maximum = 0;
  let timer: ReturnType<typeof setInterval> | null = null;

  /** The topics and values of one round, Mosquitto's names (a count is a whole number as text). */
  async function snapshot(): Promise<[string, string][]> {
    const connected = sources.connected();
    maximum = Math.max(maximum, connected);
    const offline = await sources.offline();
    // A persistent session counts once, connected or not (Aedes keeps the subscriptions of both).
    const disconnected = Math.max(0, offline.clientsCount - connected);
    const retained = sources.retained();
    const queued = sources.queued();
    const c = counters;
    const bytes = sources.bytes();
    return [
      ["version", `techtemp ${pkg.version} (aedes)`],
      ["uptime", `${Math.floor((now() - started) / 1000)} seconds`],
      ["clients/connected", String(connected)],
      ["clients/disconnected", String(disconnected)],
      ["clients/total", String(connected + disconnected)],
      ["clients/maximum", String(maximum)],
      ["messages/received", String(c.messagesReceived)],
      ["messages/sent", String(c.messagesSent)],
      ["messages/stored", String(retained.messages + queued.messages)],
      ["publish/messages/received", String(c.publishReceived)],
      ["publish/messages/sent", String(c.publishSent)],
      ["publish/messages/dropped", String(c.publishDropped)],
      ["bytes/received", String(bytes.received)],
      ["bytes/sent", String(bytes.sent)],
      ["retained messages/count", String(retained.messages)],
      ["subscriptions/count", String(sources.subscriptions() + offline.subsCount)],
      ["store/messages/count", String(retained.messages + queued.messages)],
      ["store/messages/bytes", String(retained.bytes + queued.bytes)],
      ["heap/current", String(process.memoryUsage().heapUsed)],
    ];
  }

  async function publishAll(): Promise<void> {
    for (const [name, value] of await snapshot()) await sources.publish(`$SYS/broker/${name}`, value);
  }

  return {
    counters,
    /** Publishes the statistics now and then every interval (errors are the broker closing: ignored). */
    start(): void {
      void publishAll().catch(() => {});
      timer = setInterval(() => void publishAll().catch(() => {}), options.intervalMs);
      timer.unref?.();
    },
    stop(): void {
      if (timer) clearInterval(timer);
      timer = null;
    },
    /** The statistics now, by name (for tests and inspect). */
    snapshot,
  };
}
