// The embedded MQTT broker (Aedes on TCP and TLS) and ingestion of what
// sensors send. Who may connect, publish and subscribe is decided in
// access.ts (credentials from the store, rules from lib/server/auth/mqtt-acl.ts).
//
// Aedes sends a QoS 1 PUBACK *before* it runs its `published` hooks, so the
// reading is stored in `authorizePublish`, which runs first: the callback is
// called only once the reading is committed, and PUBACK follows it. If the
// commit fails, the callback gets the error, Aedes closes the connection
// without acknowledging, and the sensor sends the reading again when it
// reconnects. The broker never throws into Aedes: problems become log lines
// and counters. A publish the ACL refuses is not stored and not passed on:
// the callback gets an error and Aedes closes that connection without a
// PUBACK (MQTT 3.1.1 has no negative acknowledgement), so a sensor set up
// with the wrong credentials keeps its readings and sends them again once
// it is fixed, and a tool sees its connection end instead of a silent drop.

import { Aedes, type AuthorizePublishHandler, type Client, type PreConnectHandler } from "aedes";
import { createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createServer as createTlsServer } from "node:tls";
import mqttPacket from "mqtt-packet";
import { classifyTopic } from "../auth/mqtt-acl.ts";
import { parseReading, parseStatus } from "../../shared/contract.ts";
import type { Ingest } from "./ingest.ts";
import type { Log } from "../../shared/log.ts";
import type { Store } from "../store/store.ts";
import { createMqttAccess, type AccessCounters } from "./access.ts";
import { createLogThrottle, remoteAddress, remoteIp } from "./refusals.ts";
import { guardParser } from "./wire.ts";
import { createRefusalCounts } from "./refusal-counts.ts";
import { boundPersistence, type BoundsOptions } from "./bounds.ts";
import { unblockDelivery } from "./delivery.ts";
import { reserveForSensors } from "./reserve.ts";
import { createSysStats } from "./sys.ts";

/** How often connected clients' credentials are checked again (a revoked token's connection ends within this). */
export const RECHECK_INTERVAL_MS = 10_000;
import { refusalReason } from "../metrics/reasons.ts";

/** Broker limits (from the config). */
export interface BrokerOptions extends BoundsOptions {
  maxPacketBytes: number;
  connectTimeoutMs: number;
  maxClientIdLength: number;
  maxClients: number;
  /** Most tool (API token) connections at once: the rest of maxClients is kept for sensors. */
  maxToolClients: number;
  /** Most anonymous connections from one address. */
  maxAnonymousPerAddress: number;
  /** Most bytes waiting in one subscriber's connection before messages to it are dropped. */
  maxOutgoingBytes: number;
  /** Most devices registered (max_devices): a reading or status of a new device beyond it is refused, not acknowledged. */
  maxDevices?: number;
  /** How often the $SYS/broker statistics are published (0: never). */
  sysIntervalMs?: number;
}

/** Counters the broker keeps; /health and inspect show them. */
export interface BrokerStats extends AccessCounters {
  readingsAccepted: number;
  readingsRefused: number;
  /** Messages dropped for a subscriber whose connection held mqtt_max_outgoing_bytes unread. */
  slowSubscriberDropped: number;
  /** Refused readings not counted on a device: the device is unknown (it is not registered for garbage). */
  refusalsNotCounted: number;
  /** Readings and statuses of new devices refused: max_devices were registered. */
  devicesRefused: number;
  /** Messages on a device topic whose ids or kind are not valid (no device to count them on). */
  badTopics: number;
  statusRefused: number;
  clientErrors: number;
  /** Refused readings by reason (lib/server/metrics/reasons.ts: a few fixed words), for /metrics. */
  refusedByReason: Record<string, number>;
}

/** A certificate and its key, PEM, for the TLS listener. */
export interface TlsMaterial {
  /** The server's certificate, followed by the chain up to its CA. */
  cert: string;
  key: string;
}

/**
 * Creates the broker. `listen` binds the plain TCP port, `listenTls` the TLS
 * one; `close` stops accepting, disconnects clients and closes Aedes.
 * `insecureOpen` turns authentication and the ACL off: for bench/ingest.ts
 * only, which measures what they cost (no setting reaches it).
 */
