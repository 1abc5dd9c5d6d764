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
//   are as many as the devices and always kept.
//
// The bounds wrap the methods of the persistence Aedes made (its own object,
// so no second copy of it); the broker asks `retainedFits` in
// authorizePublish, where the publishing client is known for the log line.

import { classifyTopic } from "../auth/mqtt-acl.ts";

/** The limits (from the config). */
export interface BoundsOptions {
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  maxRetained: number;
  maxRetainedBytes: number;
}

/** The persistence methods wrapped here (aedes-persistence's, promise style). */
interface Persistence {
  storeRetained(packet: Packet): Promise<void>;
  outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: Packet): Promise<Packet | undefined>;
}

interface Packet {
  topic: string;
  payload: Buffer | Uint8Array | string;
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
) {
  /** Retained messages outside the contract: topic → size. */
  const retained = new Map<string, number>();
  let retainedBytes = 0;
  /** Each persistent session's queue: client id → messages and bytes. */
  const queues = new Map<string, { messages: number; bytes: number }>();
  const stats = { retainedMessages: 0, retainedBytes: 0, retainedRefused: 0, queuedMessages: 0, queuedBytes: 0, queueDropped: 0 };

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

  const storeRetained = persistence.storeRetained.bind(persistence);
  persistence.storeRetained = async (packet) => {
    const size = sizeOf(packet);
    const empty = size === Buffer.byteLength(packet.topic);
    if (!counted(packet.topic)) return storeRetained(packet);
    const previous = retained.get(packet.topic);
    if (!empty && retainedRefusal(packet.topic, size) !== null) {
      // Not kept; nor is the message it would have replaced (a stale value is worse than none).
      stats.retainedRefused++;
      if (previous === undefined) return;
      retained.delete(packet.topic);
      retainedBytes -= previous;
      return storeRetained({ ...packet, payload: Buffer.alloc(0) });
    }
    if (previous !== undefined) {
      retained.delete(packet.topic);
      retainedBytes -= previous;
    }
    if (!empty) {
      retained.set(packet.topic, size);
      retainedBytes += size;
    }
    return storeRetained(packet);
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
    /** Why a retained publish would not be kept (checked before it is published), or null. */
    retainedRefusal: (topic: string, payload: Uint8Array): string | null =>
      payload.length === 0 ? null : retainedRefusal(topic, Buffer.byteLength(topic) + payload.length),
    /** What is kept now, and what was refused (for /api/v1/stats). */
    get stats() {
      let messages = 0;
      let bytes = 0;
      for (const q of queues.values()) {
        messages += q.messages;
        bytes += q.bytes;
      }
      return { ...stats, retainedMessages: retained.size, retainedBytes, queuedMessages: messages, queuedBytes: bytes };
    },
  };
}
