// Test helpers: a whole server on port 0 in a temp directory, MQTT clients
// with timeouts, and waiting for a condition instead of sleeping.
//
// A server starts with an owner account signed in and a write API token,
// as a real install is used once it is set up: `server.api()` sends the
// token, `server.fetch()` the owner's session (with its CSRF token on writes),
// `connectMqtt` logs in with the token. `startServer({}, { owner: false })`
// is a fresh install instead (no account: reads open, writes refused).

import { afterEach } from "bun:test";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HashParams } from "../lib/server/auth/passwords.ts";
import { hashSecret, newSecret } from "../lib/server/auth/secrets.ts";
import { loadConfig, type Config } from "../lib/server/config.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { openStore, type Store } from "../lib/server/store/store.ts";
import { createLog, type Level } from "../lib/shared/log.ts";
import { start, type Running } from "../server.ts";

/** A temp directory removed by `cleanup()`. */
export function tempDir(prefix = "techtemp-test-"): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** The owner's name and password on a test server. */
export const OWNER = { name: "owner", password: "owner password for tests" } as const;

/** A signed-in session: its Cookie header value and CSRF token. */
export interface TestSession {
  cookie: string;
  csrf: string;
}

/** Who a test request is sent as: the owner's write token (default for `api`), its session (default for `fetch`), another token or session, or nobody. */
export type As = "token" | "session" | "none" | { token: string } | TestSession;

/** MQTT credentials: a username and its password. */
export interface MqttLogin {
  username: string;
  password: string;
}

/**
 * The MQTT login of each server this process started, by its MQTT ports:
 * connectMqtt and mqttLoginArgs use it unless told otherwise (anonymous
 * clients are refused on a new install).
 */
const mqttLogins = new Map<number, MqttLogin>();

let tokenCount = 0;

/** Creates an API token (write scope unless told) in `store`; its name and secret are the MQTT username and password. */
export function createToken(store: Pick<Store, "auth">, scope: "read" | "write" = "write", name?: string): MqttLogin {
  const secret = newSecret("tt_");
  const username = name ?? `test-${process.pid}-${++tokenCount}`;
  store.auth.tokens.create({ name: username, scope, tokenHash: hashSecret(secret), prefix: secret.slice(0, 7) });
  return { username, password: secret };
}

/** The login tests use on the server at `port` (its write token), or undefined for a server they did not start. */
export const mqttLogin = (port: number): MqttLogin | undefined => mqttLogins.get(port);

/** `-u NAME -P TOKEN` for mosquitto_pub/mosquitto_sub on the server at `port`. */
export function mqttLoginArgs(port: number): string[] {
  const login = mqttLogins.get(port);
  return login ? ["-u", login.username, "-P", login.password] : [];
}

