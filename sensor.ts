// TechTemp sensor agent: reads the AHT20 and publishes over MQTT, never losing
// a reading (lib/sensor/agent.ts). This file only wires: parse the command line and
// device.conf, open the outbox, start the agent, trap SIGTERM, stop cleanly.
//
//   bun sensor.ts [device.conf]         run the agent
//   bun sensor.ts check [device.conf]   probe I2C and the AHT20; exit 0 ok, 1 problem
//   bun sensor.ts uid [device.conf]     print this device's uid
//   bun sensor.ts status [device.conf]  when the server last stored a reading (exit 1: never yet)

import { createSystemClock, probeKernelClock } from "./lib/sensor/clock.ts";
import { DeviceConfigError, loadDeviceConfig, outboxBound, type AgentConfig } from "./lib/sensor/device-config.ts";
import { createLog } from "./lib/shared/log.ts";
import { openOutbox, outboxPath, readOutboxStatus } from "./lib/sensor/outbox.ts";
import { programName, usageText, VERSION } from "./lib/shared/program.ts";

/** `dir` made absolute against the working directory (node:path's resolve, for the paths device.conf holds). */
function absolute(dir: string): string {
  return dir.startsWith("/") ? dir : `${process.cwd()}/${dir}`.replace(/\/(\.\/)+/g, "/");
}

/** `techtemp-sensor` when installed, `bun sensor.ts` from source: what the help and errors call it. */
const PROG = programName("sensor.ts");

const USAGE = usageText(
  PROG,
  [
    ["[device.conf]", "run the agent"],
    ["check [device.conf]", "probe I2C and the AHT20, say what to fix (exit 0 ok, 1 problem)"],
    ["uid [device.conf]", "print the device uid"],
    ["status [device.conf]", "when the server last stored (acknowledged) a reading; exit 1 if never"],
    ["--version", "the version"],
  ],
  `device.conf: the argument, else ./config/device.conf, else /etc/techtemp/device.conf
environment: TECHTEMP_SENSOR_DRIVER (aht20|sim), TECHTEMP_DATA_DIR, TECHTEMP_DEVICE_UID, TECHTEMP_HOME_ID,
  TECHTEMP_MQTT_HOST, TECHTEMP_MQTT_PORT, TECHTEMP_MQTT_USERNAME, TECHTEMP_MQTT_PASSWORD, TECHTEMP_INTERVAL_S,
  TECHTEMP_I2C_BUS, TECHTEMP_I2C_ADDRESS, TECHTEMP_LIBC, TECHTEMP_OUTBOX_MAX_READINGS, TECHTEMP_OUTBOX_DRAIN_RATE, TECHTEMP_OUTBOX_MEMORY_READINGS,
  TECHTEMP_CLOCK_SYNC_WAIT_S, TECHTEMP_MQTT_RECONNECT_MAX_S, TECHTEMP_LOG_LEVEL`,
);

