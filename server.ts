// TechTemp server: ONE process with the MQTT broker, the SQLite store, the
// JSON API and the web pages. This file only wires them together (like WTF
// Dial's main.go): parse config, open the store, start the broker, start
// HTTP, trap SIGTERM, close in reverse order.
//
//   bun server.ts                 run the server (config: env over file over defaults)
//   bun server.ts --demo          the server plus three simulated sensors
//   bun server.ts inspect [...]   what the database holds (safe beside a live server)
//   bun server.ts import-legacy PATH   import the earlier TechTemp's SQLite database
//   bun server.ts tls [...]       a local CA and a certificate for HTTPS and MQTT over TLS

import { join } from "node:path";
import { alertLimits, createAlerts, type Alerts } from "./lib/server/alerts/alerts.ts";
import { createAuth, type Auth } from "./lib/server/auth/auth.ts";
import type { HashParams } from "./lib/server/auth/passwords.ts";
import { reachableHost, secretLink } from "./lib/server/auth/setup.ts";
import { createHttp } from "./lib/server/http/app.ts";
import { AUTH_COMMANDS, runAuthCommand } from "./lib/server/ops/auth-commands.ts";
import { createBroker, type Broker } from "./lib/server/mqtt/broker.ts";
import { ConfigError, loadConfig, type Config } from "./lib/server/config.ts";
import { expiryWarning, loadServerTls, TlsError, type TlsInfo } from "./lib/server/tls/certificates.ts";
import { runTlsCommand } from "./lib/server/tls/command.ts";
import { DEFAULT_HOME_ID } from "./lib/shared/contract.ts";
import { DB_FILE, openDatabase } from "./lib/server/store/db.ts";
import { createIngest } from "./lib/server/mqtt/ingest.ts";
import { createWalSync } from "./lib/server/store/wal-sync.ts";
import { createCheckpointer } from "./lib/server/store/checkpointer.ts";
import { parseCommandArgs } from "./lib/server/ops/args.ts";
import { runInspect } from "./lib/server/ops/inspect.ts";
import { runImportLegacy } from "./lib/server/ops/legacy-import.ts";
import { createLog, type Log } from "./lib/shared/log.ts";
import { compileWhenBusy, interpretUntilBusy } from "./lib/server/jit.ts";
import { createConfigPublisher } from "./lib/server/mqtt/config-publisher.ts";
import { createExport } from "./lib/server/history/export.ts";
import { createHistory } from "./lib/server/history/history.ts";
import { createLive } from "./lib/server/live/live.ts";
import { createRetention, ensureIncrementalVacuum, type Retention } from "./lib/server/store/retention.ts";
import { createStats } from "./lib/server/history/stats.ts";
import { createStore, type Store } from "./lib/server/store/store.ts";
import { createZone } from "./lib/server/history/zone.ts";
import { createWeather } from "./lib/server/weather/weather.ts";
import { ensureRollupZone } from "./lib/server/store/rollups.ts";
import { backupSettings, createBackups, type Backups } from "./lib/server/backup/backups.ts";
import { checkAtStart } from "./lib/server/backup/startup.ts";
import { createMetrics } from "./lib/server/metrics/metrics.ts";
import type { Bridge } from "./lib/server/mqtt/bridge.ts";
import { createHaDiscovery } from "./lib/server/mqtt/ha-discovery.ts";
import { BACKUP_COMMANDS, runBackupCommand } from "./lib/server/ops/backup-commands.ts";
import { createMqttWsBridge } from "./lib/server/http/mqtt-ws.ts";
import { programName, usageText, VERSION } from "./lib/shared/program.ts";

