// TechTemp server: ONE process with the MQTT broker, the SQLite store, the
// JSON API and the web pages. This file only wires them together (like WTF
// Dial's main.go): parse config, open the store, start the broker, start
// HTTP, trap SIGTERM, close in reverse order.
//
//   bun server.ts                 run the server (config: env over file over defaults)
//   bun server.ts --demo          the server plus three simulated sensors
//   bun server.ts inspect [...]   what the database holds (safe beside a live server)
//   bun server.ts import-legacy PATH   import the earlier TechTemp's SQLite database

import { join } from "node:path";
import { createAuth, type Auth } from "./lib/server/auth/auth.ts";
import type { HashParams } from "./lib/server/auth/passwords.ts";
import { reachableHost, secretLink } from "./lib/server/auth/setup.ts";
import { createHttp } from "./lib/server/http/app.ts";
import { AUTH_COMMANDS, runAuthCommand } from "./lib/server/ops/auth-commands.ts";
import { createBroker, type Broker } from "./lib/server/mqtt/broker.ts";
import { ConfigError, loadConfig, type Config } from "./lib/server/config.ts";
import { DEFAULT_HOME_ID } from "./lib/shared/contract.ts";
import { DB_FILE, openDatabase } from "./lib/server/store/db.ts";
import { createIngest } from "./lib/server/mqtt/ingest.ts";
import { parseCommandArgs } from "./lib/server/ops/args.ts";
import { runInspect } from "./lib/server/ops/inspect.ts";
import { runImportLegacy } from "./lib/server/ops/legacy-import.ts";
import { createLog, type Log } from "./lib/shared/log.ts";
import { createConfigPublisher } from "./lib/server/mqtt/config-publisher.ts";
import { createExport } from "./lib/server/history/export.ts";
import { createHistory } from "./lib/server/history/history.ts";
import { createLive } from "./lib/server/live/live.ts";
import { createRetention, ensureIncrementalVacuum, type Retention } from "./lib/server/store/retention.ts";
import { createStats } from "./lib/server/history/stats.ts";
import { createStore, type Store } from "./lib/server/store/store.ts";
import { backupSettings, createBackups, type Backups } from "./lib/server/backup/backups.ts";
import { checkAtStart } from "./lib/server/backup/startup.ts";
import { createMetrics } from "./lib/server/metrics/metrics.ts";
import { createBridge } from "./lib/server/mqtt/bridge.ts";
import { createHaDiscovery } from "./lib/server/mqtt/ha-discovery.ts";
import pkg from "./package.json" with { type: "json" };
import { BACKUP_COMMANDS, runBackupCommand } from "./lib/server/ops/backup-commands.ts";

/** A running server. */
export interface Running {
  httpPort: number;
  mqttPort: number;
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
  /** Scheduled and manual backups (tests run one and wait for it). */
  backups: Backups;
  /** Every HTTP route as `METHOD /pattern` (test/auth-matrix.test.ts checks each against the guard). */
  routes: string[];
  /** Stops accepting, commits what is in flight, closes HTTP, broker and database. */
  close(): Promise<void>;
}

