// The agent's MQTT connection (mqtt-client.ts over TCP or TLS, MQTT 3.1.1): a
// retained birth `status` on connect and a retained last will saying offline
// (SPEC "MQTT contract"), a subscription to the device's retained `config`,
// and reconnection forever with exponential backoff and jitter. A clean stop
// says offline itself, since a clean DISCONNECT suppresses the last will.

import { readFileSync } from "node:fs";
import { formatStatus, type Status } from "../shared/contract.ts";
import type { Log } from "../shared/log.ts";
import type { AgentConfig } from "./device-config.ts";
import { connectMqtt, type MqttClient, type MqttError } from "./mqtt-client.ts";
import { withTimeout } from "./timeout.ts";

/** First reconnect delay; it doubles up to `reconnect_max_seconds`, with jitter. */
const RECONNECT_BASE_MS = 1000;

/** Certificate checks that failed (OpenSSL's and Node's codes): the server is not who the agent trusts. */
const TLS_TRUST_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|HOSTNAME/;

/** The link's counters, and the sensor's health it announces (part of the agent's stats). */
export interface LinkStats {
  /** Whether the broker accepted the connection and it is still up. */
  connected: boolean;
  /** Connections made since start. */
  connections: number;
  /** Consecutive sensor failures, announced in the status. */
  readonly sensorFailures: number;
  /** The last sensor failure, announced in the status while failures last. */
  readonly lastError: string | null;
}

/** What the link needs. */
export interface LinkDeps {
  config: Pick<
    AgentConfig,
    "device_uid" | "broker_host" | "broker_port" | "username" | "password" | "keepalive_s" | "reconnect_max_s" | "tls" | "ca_file"
  >;
  /** The device's status and config topics. */
  topics: { status: string; config: string };
  /** The agent's log; the link logs as its `mqtt` child. */
  log: Log;
  stats: LinkStats;
  /** The version announced in the birth message. */
  version: string;
  /** The interval in force, announced in the birth message. */
  intervalS(): number;
  /** Readings waiting in the outbox, for the logs. */
  queued(): number;
  /** For reconnect jitter (tests make it deterministic). */
  random: () => number;
  /** The broker accepted the connection (after the birth message and the config subscription). */
  onConnected(client: MqttClient): void;
  /** The connection is gone (before the reconnect is scheduled). */
  onDisconnected(): void;
  /** A message on the config topic. */
  onConfig(payload: Buffer): void;
}

