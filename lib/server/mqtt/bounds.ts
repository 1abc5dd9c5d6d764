// Memory bounds on what the broker keeps for clients (issue 16): retained
// messages and the queues of persistent sessions. Aedes keeps both in its
// memory persistence without any limit (10,000 × 1 KB + 3,000 × 60 KB
// retained took the server from 66 to 261 MB; an offline persistent session
// subscribed to home/# kept every message). Like Mosquitto:
//
// - a persistent session queues at most `maxQueuedMessages` messages and
//   `maxQueuedBytes` bytes (Mosquitto's max_queued_messages 1000 and
//   max_queued_bytes); later ones are dropped for that client, logged once a
//   minute with its client id;
// - retained messages outside the contract's device topics are at most
//   `maxRetained` messages and `maxRetainedBytes` bytes. A retained publish
//   that does not fit is still delivered to the subscribers of the moment but
//   not kept, and a message it would have replaced is removed (never a stale
//   value). The contract's retained topics (each device's status and config)
//   are as many as the devices and always kept;
// - persistent sessions with subscriptions are at most `maxSessions`: a new
//   one's SUBSCRIBE is refused beyond (0x80 in its SUBACK; Aedes would keep
//   every client id's session, and the database its subscriptions, forever);
// - a client holds at most `maxSubscriptions` topic filters, of at most
//   MAX_SUBSCRIPTION_BYTES together: a new filter beyond is refused (0x80;
//   Aedes keeps every filter a client subscribes to, and a persistent
//   session's in the database). Only what was granted is kept for a
//   persistent session: Aedes stores the whole SUBSCRIBE's list with each
//   filter granted, the refused ones too.
//
// The bounds wrap the methods of the persistence Aedes made (its own object,
// so no second copy of it); the broker asks `retainedFits` in
// authorizePublish, where the publishing client is known for the log line.

import { Transform, type Readable } from "node:stream";
import { classifyTopic } from "../auth/mqtt-acl.ts";
import type { MqttState } from "../store/store.ts";

/** The limits (from the config). */
export interface BoundsOptions {
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  maxRetained: number;
  maxRetainedBytes: number;
  /** Most persistent sessions with subscriptions (mqtt_max_sessions); none when absent. */
  maxSessions?: number;
  /** Most topic filters one client holds (mqtt_max_subscriptions); none when absent. */
  maxSubscriptions?: number;
}

/** Most bytes of topic filters one client holds together (64 KiB: 1,000 filters of 65 bytes). */
export const MAX_SUBSCRIPTION_BYTES = 65_536;

/** The persistence methods wrapped here (aedes-persistence's, promise style). */
interface Persistence {
  storeRetained(packet: Packet): Promise<void>;
  addSubscriptions(client: { id: string }, subs: { topic: string; qos: number }[]): Promise<void>;
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<void>;
  cleanSubscriptions(client: { id: string }): Promise<unknown>;
  createRetainedStreamCombi(patterns: string[]): Readable;
  outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: Packet): Promise<Packet | undefined>;
}

interface Packet {
  topic: string;
  payload: Buffer | Uint8Array | string;
  qos?: number;
}

const sizeOf = (p: Packet) =>
  Buffer.byteLength(p.topic) + (typeof p.payload === "string" ? Buffer.byteLength(p.payload) : p.payload.length);

/**
 * Wraps `persistence` (Aedes' own, `broker.persistence`) with the bounds.
 * `onDrop(clientId, reason)` is called for each message a session's queue
 * refused (the caller throttles its log line).
 */