/** A running server. */
export interface Running {
  /** The plain HTTP port; 0 when http_plain = off. */
  httpPort: number;
  /** The plain MQTT port; 0 when mqtt_plain = off. */
  mqttPort: number;
  /** The HTTPS port, or null without a certificate. */
  httpsPort: number | null;
  /** The MQTT over TLS port, or null without a certificate. */
  mqttsPort: number | null;
  /** The certificate served (expiry, names, local CA), or null without TLS. */
  tls: TlsInfo | null;
  config: Config;
  /** The store, for operator commands and tests. */
  store: Store;
  /**
   * The database under the store, for tests that look at or break it directly
   * (a full disk); the server's modules reach it only through the store.
   */
  db: ReturnType<typeof openDatabase>;
  /** The broker, for its counters. */
  broker: Broker;
  /** The retention job (its schedule runs inside the server; tests call runOnce). */
  retention: Retention;
  /** Accounts, sessions, tokens and enrollment (tests sign in through it). */
  auth: Auth;
  /** Alert rules, incidents and notifications (tests drive its clock and wait for it). */
  alerts: Alerts;
  /** Scheduled and manual backups (tests run one and wait for it). */
  backups: Backups;
  /** Every HTTP route as `METHOD /pattern` (test/auth-matrix.test.ts checks each against the guard). */
  routes: string[];
  /** Stops accepting, commits what is in flight, closes HTTP, broker and database. */
  close(): Promise<void>;
}

/** How often the certificate's expiry is looked at again (the log warns from 30 days before). */
const EXPIRY_CHECK_MS = 86_400_000;

/**
 * Starts the whole server with a resolved config. Tests use port 0 and a temp
 * data dir. `insecureOpenMqtt` turns MQTT authentication and the ACL off: only
 * bench/ingest.ts passes it, to measure their cost; no setting reaches it.
 * `writesAsBefore` writes rollups in every commit with SQLite's default
 * checkpoints (on a fresh database): bench/writes.ts's reference, no setting reaches it either.
 */