/** A server started for one test, with its log lines captured. */
export interface TestServer extends Running {
  /** http://127.0.0.1:port */
  url: string;
  dataDir: string;
  /** Every log line so far. */
  logs: string[];
  /** The owner's write API token (also its MQTT login: user `test`); "" without an owner. */
  token: string;
  /** The owner's session cookie (`techtemp_session=…`); "" without an owner. */
  cookie: string;
  /** The owner's session's CSRF token. */
  csrf: string;
  /** The MQTT login of the write token (user = the token's name, password = the token); null without an owner. */
  mqttLogin: { username: string; password: string } | null;
  /** The same as mosquitto_pub/mosquitto_sub arguments (`-u NAME -P TOKEN`); none without an owner. */
  mosquittoLogin: string[];
  /** GET/POST… JSON helper (as the owner's token unless `as` says otherwise): returns status and parsed body. */
  api(path: string, init?: { method?: string; body?: unknown; as?: As }): Promise<{ status: number; body: any }>;
  /** fetch() of a path as the owner's session (a write carries its CSRF token), or `as`. */
  fetch(path: string, init?: RequestInit & { as?: As }): Promise<Response>;
  /** A new account signed in (a viewer unless told), with its session. */
  signIn(name: string, role?: "owner" | "viewer"): Promise<TestSession>;
  /** Closes the server and removes its data dir (unless keepData). */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

/** How many servers of this process started on a data directory that had a test token already. */
let reused = 0;

/** The argon2id hash of OWNER.password, computed once per test process (each hash takes tens of ms). */
let ownerHash: Promise<string> | null = null;
const passwordHash = () =>
  (ownerHash ??= Bun.password.hash(OWNER.password, { algorithm: "argon2id", memoryCost: 19456, timeCost: 2 }));

/** Headers that send a request as `as` (a session's write adds its CSRF token and its own Origin). */
export function authHeaders(
  server: Pick<TestServer, "token" | "cookie" | "csrf" | "url">,
  as: As,
  write: boolean,
): Record<string, string> {
  if (as === "none") return {};
  if (as === "token") return server.token ? { authorization: `Bearer ${server.token}` } : {};
  const session = as === "session" ? { cookie: server.cookie, csrf: server.csrf } : as;
  if ("token" in session) return { authorization: `Bearer ${session.token}` };
  if (!session.cookie) return {};
  return write ? { cookie: session.cookie, "x-csrf-token": session.csrf, origin: server.url } : { cookie: session.cookie };
}

/**
 * Starts a real server on 127.0.0.1 with ports 0 and a fresh temp data dir
 * (or `dataDir`). The environment is ignored so a developer's TECHTEMP_*
 * variables cannot leak into tests.
 */
export async function startServer(
  overrides: Partial<Config> = {},
  options: {
    dataDir?: string;
    now?: () => number;
    logLevel?: Level;
    echo?: boolean;
    /** With an owner account signed in and a write token (default); false: a fresh install. */
    owner?: boolean;
    /** The password hash's cost (a throttling test makes many sign-ins). */
    hashParams?: HashParams;
  } = {},
): Promise<TestServer> {
  const dir = options.dataDir ? { path: options.dataDir, cleanup() {} } : tempDir();
  const config = loadConfig({
    env: {},
    // The home's zone is UTC unless a test names one: a developer's own zone must not change what tests see.
    overrides: { http_port: 0, mqtt_port: 0, host: "127.0.0.1", data_dir: dir.path, home_timezone: "UTC", ...overrides },
  });
  const logs: string[] = [];
  const log = createLog({
    level: options.logLevel ?? "debug",
    sink: (line) => {
      logs.push(line);
      if (options.echo || process.env.TECHTEMP_TEST_LOG) console.log(line);
    },
  });
  const running = await start(config, { log, now: options.now, hashParams: options.hashParams });
  const url = `http://127.0.0.1:${running.httpPort}`;
  const { auth } = running;

  async function signIn(name: string, role: "owner" | "viewer" = "viewer"): Promise<TestSession> {
    const existing = auth.users.byName(name);
    const id = existing ? existing.id : auth.users.create({ name, role, passwordHash: await passwordHash() });
    const session = auth.sessions.create(id);
    return { cookie: `techtemp_session=${session.id}`, csrf: session.csrf };
  }

  let owner: TestSession = { cookie: "", csrf: "" };
  let token = "";
  let login: MqttLogin | null = null;
  if (options.owner !== false) {
    owner = await signIn(OWNER.name, "owner");
    // A data directory reused from an earlier server of the test has its "test" token already.
    const name = auth.tokens.list().some((t) => t.name === "test") ? `test-${++reused}` : "test";
    token = auth.tokens.create(name, "write").token;
    login = { username: name, password: token };
    for (const port of [running.mqttPort, running.mqttsPort]) if (port) mqttLogins.set(port, login);
  }
  const self = { token, cookie: owner.cookie, csrf: owner.csrf, url };

  return {
    ...running,
    url,
    dataDir: dir.path,
    logs,
    token,
    cookie: owner.cookie,
    csrf: owner.csrf,
    mqttLogin: login,
    mosquittoLogin: login ? ["-u", login.username, "-P", login.password] : [],
    signIn,
    fetch(path, init = {}) {
      const { as = "session", ...rest } = init;
      const write = (rest.method ?? "GET").toUpperCase() !== "GET";
      const headers = { ...authHeaders(self, as, write), ...Object.fromEntries(new Headers(rest.headers).entries()) };
      return fetch(url + path, { signal: AbortSignal.timeout(10_000), ...rest, headers });
    },
    async api(path, init = {}) {
      const method = init.method ?? (init.body === undefined ? "GET" : "POST");
      const res = await fetch(url + path, {
        method,
        headers: {
          ...authHeaders(self, init.as ?? "token", method !== "GET"),
          ...(init.body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body };
    },
    async stop(opts = {}) {
      for (const port of [running.mqttPort, running.mqttsPort]) if (port) mqttLogins.delete(port);
      await running.close();
      if (!opts.keepData) dir.cleanup();
    },
  };
}

/**
 * Resolves when `check` returns a truthy value; rejects after `timeoutMs`.
 * It checks every 20 ms at first, then less often as the wait goes on (at
 * most every `maxPollMs`): a long wait under a loaded machine must not add
 * to the load (a check may run a process or an HTTP request).
 */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = "condition", maxPollMs = 100): Promise<T> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`,
      );
    }
    await Bun.sleep(Math.min(maxPollMs, 20 + (Date.now() - started) / 10));
  }
}

/** Rejects if `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/**
 * Connects an MQTT.js client to 127.0.0.1:port; rejects after 5 s. It logs in
 * with the test server's write token unless `options` has a `username` of its
 * own (`username: undefined` connects anonymously).
 */
export async function connectMqtt(port: number, options: IClientOptions = {}): Promise<MqttClient> {
  const login = "username" in options ? {} : (mqttLogins.get(port) ?? {});
  const client = mqtt.connect({
    host: "127.0.0.1",
    port,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...login,
    ...options,
  });
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        client.once("connect", () => resolve());
        client.once("error", reject);
      }),
      5000,
      `MQTT connect to port ${port}`,
    );
  } catch (err) {
    client.end(true);
    throw err;
  }
  return client;
}