export function boundPersistence(
  persistence: Persistence,
  options: BoundsOptions,
  onDrop: (clientId: string, reason: string) => void,
  /** Where retained messages and persistent sessions' subscriptions are kept across restarts, and who hears of a failed write. */
  keep?: { state: MqttState; onError(err: Error): void },
) {
  /** Retained messages outside the contract: topic → size. */
  const retained = new Map<string, number>();
  let retainedBytes = 0;
  /** Each persistent session's queue: client id → messages and bytes. */
  const queues = new Map<string, { messages: number; bytes: number }>();
  /** Each persistent session's subscriptions: client id → topic filters (what the database keeps of it). */
  const sessions = new Map<string, Set<string>>();
  /** Each connected client's granted topic filters and their bytes (a client object: one connection). */
  const held = new WeakMap<object, { topics: Set<string>; bytes: number }>();
  const stats = {
    retainedMessages: 0,
    retainedBytes: 0,
    retainedRefused: 0,
    queuedMessages: 0,
    queuedBytes: 0,
    queueDropped: 0,
    sessions: 0,
    sessionsRefused: 0,
    subscriptionsRefused: 0,
  };

  // The contract's device topics are as many as the devices; $SYS is the broker's own (a fixed set).
  const counted = (topic: string) => !topic.startsWith("$SYS/") && classifyTopic(topic).kind !== "device";

  /** Why a retained message of `size` bytes on `topic` would not fit, or null when it does. */
  function retainedRefusal(topic: string, size: number): string | null {
    if (!counted(topic)) return null;
    const previous = retained.get(topic);
    if (previous === undefined && retained.size >= options.maxRetained) {
      return `already ${retained.size} retained messages, the limit (mqtt_max_retained)`;
    }
    if (retainedBytes - (previous ?? 0) + size > options.maxRetainedBytes) {
      return `retained messages would take more than ${options.maxRetainedBytes} bytes (mqtt_max_retained_bytes)`;
    }
    return null;
  }

  /** Writes through to the database (never $SYS: the broker's own, made again at start). */
  let restoring = false;
  const write = (what: (state: MqttState) => void) => {
    if (!keep || restoring) return;
    try {
      what(keep.state);
    } catch (err) {
      keep.onError(err as Error);
    }
  };

  const storeRetained = persistence.storeRetained.bind(persistence);
  persistence.storeRetained = async (packet) => {
    const kept = await storeBounded(packet);
    if (packet.topic.startsWith("$SYS/")) return;
    const bytes = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    write((state) => state.setRetained(packet.topic, kept ? bytes : new Uint8Array(0), packet.qos ?? 0));
  };

  /** Stores within the bounds; whether the message is kept now (false: refused, or an empty one that clears). */
  async function storeBounded(packet: Packet): Promise<boolean> {
    const size = sizeOf(packet);
    const empty = size === Buffer.byteLength(packet.topic);
    if (!counted(packet.topic)) {
      await storeRetained(packet);
      return !empty;
    }
    const previous = retained.get(packet.topic);
    if (!empty && retainedRefusal(packet.topic, size) !== null) {
      // Not kept; nor is the message it would have replaced (a stale value is worse than none).
      stats.retainedRefused++;
      if (previous === undefined) return false;
      retained.delete(packet.topic);
      retainedBytes -= previous;
      await storeRetained({ ...packet, payload: Buffer.alloc(0) });
      return false;
    }
    if (previous !== undefined) {
      retained.delete(packet.topic);
      retainedBytes -= previous;
    }
    if (!empty) {
      retained.set(packet.topic, size);
      retainedBytes += size;
    }
    await storeRetained(packet);
    return !empty;
  }

  // The retained $SYS statistics go only to subscriptions that name $SYS: a filter starting with a
  // wildcard (`#`, `+/…`) never matches a topic starting with `$` (MQTT-4.7.2-1). Aedes applies that
  // to live messages, not to the retained ones it sends at SUBSCRIBE.
  const retainedStream = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => {
    const dollar = new Set(patterns.filter((p) => p.startsWith("$")).map((p) => p.split("/")[0]));
    return retainedStream(patterns).pipe(
      new Transform({
        objectMode: true,
        transform(packet: Packet, _encoding, callback) {
          const keep = !packet.topic.startsWith("$") || dollar.has(packet.topic.split("/")[0]);
          callback(null, keep ? packet : undefined);
        },
      }),
    );
  };

  // Persistent sessions' subscriptions (Aedes stores only those of clean-session-off clients).
  const addSubscriptions = persistence.addSubscriptions.bind(persistence);
  persistence.addSubscriptions = async (client, given) => {
    // Aedes passes the SUBSCRIBE's whole list for each filter granted: keep the granted ones.
    const granted = held.get(client)?.topics;
    const subs = granted ? given.filter((sub) => granted.has(sub.topic)) : given;
    if (subs.length === 0) return;
    await addSubscriptions(client, subs);
    const topics = sessions.get(client.id) ?? new Set<string>();
    for (const sub of subs) topics.add(sub.topic);
    if (topics.size > 0) sessions.set(client.id, topics);
    write((state) =>
      state.addSubscriptions(
        client.id,
        subs.map((sub) => ({ topic: sub.topic, qos: sub.qos })),
      ),
    );
  };
  const removeSubscriptions = persistence.removeSubscriptions.bind(persistence);
  persistence.removeSubscriptions = async (client, topics) => {
    await removeSubscriptions(client, topics);
    const kept = sessions.get(client.id);
    for (const topic of topics) kept?.delete(topic);
    if (kept?.size === 0) sessions.delete(client.id);
    write((state) => state.removeSubscriptions(client.id, topics));
  };
  const cleanSubscriptions = persistence.cleanSubscriptions.bind(persistence);
  persistence.cleanSubscriptions = async (client) => {
    const result = await cleanSubscriptions(client);
    sessions.delete(client.id);
    write((state) => state.cleanSession(client.id));
    return result;
  };

  /** The sessions among `subs` whose queue takes `packet`, counted in. */
  function admit(subs: { clientId: string }[], packet: Packet): { clientId: string }[] {
    const size = sizeOf(packet);
    return subs.filter((sub) => {
      const q = queues.get(sub.clientId) ?? { messages: 0, bytes: 0 };
      let reason: string | null = null;
      if (q.messages >= options.maxQueuedMessages) {
        reason = `its queue holds ${q.messages} messages, the limit (mqtt_max_queued_messages)`;
      } else if (q.bytes + size > options.maxQueuedBytes) {
        reason = `its queue would take more than ${options.maxQueuedBytes} bytes (mqtt_max_queued_bytes)`;
      }
      if (reason !== null) {
        stats.queueDropped++;
        onDrop(sub.clientId, reason);
        return false;
      }
      q.messages++;
      q.bytes += size;
      queues.set(sub.clientId, q);
      return true;
    });
  }

  const enqueue = persistence.outgoingEnqueue.bind(persistence);
  persistence.outgoingEnqueue = async (sub, packet) => {
    if (admit([sub], packet).length === 1) return enqueue(sub, packet);
  };
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const admitted = admit(subs, packet);
    if (admitted.length > 0) return enqueueCombi(admitted, packet);
  };
  const clear = persistence.outgoingClearMessageId.bind(persistence);
  persistence.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet);
    const q = removed ? queues.get(client.id) : undefined;
    if (removed && q) {
      q.messages--;
      q.bytes -= sizeOf(removed);
      if (q.messages <= 0) queues.delete(client.id);
    }
    return removed;
  };

  return {
    /**
     * Loads what the database kept (retained messages, persistent sessions'
     * subscriptions) into the broker, within the bounds: once, at start.
     */
    async restore(): Promise<{ retained: number; sessions: number }> {
      if (!keep) return { retained: 0, sessions: 0 };
      restoring = true;
      try {
        let n = 0;
        for (const r of keep.state.retained()) {
          const packet = { cmd: "publish", topic: r.topic, payload: Buffer.from(r.payload), qos: r.qos, retain: true };
          if (await storeBounded(packet)) n++;
        }
        const sessions = new Map<string, { topic: string; qos: number }[]>();
        for (const sub of keep.state.subscriptions()) {
          const list = sessions.get(sub.client_id) ?? [];
          list.push({ topic: sub.topic, qos: sub.qos });
          sessions.set(sub.client_id, list);
        }
        for (const [id, subs] of sessions) await addSubscriptions({ id }, subs);
        return { retained: n, sessions: sessions.size };
      } finally {
        restoring = false;
      }
    },
    /** Why a retained publish would not be kept (checked before it is published), or null. */
    retainedRefusal: (topic: string, payload: Uint8Array): string | null =>
      payload.length === 0 ? null : retainedRefusal(topic, Buffer.byteLength(topic) + payload.length),
    /**
     * Why a subscription of the persistent session `clientId` would not be
     * kept: it would be a new session beyond maxSessions. Null when it may
     * (a session already kept may always subscribe more). Counted when refused.
     */
    sessionRefusal(clientId: string): string | null {
      if (sessions.has(clientId) || sessions.size < (options.maxSessions ?? Infinity)) return null;
      stats.sessionsRefused++;
      return `already ${sessions.size} persistent sessions are kept, the limit (mqtt_max_sessions); connect with a clean session, or end one that is no longer used`;
    },
    /**
     * Why `client` may not hold the topic filter `topic` (one more than
     * maxSubscriptions, or more than MAX_SUBSCRIPTION_BYTES together), or
     * null: then it is counted as held. A filter held already is always
     * granted again. Counted when refused.
     */
    subscriptionRefusal(client: object, topic: string): string | null {
      let mine = held.get(client);
      if (!mine) held.set(client, (mine = { topics: new Set(), bytes: 0 }));
      if (mine.topics.has(topic)) return null;
      const bytes = Buffer.byteLength(topic);
      let refusal: string | null = null;
      if (mine.topics.size >= (options.maxSubscriptions ?? Infinity))
        refusal = `this client holds ${mine.topics.size} topic filters already, the limit (mqtt_max_subscriptions); unsubscribe from some, or use a wildcard (+, #)`;
      else if (mine.bytes + bytes > MAX_SUBSCRIPTION_BYTES)
        refusal = `this client's topic filters would take more than ${MAX_SUBSCRIPTION_BYTES} bytes together; unsubscribe from some, or use a wildcard (+, #)`;
      if (refusal !== null) {
        stats.subscriptionsRefused++;
        return refusal;
      }
      mine.topics.add(topic);
      mine.bytes += bytes;
      return null;
    },
    /** `client` unsubscribed from `topics`: they are no longer held. */
    unsubscribed(client: object, topics: string[]): void {
      const mine = held.get(client);
      if (!mine) return;
      for (const topic of topics) if (mine.topics.delete(topic)) mine.bytes -= Buffer.byteLength(topic);
    },
    /** What is kept now, and what was refused (for /api/v1/stats). */
    get stats() {
      let messages = 0;
      let bytes = 0;
      for (const q of queues.values()) {
        messages += q.messages;
        bytes += q.bytes;
      }
      return {
        ...stats,
        retainedMessages: retained.size,
        retainedBytes,
        queuedMessages: messages,
        queuedBytes: bytes,
        sessions: sessions.size,
      };
    },
  };
}