/** The command line. Returns the exit code (2 = bad usage or configuration). */
export async function main(argv: string[]): Promise<number> {
  // Read by hand, not with node:util's parseArgs: node:util and node:path cost the agent 0.7 MB of memory for life.
  // Help only as the whole first argument (`help`, `--help`, `-h`): anywhere else it is an unknown argument.
  if (argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (argv[0] === "--version" && argv.length === 1) {
    console.log(`${PROG} (TechTemp) ${VERSION}`);
    return 0;
  }
  // No options otherwise; `-` and everything after `--` are refused as well, so a path never starts with a dash.
  const dashed = argv.find((a) => a.startsWith("-"));
  const command = ["check", "uid", "status"].includes(argv[0] ?? "") ? argv[0]! : "run";
  const [path, extra] = command === "run" ? argv : argv.slice(1);
  const unknown = dashed ?? extra;
  if (unknown !== undefined) {
    console.error(`sensor: unknown argument ${JSON.stringify(unknown)} (try: ${PROG} --help)`);
    return 2;
  }

  let config: AgentConfig;
  try {
    config = loadDeviceConfig({ path });
  } catch (err) {
    if (err instanceof DeviceConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }

  if (command === "uid") {
    console.log(config.device_uid);
    return 0;
  }
  if (command === "status") {
    // From the outbox, read-only beside the running agent: a PUBACK means the
    // server stored the reading, so this needs no account on the server.
    const path = outboxPath(absolute(config.data_dir), config.device_uid);
    const status = readOutboxStatus(path);
    if (status?.lastStoredAt == null) {
      console.error(`${config.device_uid}: no reading stored by the server yet (outbox ${path})`);
      return 1;
    }
    console.log(
      `${config.device_uid}: last reading stored by the server at ${new Date(status.lastStoredAt).toISOString()}; ${status.waiting} in the outbox (acknowledged ones leave it with the next reading)`,
    );
    return 0;
  }
  if (command === "check") {
    // The probe only: no MQTT. Its code runs once, so it is not compiled either.
    Bun.unsafe.setJITPolicy(JIT_POLICY);
    const { checkSensor } = await import("./lib/sensor/probe.ts");
    const result = await checkSensor(config);
    (result.ok ? console.log : console.error)(result.message);
    return result.ok ? 0 : 1;
  }
  return run(config);
}

/**
 * JavaScriptCore's tier-up thresholds are multiplied by this: the agent's code
 * runs a few times a minute, where JIT-compiled code buys nothing and costs
 * memory (~4 MB idle, ~10 MB while draining an outbox; bench/agent.ts). The
 * interpreter still drains well above the 2,000 readings/s goal.
 */
const JIT_POLICY = 1_000_000;

/** Loads the agent (MQTT.js and all) after the JIT policy is set, so its start-up code is not compiled either. */
async function loadAgent() {
  Bun.unsafe.setJITPolicy(JIT_POLICY);
  const [agent, probe] = await Promise.all([import("./lib/sensor/agent.ts"), import("./lib/sensor/probe.ts")]);
  return { ...agent, ...probe };
}

/**
 * Runs the agent until SIGTERM, SIGINT or SIGHUP. `outboxAcks` "each" deletes
 * every acknowledged reading in its own fsync'd commit, as before issue 17:
 * only bench/writes.ts's reference (bench/writes-agent.ts) passes it.
 */
export async function run(config: AgentConfig, options: { outboxAcks?: "batched" | "each" } = {}): Promise<number> {
  const { AGENT_VERSION, createAgent, createSensor, describeKernelClock } = await loadAgent();
  const log = createLog({ level: config.log_level, name: "sensor" });
  for (const warning of config.warnings) log.warn(`config: ${warning}`);
  const path = outboxPath(absolute(config.data_dir), config.device_uid);
  let outbox;
  try {
    outbox = openOutbox(path, {
      maxReadings: outboxBound(config),
      memoryReadings: config.outbox_memory_readings,
      log: log.child("outbox"),
      acks: options.outboxAcks,
    });
  } catch (err) {
    console.error(`cannot start: ${(err as Error).message} (set TECHTEMP_DATA_DIR to a writable directory)`);
    return 1;
  }
  const agent = createAgent({
    config,
    sensor: createSensor(config),
    outbox,
    clock: createSystemClock({ trust: config.clock_sync_wait_s === 0, library: config.libc }),
    log,
  });
  log.info("TechTemp sensor agent starting", {
    version: AGENT_VERSION,
    device_uid: config.device_uid,
    uid_from: config.uid_source,
    home_id: config.home_id,
    label: config.label,
    driver: config.driver,
    interval_s: config.interval_s,
    broker: `${config.broker_host}:${config.broker_port}`,
    config: config.file ?? "defaults",
    outbox: path,
    queued: outbox.count,
  });
  if (config.clock_sync_wait_s > 0) {
    // Said once at start: an agent that cannot ask the kernel (no bun:ffi, a
    // seccomp filter without adjtimex) holds readings for the timesync file only.
    const clock = probeKernelClock(config.libc);
    if (clock.state === "unknown" && process.platform === "linux") log.error(describeKernelClock(clock));
    else log.info(describeKernelClock(clock));
  }
  agent.start();
  await new Promise<void>((done) => {
    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.once(signal, () => done());
  });
  log.info("stopping");
  await agent.stop();
  const { commits, syncedCommits, memoryDropped, lost } = outbox.stats;
  // unsent: kept in the outbox for the next start; lost: readings a full disk could not take (dropped from memory, or in it now).
  log.info("stopped", {
    readings: agent.stats.readings,
    unsent: outbox.count,
    lost: memoryDropped + lost || undefined,
    commits,
    synced_commits: syncedCommits,
  });
  return 0;
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
