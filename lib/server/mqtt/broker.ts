// The embedded MQTT broker (Aedes on TCP) and ingestion of what sensors send.
//
// Aedes sends a QoS 1 PUBACK *before* it runs its `published` hooks, so the
// reading is stored in `authorizePublish`, which runs first: the callback is
// called only once the reading is committed, and PUBACK follows it. If the
// commit fails, the callback gets the error, Aedes closes the connection
// without acknowledging, and the sensor sends the reading again when it
// reconnects. The broker never throws into Aedes: problems become log lines
// and counters.

import { Aedes, type AuthorizePublishHandler, type Client, type PreConnectHandler } from "aedes";
import { createServer, type Server, type Socket } from "node:net";
import mqttPacket from "mqtt-packet";
import { isDeviceTopic, parseReading, parseStatus, parseTopic } from "../../shared/contract.ts";
import type { Ingest } from "./ingest.ts";
import type { Log } from "../../shared/log.ts";
import type { Store } from "../store/store.ts";
import { refusalReason } from "../metrics/reasons.ts";

/** Broker limits (from the config). */
export interface BrokerOptions {
  maxPacketBytes: number;
  connectTimeoutMs: number;
  maxClientIdLength: number;
  maxClients: number;
}

/** Counters the broker keeps; /health and inspect show them. */
export interface BrokerStats {
  readingsAccepted: number;
  readingsRefused: number;
  /** Messages on a device topic whose ids or kind are not valid (no device to count them on). */
  badTopics: number;
  statusRefused: number;
  connectionsRefused: number;
  clientErrors: number;
  /** Refused readings by reason (lib/server/metrics/reasons.ts: a few fixed words), for /metrics. */
  refusedByReason: Record<string, number>;
}

/** Counts how often one key logged within a minute, so a flood makes one line a minute. */
function createLogThrottle(windowMs = 60_000) {
  const seen = new Map<string, { at: number; suppressed: number }>();
  return (key: string, now: number): number | null => {
    const entry = seen.get(key);
    if (entry && now - entry.at < windowMs) {
      entry.suppressed++;
      return null;
    }
    const suppressed = entry?.suppressed ?? 0;
    seen.set(key, { at: now, suppressed: 0 });
    if (seen.size > 10_000) seen.clear();
    return suppressed;
  };
}

/**
 * Creates the broker. `listen` binds the TCP port; `close` stops accepting,
 * disconnects clients and closes Aedes.
 */
