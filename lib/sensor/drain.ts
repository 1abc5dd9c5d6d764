// The outbox drain: publishes the readings in the outbox oldest first, QoS 1,
// at most PUBLISH_WINDOW unacknowledged at once and no faster than
// `[outbox] drain_rate`, and deletes each one only on its PUBACK (the server
// acknowledges a reading once it is stored: SPEC "Ack means stored"). On a new
// connection it starts again from the oldest: what was in flight when the
// last one dropped goes again (the server stores a resent reading once).

import { formatReading } from "../shared/contract.ts";
import type { Log } from "../shared/log.ts";
import type { AgentConfig } from "./device-config.ts";
import { ClockState, type Outbox, type OutboxRow } from "./outbox.ts";

/** Most QoS 1 readings published and not yet acknowledged: enough to keep the link busy, few enough not to flood it. */
export const PUBLISH_WINDOW = 256;

/** The drain's counters (part of the agent's stats). */
export interface DrainStats {
  /** Readings published (resends included). */
  published: number;
  /** Readings acknowledged, hence deleted from the outbox. */
  acked: number;
}

/** What the drain needs of a connection: MQTT.js's `publish`. */
export interface ReadingPublisher {
  publish(topic: string, payload: string, options: { qos: 1 }, callback?: (err?: Error) => void): unknown;
}

/** What the drain needs. */
export interface DrainDeps {
  config: Pick<AgentConfig, "outbox_drain_rate">;
  outbox: Pick<Outbox, "next" | "ack" | "flushAcks">;
  log: Log;
  stats: DrainStats;
  /** The reading topic. */
  topic: string;
  /** Monotonic milliseconds, for the drain rate (default performance.now). */
  now?: () => number;
}

/** A reading to publish: what the outbox keeps of it. */
type Sendable = Pick<OutboxRow, "ts" | "t" | "h" | "state">;

/** A reading's payload; an unsynced clock is said (`clock_synced: false`), a synced one is the default. */
const payloadOf = (r: Sendable) =>
  formatReading({
    temperature_c: r.t,
    humidity_pct: r.h,
    ts: r.ts,
    ...(r.state === ClockState.Unsynced ? { clock_synced: false } : {}),
  });

/** Creates the drain; the link calls `connected()` and `disconnected()`, the sampler `pump()`. */
export function createDrain(deps: DrainDeps) {
  const { config, outbox, log, stats, topic } = deps;
  const now = deps.now ?? (() => performance.now());
  let publisher: ReadingPublisher | null = null;
  /** Counts connections: a PUBACK callback from an earlier one is ignored. */
  let session = 0;
  /** Highest outbox id published on this connection; everything after it is still to send. */
  let cursor = 0;
  const inflight = new Set<number>();
  // Token bucket for the drain rate: a tenth of a second's worth may go at once.
  const burst = Math.max(1, Math.ceil(config.outbox_drain_rate / 10));
  let tokens = burst;
  let tokensAt = now();
  let pumpTimer: ReturnType<typeof setTimeout> | null = null;

  /** Publishes from the outbox while the window and the drain rate allow. */
  function pump(): void {
    if (!publisher || pumpTimer) return;
    const t = now();
    tokens = Math.min(burst, tokens + ((t - tokensAt) * config.outbox_drain_rate) / 1000);
    tokensAt = t;
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
        send(publisher, row);
      }
    }
  }

  function send(to: ReadingPublisher, row: OutboxRow): void {
    const s = session;
    inflight.add(row.id);
    stats.published++;
    to.publish(topic, payloadOf(row), { qos: 1 }, (err) => {
      // An error here means the connection closed; the reading stays in the outbox and goes again.
      if (s !== session) return;
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
    pump,
    /** A connection is up: publish from the oldest reading in the outbox. */
    connected(to: ReadingPublisher): void {
      publisher = to;
      cursor = 0;
      inflight.clear();
      pump();
    },
    /** The connection dropped: forget what was in flight (it goes again) and delete what was acknowledged. */
    disconnected(): void {
      publisher = null;
      session++;
      inflight.clear();
      if (pumpTimer) clearTimeout(pumpTimer);
      pumpTimer = null;
      try {
        outbox.flushAcks();
      } catch (err) {
        log.error("cannot delete acknowledged readings", { error: err as Error });
      }
    },
    /**
     * The agent is stopping: a pending rate-limit wait is cancelled, and the
     * drain does not resume from it. Without one pending, a PUBACK still on
     * its way deletes its reading and may publish the next ones until `detach()`.
     */
    pause(): void {
      if (pumpTimer) clearTimeout(pumpTimer);
    },
    /** The agent has stopped: nothing more is sent, late callbacks are ignored. */
    detach(): void {
      publisher = null;
      session++;
    },
  };
}