export async function start(
  config: Config,
  options: {
    log?: Log;
    now?: () => number;
    hashParams?: HashParams;
    insecureOpenMqtt?: boolean;
    /** bench/writes.ts's reference: SQLite's default checkpoints and no commit window (no setting reaches it). */
    writesAsBefore?: boolean;
  } = {},
): Promise<Running> {
  const log = options.log ?? createLog({ level: config.log_level });
  const now = options.now ?? Date.now;
  // The certificate first: a bad one stops the start before anything is opened.
  let tls: ReturnType<typeof loadServerTls>;
  try {
    tls = loadServerTls(config);
  } catch (err) {
    throw err instanceof TlsError ? err : new Error(`load the TLS certificate ${config.tls_cert}: ${(err as Error).message}`);
  }
  const dbPath = join(config.data_dir, DB_FILE);
  const backupPlaces = backupSettings(config);
  // A damaged database stops the start with one message naming the newest good backup and the restore command.
  checkAtStart(
    dbPath,
    [backupPlaces.dir, ...(backupPlaces.secondDir ? [backupPlaces.secondDir] : [])],
    (options.now ?? Date.now)(),
  );
  // The server syncs the -wal file itself, off the event loop (wal-sync.ts); the reference syncs in every COMMIT as before.
  const db = openDatabase(dbPath, {
    sqliteCheckpoints: options.writesAsBefore,
    walSync: options.writesAsBefore ? "sqlite" : "deferred",
  });
  // Before anything else uses the database: retention returns freed pages to the file system.
  try {
    ensureIncrementalVacuum(db, log.child("retention"));
    // The daily rollups are days of the home's zone: rebuilt here when the setting changed.
    ensureRollupZone(db, config.home_timezone, log.child("history"));
  } catch (err) {
    db.close();
    throw err;
  }
  const checkpointer = options.writesAsBefore ? null : createCheckpointer(dbPath, log.child("store"));
  const walSync = options.writesAsBefore ? null : createWalSync(dbPath, log.child("store"), checkpointer ?? undefined);
  const store = createStore(db, { now: options.now, log: log.child("store"), holdRollups: !options.writesAsBefore });
  const history = createHistory(store.history);
  const stats = createStats(store.history, history);
  const exporter = createExport(store.history, history);
  const zone = createZone(config.home_timezone);
  const live = createLive({ store, log: log.child("live"), zone });
  const backups = createBackups({
    source: dbPath,
    records: store.backups,
    settings: backupPlaces,
    log: log.child("backup"),
    now: options.now,
  });
  const ingest = createIngest({
    store,
    log: log.child("ingest"),
    windowMs: config.ingest_commit_window_ms,
    durable: walSync ?? undefined,
  });

  const broker = await createBroker({
    store,
    ingest,
    log: log.child("broker"),
    now: options.now,
    insecureOpen: options.insecureOpenMqtt,
    options: {
      maxPacketBytes: config.mqtt_max_packet_bytes,
      connectTimeoutMs: config.mqtt_connect_timeout_s * 1000,
      maxClientIdLength: config.mqtt_max_client_id,
      maxClients: config.mqtt_max_clients,
      maxToolClients: config.mqtt_max_tool_clients,
      maxAnonymousPerAddress: config.mqtt_max_anonymous_per_address,
      maxQueuedMessages: config.mqtt_max_queued_messages,
      maxQueuedBytes: config.mqtt_max_queued_bytes,
      maxRetained: config.mqtt_max_retained,
      maxRetainedBytes: config.mqtt_max_retained_bytes,
      maxSessions: config.mqtt_max_sessions,
      maxSubscriptions: config.mqtt_max_subscriptions,
      maxOutgoingBytes: config.mqtt_max_outgoing_bytes,
      maxDevices: config.max_devices,
      sysIntervalMs: config.mqtt_sys_interval_s * 1000,
    },
  });
  // The bridge first: it mirrors the retained state (statuses, discovery) as it is published.
  // Loaded only when configured: MQTT.js, which it is built on, is several MB of a Pi's memory (README, server memory).
  const bridge: Bridge | null = config.bridge_url
    ? (await import("./lib/server/mqtt/bridge.ts")).createBridge({
        settings: {
          url: config.bridge_url,
          username: config.bridge_username,
          password: config.bridge_password,
          clientId: config.bridge_client_id,
          buffer: config.bridge_buffer,
          prefix: config.ha_discovery_prefix,
        },
        store,
        broker,
        log: log.child("bridge"),
      })
    : null;
  const discovery = config.ha_discovery
    ? createHaDiscovery({ store, broker, prefix: config.ha_discovery_prefix, version: VERSION, log: log.child("ha") })
    : null;
  const metrics = createMetrics({
    store,
    broker,
    ingest,
    durability: walSync && checkpointer ? { syncs: walSync.stats, checkpoints: checkpointer.stats } : undefined,
    live,
    backups,
    dbPath,
    retentionDays: config.retention_raw_days,
    maxDevices: config.metrics_max_devices,
    bridge: bridge ? () => bridge.figures() : undefined,
    version: VERSION,
    log: log.child("metrics"),
  });
  const configs = createConfigPublisher({ store, broker, homeId: DEFAULT_HOME_ID, log: log.child("config") });
  let mqttPort = 0;
  let mqttsPort: number | null = null;
  let listening = `MQTT on ${config.host}:${config.mqtt_port}`;
  try {
    if (config.mqtt_plain === "on") mqttPort = await broker.listen(config.mqtt_port, config.host);
    listening = `MQTT over TLS on ${config.host}:${config.mqtts_port}`;
    if (tls) mqttsPort = await broker.listenTls(config.mqtts_port, config.host, tls);
  } catch (err) {
    await bridge?.close();
    await broker.close();
    live.close();
    await walSync?.close();
    await checkpointer?.close();
    db.close();
    throw new Error(`listen ${listening}: ${(err as Error).message}`);
  }
  await configs.publishAll();
  const alerts = createAlerts({
    store,
    broker,
    log: log.child("alerts"),
    limits: alertLimits(config),
    timeZone: config.home_timezone,
  });
  await discovery?.publishAll();

  // Outdoor weather, when the home's place is set: fetched in the background, never waited on.
  const weather =
    config.weather_latitude === ""
      ? null
      : createWeather({
          cache: store.weather,
          latitude: Number(config.weather_latitude),
          longitude: Number(config.weather_longitude),
          url: config.weather_url,
          log: log.child("weather"),
          now: options.now,
        });
  const auth = createAuth({ store, settings: config, log: log.child("auth"), now: options.now, hashParams: options.hashParams });
  const mqttWs = createMqttWsBridge(broker, {
    maxPacketBytes: config.mqtt_max_packet_bytes,
    maxOutgoingBytes: config.mqtt_max_outgoing_bytes,
    log: log.child("mqtt-ws"),
  });
  const app = createHttp({
    mqttWs,
    store,
    history,
    stats,
    exporter,
    live,
    broker,
    ingest,
    auth,
    alerts,
    settings: config,
    weather,
    metrics,
    backups,
    log: log.child("http"),
    now: options.now,
    tls: tls?.info ?? null,
  });
  let httpPort = 0;
  let https: ReturnType<typeof Bun.serve> | null = null;
  const tlsOptions = tls ? { cert: tls.cert, key: tls.key } : undefined;
  // Bun refuses a larger body (413) from its Content-Length, and stops reading a chunked one at the limit.
  const maxRequestBodySize = config.http_max_body_bytes;
  try {
    listening = `HTTP on ${config.host}:${config.http_port}`;
    if (config.http_plain === "on") {
      app.listen({ port: config.http_port, hostname: config.host, maxRequestBodySize, websocket: mqttWs.limits });
      httpPort = app.server!.port!;
      listening = `HTTPS on ${config.host}:${config.https_port}`;
      // A second listener for the same app: HTTPS beside plain HTTP.
      if (tlsOptions)
        https = Bun.serve({
          port: config.https_port,
          hostname: config.host,
          tls: tlsOptions,
          maxRequestBodySize,
          // MQTT over WebSockets (wss://…/mqtt) on this listener too: Elysia upgrades only on its own server.
          websocket: { ...mqttWs.limits, open: mqttWs.open, message: mqttWs.message, close: mqttWs.close },
          fetch: (request, server) => (mqttWs.upgrade(request, server) ? undefined : app.fetch(request)),
        });
    } else {
      listening = `HTTPS on ${config.host}:${config.https_port}`;
      app.listen({
        port: config.https_port,
        hostname: config.host,
        tls: tlsOptions,
        maxRequestBodySize,
        websocket: mqttWs.limits,
      });
      https = app.server;
    }
  } catch (err) {
    await app.stop(true).catch(() => {});
    await alerts.close();
    await bridge?.close();
    await broker.close();
    live.close();
    await walSync?.close();
    await checkpointer?.close();
    db.close();
    throw new Error(`listen ${listening}: ${(err as Error).message}`);
  }
  const httpsPort = https?.port ?? null;
  log.info("TechTemp server running", {
    http: config.http_plain === "on" ? httpPort : "off",
    mqtt: config.mqtt_plain === "on" ? mqttPort : "off",
    https: httpsPort ?? undefined,
    mqtts: mqttsPort ?? undefined,
    host: config.host,
    database: dbPath,
  });
  const checkExpiry = () => {
    const warning = expiryWarning(tls?.info ?? null, now(), config.data_dir);
    if (warning) log.warn(warning);
  };
  checkExpiry();
  const expiryTimer = setInterval(checkExpiry, EXPIRY_CHECK_MS);
  expiryTimer.unref?.();
  // No default password: until the owner exists, a one-time link (a new one at each start) sets it up.
  if (!auth.accounts.ownerExists()) {
    const base =
      httpsPort !== null
        ? `https://${reachableHost(config.host)}:${httpsPort}`
        : `http://${reachableHost(config.host)}:${httpPort}`;
    log.info(`first start: create the owner account at ${secretLink(base, "/setup", auth.accounts.newSetupToken())}`);
  }
  const retention = createRetention({ db, days: config.retention_raw_days, log: log.child("retention"), now: options.now });
  retention.start();
  weather?.start();
  backups.start();

  let closing: Promise<void> | null = null;
  return {
    httpPort,
    mqttPort,
    httpsPort,
    mqttsPort,
    tls: tls?.info ?? null,
    config,
    store,
    db,
    broker,
    retention,
    auth,
    alerts,
    backups,
    // A WebSocket route is an upgraded GET (MQTT over WebSockets on /mqtt).
    routes: app.routes.map((r) => `${r.method === "WS" ? "GET" : r.method} ${r.path}`),
    close() {
      closing ??= (async () => {
        log.info("shutting down");
        clearInterval(expiryTimer);
        await retention.stop();
        await weather?.stop();
        await backups.stop();
        // Commit the readings already received and answer their publishers, then stop.
        ingest.drain();
        await walSync?.idle();
        if (https && https !== app.server) https.stop(true);
        await app.stop(true);
        configs.close();
        discovery?.close();
        await bridge?.close();
        metrics.close();
        live.close();
        await alerts.close();
        await broker.close();
        ingest.drain();
        await walSync?.close();
        await checkpointer?.close();
        db.close();
        log.info("stopped", { readings_committed: ingest.stats.committed });
      })();
      return closing;
    },
  };
}