export async function createBroker(deps: {
  store: Pick<Store, "recordRefusals" | "applyStatus" | "auth" | "on" | "mqtt" | "registered">;
  ingest: Pick<Ingest, "submit">;
  log: Log;
  options: BrokerOptions;
  now?: () => number;
  insecureOpen?: boolean;
}) {
  const { store, ingest, log, options } = deps;
  const now = deps.now ?? Date.now;
  const stats: BrokerStats = {
    readingsAccepted: 0,
    readingsRefused: 0,
    slowSubscriberDropped: 0,
    refusalsNotCounted: 0,
    devicesRefused: 0,
    badTopics: 0,
    statusRefused: 0,
    connectionsRefused: 0,
    publishRefused: 0,
    subscribeRefused: 0,
    closedOnRecheck: 0,
    clientErrors: 0,
    refusedByReason: {},
  };
  const throttle = createLogThrottle();
  /** Each connection's address and the client id its CONNECT gave, for the log lines of its errors. */
  const addresses = new WeakMap<Client, string>();
  const connectIds = new WeakMap<Client, string>();
  const clients = () => (broker as unknown as { clients: Record<string, Client> }).clients;
  const access = createMqttAccess({
    store,
    log,
    now,
    throttle,
    stats,
    clientById: (id) => clients()[id],
    open: deps.insecureOpen,
  });

  const refusalCounts = createRefusalCounts({
    store,
    log,
    onNotCounted: (n) => void (stats.refusalsNotCounted += n),
  });

  const maxDevices = options.maxDevices ?? Infinity;
  /** New devices whose first reading waits for its commit: they count against max_devices already. */
  const admitted = new Set<string>();
  /**
   * Whether a valid reading or status of `deviceUid` would register a device
   * beyond max_devices: then it is logged (once per client and minute) and
   * counted, and the caller refuses it without an acknowledgement.
   */
  const beyondMaxDevices = (client: Client | null, deviceUid: string, at: number): boolean => {
    if (store.registered.has(deviceUid) || admitted.has(deviceUid)) return false;
    if (store.registered.count() + admitted.size < maxDevices) return false;
    stats.devicesRefused++;
    const address = client ? (addresses.get(client) ?? remoteAddress(client)) : undefined;
    const suppressed = throttle(`devices:${client?.id ?? address}`, at);
    if (suppressed !== null)
      log.warn("refused a new device", {
        device: deviceUid,
        client: client?.id,
        address,
        reason: `${maxDevices} devices are registered (max_devices); delete devices no longer used, or raise max_devices`,
        suppressed: suppressed || undefined,
      });
    return true;
  };
  /** What a publisher of a new device beyond max_devices gets: no PUBACK, the connection closes; a sensor keeps the reading and sends it again later. */
  const tooManyDevices = () => new Error(`${maxDevices} devices are registered (max_devices)`);

  // One line per publishing client (or address) and minute, whatever the device: garbage on
  // 10,000 device topics from one client is one line with the count it left out, not 10,000.
  const refuse = (client: Client | null, deviceUid: string | null, reason: string, topic: string) => {
    const address = client ? (addresses.get(client) ?? remoteAddress(client)) : undefined;
    const suppressed = throttle(`refuse:${client?.id ?? address ?? topic}`, now());
    if (suppressed !== null) {
      log.warn("refused message", {
        device: deviceUid ?? undefined,
        topic: topic.slice(0, 200),
        client: client?.id,
        address,
        reason,
        suppressed: suppressed || undefined,
      });
    }
  };

  const authorizePublish: AuthorizePublishHandler = (client, packet, callback) => {
    const topic = packet.topic;
    // client is null only for the will of a client that is gone already (refused: nobody to check it against).
    const cls = classifyTopic(topic);
    const decision = access.decidePublish(client, topic, cls);
    if (!decision.allow) return callback(new Error(decision.reason));
    if (cls.kind !== "device") {
      if (cls.kind === "other" && cls.badDeviceTopic !== null) {
        stats.badTopics++;
        refuse(client, null, cls.badDeviceTopic, topic);
      }
      // A retained message over the bounds is passed on but not kept (bounds.ts); said once per client and minute.
      const notKept = packet.retain ? bounds.retainedRefusal(topic, packet.payload as Buffer) : null;
      if (notKept !== null) {
        const address = client ? (addresses.get(client) ?? remoteAddress(client)) : undefined;
        const suppressed = throttle(`retained:${client?.id ?? address}`, now());
        if (suppressed !== null)
          log.warn("retained message not kept", {
            client: client?.id,
            address,
            topic: topic.slice(0, 200),
            reason: notKept,
            suppressed: suppressed || undefined,
          });
      }
      return callback(null); // passed on to subscribers; a bad device topic is acknowledged and discarded
    }
    const { homeId, deviceUid, message } = cls;
    const at = now();
    if (message === "reading") {
      const result = parseReading(packet.payload as Buffer, at);
      if (!result.ok) {
        stats.readingsRefused++;
        const why = refusalReason(result.reason);
        stats.refusedByReason[why] = (stats.refusedByReason[why] ?? 0) + 1;
        refuse(client, deviceUid, result.reason, topic);
        refusalCounts.add(deviceUid, result.reason, at);
        return callback(null);
      }
      if (beyondMaxDevices(client, deviceUid, at)) return callback(tooManyDevices());
      // A new device counts against max_devices until its commit registers it (or fails).
      const registering = !store.registered.has(deviceUid);
      if (registering) admitted.add(deviceUid);
      ingest.submit({ homeId, deviceUid, reading: result.value, receivedAt: at }, (err) => {
        if (registering) admitted.delete(deviceUid);
        if (err) return callback(err);
        stats.readingsAccepted++;
        callback(null);
      });
      return;
    }
    // An empty retained message clears the retained status; nothing to record.
    if ((packet.payload as Buffer).length === 0) return callback(null);
    const result = parseStatus(packet.payload as Buffer);
    if (!result.ok) {
      stats.statusRefused++;
      refuse(client, deviceUid, `status: ${result.reason}`, topic);
      return callback(null);
    }
    if (beyondMaxDevices(client, deviceUid, at)) return callback(tooManyDevices());
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
  };

  const preConnect: PreConnectHandler = (client, packet, callback) => {
    const id = packet.clientId ?? "";
    connectIds.set(client, id);
    let refusal: string | null = null;
    // Answer with a CONNACK so the client shows a reason (2 = identifier rejected, 3 = server unavailable).
    let returnCode = 2;
    if (id.length > options.maxClientIdLength) {
      refusal = `client id of ${id.length} characters is longer than the limit of ${options.maxClientIdLength} (mqtt_max_client_id)`;
    } else if (id === "" && (packet.clean === false || packet.protocolVersion === 3)) {
      // MQTT-3.1.3-8 (and MQTT 3.1, which has no generated ids): Mosquitto answers CONNACK 2.
      refusal =
        packet.protocolVersion === 3
          ? "an empty client id is not allowed in MQTT 3.1"
          : "an empty client id needs a clean session (MQTT-3.1.3-8)";
    } else if (broker.connectedClients >= options.maxClients) {
      refusal = `already ${broker.connectedClients} clients connected, the limit (mqtt_max_clients)`;
      returnCode = 3;
    }
    if (refusal === null) return callback(null, true);
    stats.connectionsRefused++;
    // One line per cause, address and minute: a flood of connections makes one line.
    const suppressed = throttle(`limit:${returnCode}:${remoteIp(client)}`, now());
    if (suppressed !== null) {
      log.warn("refused connection", {
        client: id.slice(0, 64),
        address: remoteAddress(client),
        reason: refusal,
        suppressed: suppressed || undefined,
      });
    }
    client.conn.write(mqttPacket.generate({ cmd: "connack", returnCode, sessionPresent: false }));
    callback(new Error(refusal), false);
  };

  const authenticate = reserveForSensors({
    access,
    clients: () => Object.values(clients()),
    limits: options,
    onRefused(client, refusal) {
      stats.connectionsRefused++;
      const suppressed = throttle(`kind-limit:${refusal.kind}:${remoteIp(client)}`, now());
      if (suppressed !== null) {
        log.warn("refused connection", {
          client: client.id?.slice(0, 64),
          address: addresses.get(client) ?? remoteAddress(client),
          reason: refusal.reason,
          suppressed: suppressed || undefined,
        });
      }
    },
  });

  const broker = await Aedes.createBroker({
    // A fixed id: Aedes' own $SYS topics ($SYS/techtemp/heartbeat…) keep their path across starts.
    id: "techtemp",
    connectTimeout: options.connectTimeoutMs,
    // Aedes refuses MQTT 3.1 ids over 23 characters (that spec's limit); Mosquitto accepts them, and
    // preConnect applies mqtt_max_client_id to every version.
    maxClientsIdLength: Number.MAX_SAFE_INTEGER,
    // A subscriber that stops reading is dropped after 10 s instead of blocking
    // delivery to everybody (Aedes' drainTimeout note).
    drainTimeout: 10_000,
    heartbeatInterval: 60_000,
    authorizePublish,
    authenticate,
    // The ACL first, then the bounds (bounds.ts): persistent sessions, then the client's own topic filters.
    authorizeSubscribe: (client, sub, callback) =>
      access.authorizeSubscribe(client, sub, (err, granted) => {
        if (err || !granted || !client) return callback(err, granted);
        const session = client.clean ? null : bounds.sessionRefusal(client.id);
        const refusal = session ?? bounds.subscriptionRefusal(client, sub.topic);
        if (refusal === null) return callback(null, granted);
        const address = addresses.get(client) ?? remoteAddress(client);
        // The sessions' limit is one cause whatever the client; a client's own filters, one per client.
        const suppressed = throttle(session !== null ? "sessions" : `subscriptions:${client.id}`, now());
        if (suppressed !== null)
          log.warn("refused subscription", {
            client: client.id.slice(0, 64),
            address,
            topic: sub.topic.slice(0, 200),
            reason: refusal,
            suppressed: suppressed || undefined,
          });
        // Granted as 0x80 (failure) in the SUBACK, as the ACL's refusals; the connection stays.
        callback(null, null as unknown as typeof granted);
      }),
    preConnect,
  });

  const bounds = boundPersistence(
    (broker as unknown as { persistence: never }).persistence,
    options,
    (clientId, reason) => {
      sys.counters.publishDropped++;
      const suppressed = throttle(`queue:${clientId}`, now());
      if (suppressed !== null) {
        log.warn("dropped a message for a persistent session", {
          client: clientId.slice(0, 64),
          reason,
          suppressed: suppressed || undefined,
        });
      }
    },
    {
      state: store.mqtt,
      onError(err: Error) {
        // The broker works on from memory; what changed since is lost at the next restart.
        if (throttle("keep-state", now()) !== null)
          log.error("cannot keep the broker's retained messages or sessions in the database", { error: err });
      },
    },
  );
  // What the earlier Mosquitto kept in its persistence file: retained messages and persistent sessions.
  const restored = await bounds.restore();
  if (restored.retained > 0 || restored.sessions > 0) log.info("restored the broker's state", restored);

  // Guard against an Aedes/mqemitter crash: when messages queue up behind a
  // subscriber that stopped reading (mqemitter's concurrency limit) and that
  // subscriber then disconnects, every queued message suddenly matches nobody,
  // completes synchronously and releases the next one on the same stack:
  // "Maximum call stack size exceeded" takes the process down (reproduced in
  // test/broker.test.ts). One subscriber that matches everything and always
  // completes on a later tick keeps each message's completion off that stack.
  await new Promise<void>((resolve) => broker.subscribe("#", (_packet, cb) => setImmediate(cb), resolve));

  // One line per cause, address and minute: a dying client fails every write queued to it, and a
  // client that resends what was refused (a message over the limit) comes back every few seconds.
  // The client id is the one its CONNECT gave (Aedes has none for a connection it refused), the
  // address the one noted when it connected (a closed socket forgets it).
  const logClientError = (what: string, client: Client, err: Error) => {
    stats.clientErrors++;
    const address = addresses.get(client) ?? remoteAddress(client);
    const suppressed = throttle(`${what}:${address?.replace(/:\d+$/, "") ?? "unknown"}:${err.message}`, now());
    if (suppressed !== null) {
      const refusedPacket = err.message.includes("(mqtt_max_packet_bytes)") || err.message.startsWith("malformed ");
      log.warn(refusedPacket ? "refused packet" : what, {
        client: (client.id ?? connectIds.get(client))?.slice(0, 64) || undefined,
        address,
        [refusedPacket ? "reason" : "error"]: err.message,
        suppressed: suppressed || undefined,
      });
    }
  };
  broker.on("clientError", (client: Client, err: Error) => logClientError("client error", client, err));
  broker.on("connectionError", (client: Client, err: Error) => logClientError("connection error", client, err));
  broker.on("client", (client: Client) => log.debug("client connected", { client: client.id, address: remoteAddress(client) }));
  broker.on("unsubscribe", (topics: string[], client: Client) => bounds.unsubscribed(client, topics));
  broker.on("clientDisconnect", (client: Client) => log.debug("client disconnected", { client: client.id }));

  const slowSubscriber = (client: Client) => {
    stats.slowSubscriberDropped++;
    sys.counters.publishDropped++;
    const address = addresses.get(client) ?? remoteAddress(client);
    const suppressed = throttle(`slow:${client.id ?? address}`, now());
    if (suppressed !== null) {
      log.warn("dropped a message for a subscriber that does not read", {
        client: client.id?.slice(0, 64),
        address,
        reason: `more than ${options.maxOutgoingBytes} bytes wait unread in its connection (mqtt_max_outgoing_bytes)`,
        suppressed: suppressed || undefined,
      });
    }
  };

  /** The MQTT connections (not the TCP ones under TLS) and the bytes of those that closed, for $SYS. */
  const mqttSockets = new Set<Socket>();
  const closedBytes = { received: 0, sent: 0 };
  const sys = createSysStats(
    {
      connected: () => broker.connectedClients,
      offline: () =>
        (
          broker as unknown as { persistence: { countOffline(): Promise<{ clientsCount: number; subsCount: number }> } }
        ).persistence.countOffline(),
      subscriptions: () => {
        let n = 0;
        for (const c of Object.values(clients()))
          n += Object.keys((c as unknown as { subscriptions: object }).subscriptions ?? {}).length;
        return n;
      },
      retained: () => ({ messages: bounds.stats.retainedMessages, bytes: bounds.stats.retainedBytes }),
      queued: () => ({ messages: bounds.stats.queuedMessages, bytes: bounds.stats.queuedBytes }),
      bytes: () => {
        const b = { ...closedBytes };
        for (const s of mqttSockets) {
          b.received += s.bytesRead ?? 0;
          b.sent += s.bytesWritten ?? 0;
        }
        return b;
      },
      publish: (topic, payload) =>
        new Promise<void>((resolve, reject) =>
          broker.publish({ cmd: "publish", topic, payload: Buffer.from(payload), qos: 0, retain: true, dup: false }, (err) =>
            err ? reject(err) : resolve(),
          ),
        ),
    },
    { intervalMs: options.sysIntervalMs ?? 10_000, now },
  );
  broker.on("publish", (_packet: unknown, client: Client | null) => {
    if (client) sys.counters.publishReceived++;
  });
  if ((options.sysIntervalMs ?? 10_000) > 0) sys.start();

  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  /** Every open connection (for TLS, the TCP one under it too, even mid-handshake), so close() can end them. */
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // Aedes itself never errors the socket on close races; keep one listener so Node never throws.
    socket.on("error", () => {});
  };
  const accept = (socket: Socket) => {
    track(socket);
    const client = handle(socket, socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : undefined);
    mqttSockets.add(socket);
    socket.once("close", () => {
      mqttSockets.delete(socket);
      closedBytes.received += socket.bytesRead ?? 0;
      closedBytes.sent += socket.bytesWritten ?? 0;
    });
    return client;
  };
  /** Hands a connection (a TCP or TLS socket, or a WebSocket's stream) to Aedes with every check of ours. */
  const handle = (stream: Socket | Duplex, address: string | undefined): Client => {
    const client = broker.handle(stream as Socket);
    if (address) addresses.set(client, address);
    guardParser(client, options.maxPacketBytes);
    unblockDelivery(client, options.maxOutgoingBytes, {
      onDrop: slowSubscriber,
      onSent: () => void sys.counters.publishSent++,
    });
    (client as unknown as { _parser: { on(e: "packet", f: () => void): void } })._parser.on(
      "packet",
      () => void sys.counters.messagesReceived++,
    );
    return client;
  };
  const bind = (server: Server, port: number, host: string) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        servers.push(server);
        resolve((server.address() as { port: number }).port);
      });
    });

  // Credentials can go away while their connections stay (revoked, deleted, turned off,
  // maybe by a command in another process): look again every few seconds, and at once
  // when a device is deleted.
  const recheck = () => access.recheck(Object.values(clients()));
  const recheckTimer = setInterval(recheck, RECHECK_INTERVAL_MS);
  recheckTimer.unref?.();
  const stopFollowingDevices = store.on("device", (change) => {
    if (change.kind === "deleted") recheck();
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
    /**
     * Serves one more connection given as a byte stream (MQTT over WebSockets,
     * lib/server/http/mqtt-ws.ts); `address` is the peer's, for the logs and limits.
     */
    handleStream(stream: Duplex, address: string | undefined): void {
      handle(stream, address);
    },
    /** Binds the plain TCP port; resolves with the port actually bound. */
    listen(port: number, host: string): Promise<number> {
      return bind(createServer(accept), port, host);
    },
    /**
     * Binds the TLS port (MQTT over TLS, 8883 by default) with this
     * certificate; resolves with the port actually bound. A handshake that
     * fails (a client that does not trust the certificate, a plain client on
     * this port) is logged once per cause, address and minute.
     */
    listenTls(port: number, host: string, tls: TlsMaterial): Promise<number> {
      const server = createTlsServer({ cert: tls.cert, key: tls.key, handshakeTimeout: options.connectTimeoutMs }, (socket) =>
        accept(socket),
      );
      // The address is noted as the connection comes: a socket whose handshake failed may have forgotten it.
      const addresses = new WeakMap<Socket, string>();
      server.on("connection", (socket: Socket) => {
        track(socket);
        if (socket.remoteAddress) addresses.set(socket, `${socket.remoteAddress}:${socket.remotePort}`);
      });
      server.on("tlsClientError", (err: Error & { code?: string }, socket: Socket) => {
        const address =
          addresses.get(socket) ?? (socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : undefined);
        const suppressed = throttle(`tls:${err.code ?? err.message}:${address?.replace(/:\d+$/, "")}`, now());
        if (suppressed !== null)
          log.warn("TLS handshake failed", { address, error: err.message, suppressed: suppressed || undefined });
      });
      return bind(server, port, host);
    },
    /** Closes the connections whose credentials no longer hold (also runs every RECHECK_INTERVAL_MS); returns how many. */
    recheck,
    /** Who a connected client is, for tests and logs. */
    principalOf: access.principalOf,
    /** Messages waiting in Aedes' delivery queue (mqemitter) behind slow subscribers. */
    get queuedMessages(): number {
      return (broker as unknown as { mq: { length: number } }).mq.length;
    },
    /** Retained messages and session queues kept now, and what their bounds refused. */
    get kept() {
      return bounds.stats;
    },
    /** The $SYS/broker statistics now, by name. */
    sysSnapshot: () => sys.snapshot(),
    /** Clients connected now. */
    get connectedClients() {
      return broker.connectedClients;
    },
    /** Whether the broker is accepting connections (on every port it bound). */
    get listening() {
      return servers.length > 0 && servers.every((s) => s.listening) && !broker.closed;
    },
    /** Stops accepting, disconnects every client, closes Aedes. */
    async close(): Promise<void> {
      clearInterval(recheckTimer);
      sys.stop();
      stopFollowingDevices();
      refusalCounts.flush();
      const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      // Each server's callback comes once its connections are gone: end them.
      for (const s of sockets) s.destroy();
      await Promise.all(closed);
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** The broker's interface. */
export type Broker = Awaited<ReturnType<typeof createBroker>>;