/** Starts the whole server with a resolved config. Tests use port 0 and a temp data dir. */
export async function start(
  config: Config,
  options: { log?: Log; now?: () => number; hashParams?: HashParams } = {},
): Promise<Running> {
  const log = options.log ?? createLog({ level: config.log_level });
  const dbPath = join(config.data_dir, DB_FILE);
  const backupPlaces = backupSettings(config);
  // A damaged database stops the start with one message naming the newest good backup and the restore command.
  checkAtStart(
    dbPath,
    [backupPlaces.dir, ...(backupPlaces.secondDir ? [backupPlaces.secondDir] : [])],
    (options.now ?? Date.now)(),
  );
  const db = openDatabase(dbPath);
  // Before anything else uses the database: retention returns freed pages to the file system.
  try {
    ensureIncrementalVacuum(db, log.child("retention"));
  } catch (err) {
    db.close();
    throw err;
  }
  const store = createStore(db, { now: options.now, log: log.child("store") });
  const history = createHistory(store.history);
  const stats = createStats(store.history, history);
  const exporter = createExport(store.history, history);
  const live = createLive({ store, log: log.child("live") });
  const backups = createBackups({
    source: dbPath,
    records: store.backups,
    settings: backupPlaces,
    log: log.child("backup"),
    now: options.now,
  });
  const ingest = createIngest({ store, log: log.child("ingest") });

  const broker = await createBroker({
    store,
    ingest,
    log: log.child("broker"),
    now: options.now,
    options: {
      maxPacketBytes: config.mqtt_max_packet_bytes,
      connectTimeoutMs: config.mqtt_connect_timeout_s * 1000,
      maxClientIdLength: config.mqtt_max_client_id,
      maxClients: config.mqtt_max_clients,
    },
  });
  // The bridge first: it mirrors the retained state (statuses, discovery) as it is published.
  const bridge = config.bridge_url
    ? createBridge({
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
    ? createHaDiscovery({ store, broker, prefix: config.ha_discovery_prefix, version: pkg.version, log: log.child("ha") })
    : null;
  const metrics = createMetrics({
    store,
    broker,
    ingest,
    live,
    backups,
    dbPath,
    retentionDays: config.retention_raw_days,
    maxDevices: config.metrics_max_devices,
    bridge: bridge ? () => bridge.figures() : undefined,
    version: pkg.version,
    log: log.child("metrics"),
  });
  const configs = createConfigPublisher({ store, broker, homeId: DEFAULT_HOME_ID, log: log.child("config") });
  let mqttPort: number;
  try {
    mqttPort = await broker.listen(config.mqtt_port, config.host);
  } catch (err) {
    await bridge?.close();
    await broker.close();
    db.close();
    throw new Error(`listen MQTT on ${config.host}:${config.mqtt_port}: ${(err as Error).message}`);
  }
  await configs.publishAll();
  await discovery?.publishAll();

  const auth = createAuth({ store, settings: config, log: log.child("auth"), now: options.now, hashParams: options.hashParams });
  const app = createHttp({
    store,
    history,
    stats,
    exporter,
    live,
    broker,
    ingest,
    auth,
    settings: config,
    tls: null,
    metrics,
    backups,
    log: log.child("http"),
    now: options.now,
  });
  try {
    app.listen({ port: config.http_port, hostname: config.host });
  } catch (err) {
    await bridge?.close();
    await broker.close();
    db.close();
    throw new Error(`listen HTTP on ${config.host}:${config.http_port}: ${(err as Error).message}`);
  }
  const httpPort = app.server!.port!;
  log.info("TechTemp server running", { http: httpPort, mqtt: mqttPort, host: config.host, database: dbPath });
  // No default password: until the owner exists, a one-time link (a new one at each start) sets it up.
  if (!auth.accounts.ownerExists()) {
    const link = secretLink(`http://${reachableHost(config.host)}:${httpPort}`, "/setup", auth.accounts.newSetupToken());
    log.info(`first start: create the owner account at ${link}`);
  }
  const retention = createRetention({ db, days: config.retention_raw_days, log: log.child("retention"), now: options.now });
  retention.start();
  backups.start();

  let closing: Promise<void> | null = null;
  return {
    httpPort,
    mqttPort,
    config,
    store,
    db,
    broker,
    retention,
    auth,
    backups,
    routes: app.routes.map((r) => `${r.method} ${r.path}`),
    close() {
      closing ??= (async () => {
        log.info("shutting down");
        await retention.stop();
        await backups.stop();
        // Commit the readings already received and answer their publishers, then stop.
        ingest.drain();
        await app.stop(true);
        configs.close();
        discovery?.close();
        await bridge?.close();
        metrics.close();
        live.close();
        await broker.close();
        ingest.drain();
        db.close();
        log.info("stopped", { readings_committed: ingest.stats.committed });
      })();
      return closing;
    },
  };
}

const USAGE = `usage:
  bun server.ts                         run the server
  bun server.ts --demo                  the server plus three simulated sensors (bun run demo)
  bun server.ts inspect [--device UID] [--last N]
                                        what the database holds, with consistency checks
  bun server.ts import-legacy PATH [--nulls=zero|skip]
                                        import the earlier TechTemp's database (server stopped)
  bun server.ts setup-link              a one-time link that creates the owner account (first start)
  bun server.ts reset-password NAME     a one-time link that sets a new password for an account
  bun server.ts token create NAME --scope read|write
                                        an API token (shown once; also an MQTT login for tools)
  bun server.ts enroll-token [--ttl MINUTES] [--uses N]
                                        a token that enrolls sensors (install.sh sensor --enroll TOKEN)
  bun server.ts device-password UID     a new MQTT password for a device (an earlier agent's device.conf)
  bun server.ts backup                  a backup now (checked, copied to the second target, rotated)
  bun server.ts restore FILE            put a backup in place of the database (server stopped; the current one kept aside)
settings: environment TECHTEMP_HTTP_PORT, TECHTEMP_MQTT_PORT, TECHTEMP_DATA_DIR, TECHTEMP_HOST, …
          or a config file (TECHTEMP_CONFIG, default /etc/techtemp/server.conf); see README.md`;

/** The server's own options; an operator command (the first word) reads its own (lib/server/ops/). */
const SERVER_OPTIONS = { help: { type: "boolean", short: "h" }, demo: { type: "boolean" } } as const;

/** The command line: serve (default), the demo, or an operator command. Returns the exit code (2 = bad usage or configuration). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const operator =
    command === "inspect" ||
    command === "import-legacy" ||
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
    if (unexpected !== undefined) {
      const what = unexpected === command ? "unknown command" : "unexpected argument";
      console.error(`${what} ${JSON.stringify(unexpected)}\n${USAGE}`);
      return 2;
    }
    demo = values.demo === true;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  if (operator === "inspect") return runInspect(join(config.data_dir, DB_FILE), rest);
  if (operator === "import-legacy") return runImportLegacy(join(config.data_dir, DB_FILE), rest, { httpPort: config.http_port });
  if (BACKUP_COMMANDS.includes(operator as never)) return runBackupCommand(operator as "backup" | "restore", rest, config);
  if (operator !== undefined) return runAuthCommand(operator, rest, config);
  // The demo's sensor code is loaded only for the demo.
  if (demo) return (await import("./lib/demo.ts")).runDemo({ start, config });

  let running: Running;
  try {
    running = await start(config);
  } catch (err) {
    console.error(`cannot start: ${(err as Error).message}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await running.close();
  return 0;
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