/** `techtemp-server` when installed, `bun server.ts` from source: what the help and errors call it. */
const PROG = programName("server.ts");

const USAGE = usageText(
  PROG,
  [
    ["", "run the server"],
    ["--demo", "the server plus three simulated sensors (bun run demo)"],
    ["inspect [--device UID] [--last N]", "what the database holds, with consistency checks"],
    ["import-legacy PATH [--nulls=zero|skip]", "import the earlier TechTemp's database (server stopped)"],
    ["setup-link", "a one-time link that creates the owner account (first start)"],
    ["reset-password NAME", "a one-time link that sets a new password for an account"],
    ["token create NAME --scope read|write", "an API token (shown once; also an MQTT login for tools)"],
    ["enroll-token [--ttl MINUTES] [--uses N]", "a token that enrolls sensors (install.sh sensor --enroll TOKEN)"],
    ["device-password UID", "a new MQTT password for a device (an earlier agent's device.conf)"],
    ["tls [--name NAME,...] [--ip ADDRESS,...] [--renew] [--new-ca]", "a local CA and a certificate for HTTPS and MQTT over TLS"],
    ["backup", "a backup now (checked, copied to the second target, rotated)"],
    ["restore FILE", "put a backup in place of the database (server stopped; the current one kept aside)"],
    ["--version", "the version"],
  ],
  `settings: environment TECHTEMP_HTTP_PORT, TECHTEMP_MQTT_PORT, TECHTEMP_DATA_DIR, TECHTEMP_HOST, …
          or a config file (TECHTEMP_CONFIG, default /etc/techtemp/server.conf); see README.md`,
);