/**
 * Opens a raw TCP connection to the broker: `received()` is every byte it has
 * received so far; `closed` resolves when it closes, with the same bytes.
 */
export async function rawConnection(port: number): Promise<{ socket: Socket; received(): Buffer; closed: Promise<Buffer> }> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await withTimeout(new Promise((r) => socket.once("connect", r)), 5000, "TCP connect");
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  const received = () => Buffer.concat(chunks);
  const closed = new Promise<Buffer>((resolve) => socket.once("close", () => resolve(received())));
  return { socket, received, closed };
}

/** Publishes and resolves on PUBACK (QoS 1); rejects after `timeoutMs`. */
export function publishAcked(
  client: MqttClient,
  topic: string,
  payload: string,
  timeoutMs = 5000,
  retain = false,
): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve, reject) => {
      client.publish(topic, payload, { qos: 1, retain }, (err) => (err ? reject(err) : resolve()));
    }),
    timeoutMs,
    `PUBACK for ${topic}`,
  );
}

/** Ends an MQTT.js client, waiting at most 2 s. */
export async function endMqtt(client: MqttClient, force = false): Promise<void> {
  await withTimeout(new Promise<void>((resolve) => client.end(force, {}, () => resolve())), 2000, "MQTT end").catch(() =>
    client.end(true),
  );
}

/** A TCP port free on 127.0.0.1 right now (for a process that cannot be told to use port 0). */
export function freePort(): number {
  return freePorts(1)[0]!;
}

/** `count` different TCP ports free on 127.0.0.1 right now (all held open until each is picked, so none repeats). */
export function freePorts(count: number): number[] {
  const servers = Array.from({ length: count }, () => Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }));
  const ports = servers.map((s) => s.port);
  for (const s of servers) s.stop(true);
  return ports;
}