/** Creates the link; `start()` connects, `close()` says offline and disconnects. */
export function createLink(deps: LinkDeps) {
  const { config, topics, stats } = deps;
  const log = deps.log.child("mqtt");
  const clientId = `techtemp-${config.device_uid}`;
  const broker = `${config.tls ? "mqtts" : "mqtt"}://${config.broker_host}:${config.broker_port}`;
  // Read once (device-config.ts checked it can be): the only CA trusted, not the system's.
  const ca = config.tls && config.ca_file !== "" ? readFileSync(config.ca_file) : undefined;
  /** An address, not a name: TLS's SNI carries names only (the certificate is checked against either). */
  const isAddress = /^[\d.]+$/.test(config.broker_host) || config.broker_host.includes(":");
  let client: MqttClient | null = null;
  /** Counts clients: events of a replaced one are ignored. */
  let generation = 0;
  let attempt = 0;
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  let lastError: string | null = null;
  let stopping = false;

  function status(): Status {
    const s: Status = {
      state: "online",
      interval_s: deps.intervalS(),
      version: deps.version,
      sensor_failures: stats.sensorFailures,
    };
    if (stats.lastError !== null) s.last_error = stats.lastError;
    return s;
  }

  function publishStatus(): void {
    if (!stats.connected || !client) return;
    client.publish(topics.status, formatStatus(status()), { qos: 1, retain: true }, (err) => {
      if (err && stats.connected) log.warn("cannot publish status", { error: err.message });
    });
  }

  function connect(): void {
    reconnectTimer = null;
    if (stopping) return;
    const gen = ++generation;
    const c = connectMqtt(
      {
        host: config.broker_host,
        port: config.broker_port,
        tls: config.tls ? { ca, serverName: isAddress ? undefined : config.broker_host } : null,
        clientId,
        username: config.username === "" ? undefined : config.username,
        password: config.username === "" ? undefined : config.password,
        keepaliveS: config.keepalive_s,
        // The outbox is the agent's session: what was not acknowledged goes again on the next connection.
        clean: true,
        will: { topic: topics.status, payload: formatStatus({ state: "offline" }), qos: 1, retain: true },
        connectTimeoutMs: 10_000,
      },
      {
        connect() {
          if (gen !== generation) return;
          attempt = 0;
          lastError = null;
          stats.connected = true;
          stats.connections++;
          log.info("connected", { broker, client_id: clientId, outbox: deps.queued() });
          publishStatus();
          c.subscribe(topics.config, { qos: 1 }, (err) => {
            if (err && gen === generation)
              log.warn("cannot subscribe to the config topic", { topic: topics.config, error: err.message });
          });
          deps.onConnected(c);
        },
        message(topic, payload) {
          if (gen === generation && topic === topics.config) deps.onConfig(payload);
        },
        error(err: MqttError) {
          if (gen !== generation) return;
          lastError =
            err.code === 5 || err.code === 4 || /not authori[sz]ed|bad user/i.test(err.message)
              ? `${err.message}: check username and password in [mqtt] of device.conf`
              : typeof err.code === "string" && TLS_TRUST_ERRORS.test(err.code)
                ? `${err.message} (${err.code}): the server's certificate is not trusted: check ca_file in [mqtt] of device.conf (the server's CA) and that broker_host is a name or address the certificate covers`
                : err.message;
        },
        close() {
          if (gen === generation) disconnected();
        },
      },
    );
    client = c;
  }

  function disconnected(): void {
    const wasConnected = stats.connected;
    stats.connected = false;
    generation++; // callbacks of the old client are ignored from here on
    deps.onDisconnected();
    client?.end(true);
    client = null;
    if (stopping) return;
    const ceiling = Math.min(config.reconnect_max_s * 1000, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 20));
    attempt++;
    // "Equal jitter": half fixed, half random, so sensors that lost the same server do not return in step.
    const delay = Math.round(ceiling / 2 + (deps.random() * ceiling) / 2);
    const fields = { broker, error: lastError ?? undefined, retry_in_s: delay / 1000, outbox: deps.queued() };
    if (wasConnected) log.warn("disconnected from the broker", fields);
    else if (attempt === 1 || attempt % 10 === 0) log.warn("cannot connect to the broker", { ...fields, attempts: attempt });
    else log.debug("cannot connect to the broker", { ...fields, attempts: attempt });
    reconnectTimer = setTimeout(connect, delay);
  }

  return {
    /** Connects (and keeps reconnecting until `close()`). */
    start: connect,
    /** Publishes the retained status (interval, version, sensor health) when connected. */
    publishStatus,
    /** Stops reconnecting; when connected, says offline and disconnects cleanly (each within 2 s). */
    async close(): Promise<void> {
      stopping = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      const c = client;
      if (c && stats.connected) {
        // A clean DISCONNECT suppresses the last will, so say offline ourselves.
        await withTimeout(
          new Promise<void>((resolve) =>
            c.publish(topics.status, formatStatus({ state: "offline" }), { qos: 1, retain: true }, () => resolve()),
          ),
          2000,
          "offline status",
        ).catch(() => {});
        await withTimeout(new Promise<void>((resolve) => c.end(false, () => resolve())), 2000, "disconnect").catch(() =>
          c.end(true),
        );
      } else c?.end(true);
      generation++;
      stats.connected = false;
      client = null;
    },
  };
}
