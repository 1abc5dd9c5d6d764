// Helpers for the sensor agent's tests: the agent as a real child process
// (`bun sensor.ts` with env) with its log lines, a TCP relay in front of the
// broker so a test can cut or hold the agent's connection, and the readings
// a server stored for a device.

import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { loadDeviceConfig, type AgentConfig } from "../lib/sensor/device-config.ts";
import { hashSecret, newSecret } from "../lib/server/auth/secrets.ts";
import type { Store } from "../lib/server/store/store.ts";
import { waitFor, type TestServer } from "./helpers.ts";

const SENSOR = join(import.meta.dir, "..", "sensor.ts");

/** A child process with its output lines. */
export interface LineProcess {
  proc: ReturnType<typeof Bun.spawn>;
  /** Every line it printed (stdout and stderr). */
  lines: string[];
  /** Resolves with the first line (from index `from`) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** Kills it (default SIGKILL) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<number>;
}

/** A running `bun sensor.ts` with its log lines. */
export interface AgentProcess extends LineProcess {
  /** The `ts` of each reading it logged, in order. */
  taken(): number[];
}

/** Environment for an agent with the simulated sensor talking to 127.0.0.1:`port`. */
export function agentEnv(port: number, dataDir: string, uid: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TECHTEMP_SENSOR_DRIVER: "sim",
    TECHTEMP_DATA_DIR: dataDir,
    TECHTEMP_DEVICE_UID: uid,
    TECHTEMP_MQTT_HOST: "127.0.0.1",
    TECHTEMP_MQTT_PORT: String(port),
    TECHTEMP_INTERVAL_S: "1",
    TECHTEMP_MQTT_RECONNECT_MAX_S: "1",
    // This machine's kernel may call its clock unsynchronised; these tests are not about that.
    TECHTEMP_CLOCK_SYNC_WAIT_S: "0",
    TECHTEMP_LOG_LEVEL: "info",
    ...extra,
  };
}

/**
 * Gives device `uid` its own MQTT secret on `server` (as enrollment does,
 * registering it unplaced when new) and returns the agent's environment
 * for it: username = the uid, password = the secret.
 */
export function sensorLogin(server: { store: Pick<Store, "setDeviceSecret"> }, uid: string): Record<string, string> {
  const secret = newSecret();
  server.store.setDeviceSecret(uid, hashSecret(secret));
  return { TECHTEMP_MQTT_USERNAME: uid, TECHTEMP_MQTT_PASSWORD: secret };
}

/**
 * An enrollment token for `install.sh sensor --enroll` (`techtemp-server
 * enroll-token` makes one the same way), valid an hour for `maxUses` sensors.
 */
export function enrollmentToken(server: { store: Pick<Store, "auth"> }, maxUses = 1): string {
  const token = newSecret();
  server.store.auth.enrollment.create({ tokenHash: hashSecret(token), expiresAt: Date.now() + 3_600_000, maxUses });
  return token;
}

/** Spawns `cmd` with `env` added to the environment, collecting its output lines. */
export function spawnWithLines(cmd: string[], options: { env?: Record<string, string>; cwd?: string } = {}): LineProcess {
  const proc = Bun.spawn(cmd, {
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const lines: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      if (process.env.TECHTEMP_TEST_LOG) for (const p of parts) console.log(`[${proc.pid}] ${p}`);
    }
    if (rest) lines.push(rest);
  };
  void collect(proc.stdout as ReadableStream<Uint8Array>);
  void collect(proc.stderr as ReadableStream<Uint8Array>);
  return {
    proc,
    lines,
    waitForLine: async (pattern, timeoutMs = 15_000, from = 0) =>
      (await waitFor(() => lines.slice(from).find((l) => pattern.test(l)), timeoutMs, `output line ${pattern}`))!,
    async kill(signal = "SIGKILL") {
      proc.kill(signal);
      return await proc.exited;
    },
  };
}

/** Starts `bun sensor.ts [args]` (or another `script`) with `env` added to the environment, in `cwd`. */
export function spawnAgent(
  env: Record<string, string>,
  options: { args?: string[]; cwd?: string; script?: string } = {},
): AgentProcess {
  const child = spawnWithLines(["bun", options.script ?? SENSOR, ...(options.args ?? [])], { env, cwd: options.cwd });
  return {
    ...child,
    taken: () => child.lines.flatMap((l) => (/ sensor: reading .* ts=(\d+)/.exec(l) ? [Number(/ ts=(\d+)/.exec(l)![1])] : [])),
  };
}

/**
 * A TCP relay in front of the broker. The agent connects to the relay's
 * fixed port; the test can point it at a restarted server (whose port
 * changed), refuse connections for a while, or cut the open ones.
 */
export async function startRelay(targetPort: number) {
  let target = targetPort;
  let holding = false;
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    client.on("error", () => {});
    if (holding) return void client.destroy();
    const upstream = connect(target, "127.0.0.1");
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.once("close", () => pairs.delete(pair));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    /** Sends new connections to this port. */
    setTarget(p: number) {
      target = p;
    },
    /** Refuses new connections (closes them at once) until `release()`. */
    hold() {
      holding = true;
    },
    release() {
      holding = false;
    },
    /** Cuts every open connection, as a pulled cable would (no DISCONNECT). */
    cut() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    /** Connections open now. */
    get open() {
      return pairs.size;
    },
    async close() {
      this.cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The relay's interface. */
export type Relay = Awaited<ReturnType<typeof startRelay>>;

/** The timestamps the server stored for a device, oldest first ([] when it does not know it). */
export async function storedTs(server: TestServer, uid: string): Promise<number[]> {
  const { status, body } = await server.api(`/api/v1/devices/${uid}/readings?limit=10000`);
  if (status === 404) return [];
  if (status !== 200) throw new Error(`readings of ${uid}: ${status} ${JSON.stringify(body)}`);
  return (body.data as { ts: string }[]).map((r) => Date.parse(r.ts)).reverse();
}

/** The device as the API shows it, or null. */
export async function deviceOf(server: TestServer, uid: string): Promise<any> {
  const { status, body } = await server.api(`/api/v1/devices/${uid}`);
  return status === 200 ? body.data : null;
}

/** An agent config for in-process tests: the simulated sensor, no device.conf, the environment given. */
export function testAgentConfig(env: Record<string, string>): AgentConfig {
  return loadDeviceConfig({ env, candidates: [] });
}