/** Runs a command with a timeout (60 s unless given: the machine may be busy with other tests); returns exit code and output. */
export async function run(
  cmd: string[],
  options: { timeoutMs?: number; env?: Record<string, string | undefined>; stdin?: string; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(cmd, {
    stdout: "pipe",
    stderr: "pipe",
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    env: options.env ? ({ ...process.env, ...options.env } as Record<string, string>) : process.env,
    cwd: options.cwd,
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A reading payload exactly as the earlier agent formats it. */
export const legacyPayload = (temperature: number, humidity: number, ts: number) =>
  `{"temperature_c":${temperature.toFixed(2)},"humidity_pct":${humidity.toFixed(2)},"ts":${ts}}`;

/** The reading topic of a device. */
export const readingTopic = (uid: string, home = "home-001") => `home/${home}/sensors/${uid}/reading`;

/** A server running as a child process (`bun server.ts`), for crash, signal and exit-code tests. */
export interface ChildServer {
  proc: ReturnType<typeof Bun.spawn>;
  httpPort: number;
  mqttPort: number;
  url: string;
  /** A write API token, the default MQTT login for this server's port. */
  token: MqttLogin;
  /** stdout + stderr so far. */
  output(): string;
  /** Sends a signal and waits (at most 15 s) for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/**
 * Starts `bun server.ts` with its data in `dataDir` on ports 0 (or the given
 * ones) and waits for the line that reports the bound ports.
 */
export async function spawnServer(
  dataDir: string,
  env: Record<string, string> = {},
  args: string[] = [],
  startTimeoutMs = 60_000,
): Promise<ChildServer> {
  const proc = Bun.spawn(["bun", "server.ts", ...args], {
    cwd: `${import.meta.dir}/..`,
    env: {
      ...process.env,
      TECHTEMP_CONFIG: "/dev/null",
      TECHTEMP_DATA_DIR: dataDir,
      TECHTEMP_HOST: "127.0.0.1",
      TECHTEMP_HTTP_PORT: "0",
      TECHTEMP_MQTT_PORT: "0",
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out += decoder.decode(chunk);
  };
  void pump(proc.stdout as ReadableStream<Uint8Array>);
  void pump(proc.stderr as ReadableStream<Uint8Array>);
  // An exit ends the wait at once (a check that threw would be retried until the timeout).
  const match = await waitFor(
    () => (proc.exitCode !== null ? "exited" : /server running http=(\d+) mqtt=(\d+)/.exec(out)),
    startTimeoutMs,
    "the server to start",
  ).catch((err) => {
    proc.kill("SIGKILL");
    throw err;
  });
  if (match === "exited") throw new Error(`server exited with ${proc.exitCode}: ${out}`);
  const httpPort = Number(match![1]);
  const mqttPort = Number(match![2]);
  // A token for its MQTT clients, through the store beside the running server (SQLite WAL allows it).
  const store = openStore(join(dataDir, DB_FILE));
  let token: MqttLogin;
  try {
    token = createToken(store);
  } finally {
    store.close();
  }
  mqttLogins.set(mqttPort, token);
  return {
    proc,
    httpPort,
    mqttPort,
    token,
    url: `http://127.0.0.1:${httpPort}`,
    output: () => out,
    async stop(signal = "SIGTERM") {
      mqttLogins.delete(mqttPort);
      if (proc.exitCode === null) proc.kill(signal);
      return withTimeout(proc.exited, 15_000, `server exit after ${signal}`).catch(() => {
        proc.kill("SIGKILL");
        return -1;
      });
    },
  };
}

/**
 * Registers, for the test file that calls it, an afterEach that runs what was
 * given to the returned function during the test, the newest first.
 */
export function deferAfterEach(): (fn: () => unknown) => void {
  let pending: (() => unknown)[] = [];
  afterEach(async () => {
    const now = pending.reverse();
    pending = [];
    for (const fn of now) await fn();
  });
  return (fn) => void pending.push(fn);
}

/** A test server without the daily backup's timer (`backup_time = off`), stopped after the test through `defer`. */
export async function startServerWithoutBackups(
  defer: (fn: () => unknown) => void,
  overrides: Parameters<typeof startServer>[0] = {},
): Promise<TestServer> {
  const s = await startServer({ backup_time: "off", ...overrides });
  defer(() => s.stop());
  return s;
}