export async function createBroker(deps: {
  store: Pick<Store, "recordRefusal" | "applyStatus">;
  ingest: Pick<Ingest, "submit">;
  log: Log;
  options: BrokerOptions;
  now?: () => number;
}) {
  const { store, ingest, log, options } = deps;
  const now = deps.now ?? Date.now;
  const stats: BrokerStats = {
    readingsAccepted: 0,
    readingsRefused: 0,
    badTopics: 0,
    statusRefused: 0,
    connectionsRefused: 0,
    clientErrors: 0,
    refusedByReason: {},
  };
  const throttle = createLogThrottle();

  const refuse = (deviceUid: string | null, reason: string, topic: string, clientId: string | undefined) => {
    const suppressed = throttle(`refuse:${deviceUid ?? topic}`, now());
    if (suppressed !== null) {
      log.warn("refused message", {
        device: deviceUid ?? undefined,
        topic,
        client: clientId,
        reason,
        suppressed: suppressed || undefined,
      });
    }
  };

  const authorizePublish: AuthorizePublishHandler = (client, packet, callback) => {
    const topic = packet.topic;
    if (topic.startsWith("$SYS/")) return callback(new Error("$SYS/ topics are reserved"));
    // client is null only for the will of a client that is gone already.
    const clientId = client?.id;
    if (!isDeviceTopic(topic)) return callback(null);
    const parsed = parseTopic(topic);
    if ("error" in parsed) {
      stats.badTopics++;
      refuse(null, parsed.error, topic, clientId);
      return callback(null); // acknowledged and discarded: no resend loop
    }
    const { homeId, deviceUid, kind } = parsed;
    const at = now();
    if (kind === "reading") {
      const result = parseReading(packet.payload as Buffer, at);
      if (!result.ok) {
        stats.readingsRefused++;
        const why = refusalReason(result.reason);
        stats.refusedByReason[why] = (stats.refusedByReason[why] ?? 0) + 1;
        refuse(deviceUid, result.reason, topic, clientId);
        try {
          store.recordRefusal(homeId, deviceUid, result.reason, at);
        } catch (err) {
          log.error("cannot count refused reading", { device: deviceUid, error: err as Error });
        }
        return callback(null);
      }
      ingest.submit({ homeId, deviceUid, reading: result.value, receivedAt: at }, (err) => {
        if (err) return callback(err);
        stats.readingsAccepted++;
        callback(null);
      });
      return;
    }
    if (kind === "status") {
      // An empty retained message clears the retained status; nothing to record.
      if ((packet.payload as Buffer).length === 0) return callback(null);
      const result = parseStatus(packet.payload as Buffer);
      if (!result.ok) {
        stats.statusRefused++;
        refuse(deviceUid, `status: ${result.reason}`, topic, clientId);
        return callback(null);
      }
      try {
        store.applyStatus(homeId, deviceUid, result.value, at);
        if (result.value.state === "offline" || throttle(`status:${deviceUid}`, at) !== null) {
          log.info(`device ${result.value.state}`, {
            device: deviceUid,
            interval_s: result.value.interval_s,
            version: result.value.version,
          });
        }
      } catch (err) {
        return callback(err as Error);
      }
      return callback(null);
    }
    // kind === "config": the server owns config messages; a client's is passed on, not stored.
    callback(null);
  };

  const preConnect: PreConnectHandler = (client, packet, callback) => {
    const id = packet.clientId ?? "";
    let refusal: string | null = null;
    if (id.length > options.maxClientIdLength) {
      refusal = `client id of ${id.length} characters is longer than the limit of ${options.maxClientIdLength} (mqtt_max_client_id)`;
    } else if (broker.connectedClients >= options.maxClients) {
      refusal = `already ${broker.connectedClients} clients connected, the limit (mqtt_max_clients)`;
    }
    if (refusal === null) return callback(null, true);
    stats.connectionsRefused++;
    log.warn("refused connection", { client: id.slice(0, 64), address: remoteAddress(client), reason: refusal });
    // Answer with a CONNACK so the client shows a reason (2 = identifier rejected, 3 = server unavailable).
    const returnCode = id.length > options.maxClientIdLength ? 2 : 3;
    client.conn.write(mqttPacket.generate({ cmd: "connack", returnCode, sessionPresent: false }));
    callback(new Error(refusal), false);
  };

  const broker = await Aedes.createBroker({
    connectTimeout: options.connectTimeoutMs,
    // A subscriber that stops reading is dropped after 10 s instead of blocking
    // delivery to everybody (Aedes' drainTimeout note).
    drainTimeout: 10_000,
    heartbeatInterval: 60_000,
    authorizePublish,
    preConnect,
  });

  // Guard against an Aedes/mqemitter crash: when messages queue up behind a
  // subscriber that stopped reading (mqemitter's concurrency limit) and that
  // subscriber then disconnects, every queued message suddenly matches nobody,
  // completes synchronously and releases the next one on the same stack:
  // "Maximum call stack size exceeded" takes the process down (reproduced in
  // test/broker.test.ts). One subscriber that matches everything and always
  // completes on a later tick keeps each message's completion off that stack.
  await new Promise<void>((resolve) => broker.subscribe("#", (_packet, cb) => setImmediate(cb), resolve));

  // A dying client fails every write queued to it; log one line per client and minute.
  const logClientError = (what: string, client: Client, err: Error) => {
    stats.clientErrors++;
    const suppressed = throttle(`${what}:${client.id ?? remoteAddress(client)}:${err.message}`, now());
    if (suppressed !== null) {
      log.warn(what, {
        client: client.id ?? undefined,
        address: remoteAddress(client),
        error: err.message,
        suppressed: suppressed || undefined,
      });
    }
  };
  broker.on("clientError", (client: Client, err: Error) => logClientError("client error", client, err));
  broker.on("connectionError", (client: Client, err: Error) => logClientError("connection error", client, err));
  broker.on("client", (client: Client) => log.debug("client connected", { client: client.id, address: remoteAddress(client) }));
  broker.on("clientDisconnect", (client: Client) => log.debug("client disconnected", { client: client.id }));

  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // Aedes itself never errors the socket on close races; keep one listener so Node never throws.
    socket.on("error", () => {});
    const client = broker.handle(socket);
    limitPacketSize(client, options.maxPacketBytes, log);
  });

  return {
    stats,
    aedes: broker,
    /**
     * Publishes a message of the server's own at QoS 1. A retained message is
     * stored before this returns (Aedes' memory persistence stores it
     * synchronously), so a client that subscribes afterwards gets it.
     */
    publish(topic: string, payload: string, { retain }: { retain: boolean }): Promise<void> {
      return new Promise((resolve, reject) => {
        broker.publish({ cmd: "publish", topic, payload: Buffer.from(payload), qos: 1, retain, dup: false }, (err) =>
          err ? reject(err) : resolve(),
        );
      });
    },
    /** Binds the TCP port; resolves with the port actually bound. */
    listen(port: number, host: string): Promise<number> {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve((server.address() as { port: number }).port);
        });
      });
    },
    /** Messages waiting in Aedes' delivery queue (mqemitter) behind slow subscribers. */
    get queuedMessages(): number {
      return (broker as unknown as { mq: { length: number } }).mq.length;
    },
    /** Clients connected now. */
    get connectedClients() {
      return broker.connectedClients;
    },
    /** Whether the broker is accepting connections. */
    get listening() {
      return server.listening && !broker.closed;
    },
    /** Stops accepting, disconnects every client, closes Aedes. */
    async close(): Promise<void> {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** The broker's interface. */
export type Broker = Awaited<ReturnType<typeof createBroker>>;

function remoteAddress(client: Client): string | undefined {
  const conn = client.conn as Partial<Socket> | undefined;
  return conn?.remoteAddress ? `${conn.remoteAddress}:${conn.remotePort}` : undefined;
}

/**
 * Refuses packets larger than `max` bytes as soon as their length field is
 * read, before their body is buffered. Aedes has no such limit; its parser
 * (mqtt-packet) reads the length in `_parseLength`, which we wrap. A test
 * (test/broker.test.ts, "an oversized packet") proves the hook still works.
 */
function limitPacketSize(client: Client, max: number, log: Log): void {
  const parser = (client as unknown as { _parser: MqttParser })._parser;
  const parseLength = parser._parseLength;
  parser._parseLength = function (this: MqttParser) {
    const ok = parseLength.call(this);
    if (ok && this.packet.length > max) {
      log.warn("refused packet", {
        client: client.id ?? undefined,
        address: remoteAddress(client),
        reason: `packet of ${this.packet.length} bytes is larger than the limit of ${max} (mqtt_max_packet_bytes)`,
      });
      return this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds mqtt_max_packet_bytes (${max})`));
    }
    return ok;
  };
}

interface MqttParser {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(err: Error): boolean;
}