/** The server's own options; an operator command (the first word) reads its own (lib/server/ops/). */
const SERVER_OPTIONS = {
  help: { type: "boolean", short: "h" },
  demo: { type: "boolean" },
  version: { type: "boolean" },
} as const;

/** The command line: serve (default), the demo, or an operator command. Returns the exit code (2 = bad usage or configuration). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const operator =
    command === "inspect" ||
    command === "import-legacy" ||
    command === "tls" ||
    AUTH_COMMANDS.includes(command as never) ||
    BACKUP_COMMANDS.includes(command as never)
      ? command
      : undefined;
  let demo = false;
  if (operator === undefined) {
    const { values, unexpected } = parseCommandArgs(argv, SERVER_OPTIONS);
    if (command === "help" || values.help) {
      console.log(USAGE);
      return 0;
    }
    if (values.version) {
      console.log(`${PROG} (TechTemp) ${VERSION}`);
      return 0;
    }
    if (unexpected !== undefined) {
      const what = unexpected === command ? "unknown command" : "unexpected argument";
      console.error(`${what} ${JSON.stringify(unexpected)}\n${USAGE}`);
      return 2;
    }
    demo = values.demo === true;
  }
  let config: Config;
  try {
    config = loadConfig({ checkListeners: operator !== "tls" });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  if (operator === "inspect") return runInspect(join(config.data_dir, DB_FILE), rest);
  if (operator === "import-legacy") return runImportLegacy(join(config.data_dir, DB_FILE), rest, { httpPort: config.http_port });
  if (operator === "tls") return runTlsCommand(config, rest);
  if (BACKUP_COMMANDS.includes(operator as never)) return runBackupCommand(operator as "backup" | "restore", rest, config);
  if (operator !== undefined) return runAuthCommand(operator, rest, config);
  // The demo's sensor code is loaded only for the demo.
  if (demo) return (await import("./lib/demo.ts")).runDemo({ start, config });

  // Code that runs now and then stays in the interpreter until the server is busy (lib/server/jit.ts).
  interpretUntilBusy();
  const log = createLog({ level: config.log_level });
  // Listened for before the start: a stop asked for while it runs closes the server once it is up.
  const stopped = new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  let running: Running;
  try {
    running = await start(config, { log });
  } catch (err) {
    console.error(`cannot start: ${(err as Error).message}`);
    return 1;
  }
  compileWhenBusy(running.store, log);
  await stopped;
  await running.close();
  return 0;
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
