// The sensor agent's configuration: the earlier C agent's device.conf, read
// unchanged (same sections, keys, defaults, lookup order and format, see
// DEVICE_CONF below), with environment variables over it. Unknown keys are
// warned about, as the C agent did ("Invalid config at line N"); a bad value
// stops the agent with one line naming the key, the value and where it came
// from.

import { existsSync, readFileSync } from "node:fs";
import { DEFAULT_HOME_ID, ID_PATTERN, INTERVAL_RANGE, OFFSET_RANGE } from "../shared/contract.ts";
import { readIni, type IniRules } from "../shared/ini.ts";
import { LEVELS, type Level } from "../shared/log.ts";
import { uidFromMac } from "./device-uid.ts";

/** The agent's resolved settings. */
export interface AgentConfig {
  /** `[device] device_uid`; derived from the MAC when absent. */
  device_uid: string;
  /** Where the uid came from: "device.conf", "TECHTEMP_DEVICE_UID" or "MAC of eth0"… */
  uid_source: string;
  home_id: string;
  /** Only logged, as before. */
  label: string;
  /** `[sensor] driver`: the real AHT20 or the simulated one. */
  driver: "aht20" | "sim";
  i2c_bus: number;
  i2c_address: number;
  /**
   * `[sensor] libc`: the C library the I2C bus and the clock probe call through
   * bun:ffi (open, ioctl, read, write, close, adjtimex). libc itself on a Pi;
   * tests point it at a simulated AHT20 behind the same C functions.
   */
  libc: string;
  /** `[sensor] read_interval_seconds` */
  interval_s: number;
  temperature_offset: number;
  humidity_offset: number;
  broker_host: string;
  broker_port: number;
  username: string;
  password: string;
  /** `[mqtt] tls`: MQTT over TLS (the server's mqtts port, 8883 by default). */
  tls: boolean;
  /**
   * `[mqtt] ca_file`: the only CA trusted for the server's certificate (the
   * local CA install.sh sensor --tls writes to /etc/techtemp/ca.crt); empty =
   * the system's CAs, for a server with a certificate from a public CA.
   */
  ca_file: string;
  /** Parsed for compatibility; readings always go with QoS 1 (the outbox needs the PUBACK). */
  qos: number;
  keepalive_s: number;
  /** Longest wait between two connection attempts (backoff with jitter up to this). */
  reconnect_max_s: number;
  /** Outbox bound in readings; null = 30 days at the configured interval. */
  outbox_max_readings: number | null;
  /** Most readings per second sent when the outbox drains after an outage. */
  outbox_drain_rate: number;
  /** Readings kept in memory while the outbox's disk is full; beyond it the oldest are dropped. */
  outbox_memory_readings: number;
  /** Seconds readings wait for the system clock to sync before going out flagged; 0 = trust the clock. */
  clock_sync_wait_s: number;
  log_level: Level;
  /** Directory of the outbox (TECHTEMP_DATA_DIR). */
  data_dir: string;
  /** The device.conf read, or null when none was found. */
  file: string | null;
  /** Lines to log as warnings at start (unknown keys, ignored settings). */
  warnings: string[];
}

/** A configuration problem: its message is the one line printed before exiting. */
export class DeviceConfigError extends Error {}

type Parse = (raw: string) => unknown | { error: string };
const bad = (error: string) => ({ error });
const isBad = (v: unknown): v is { error: string } => typeof v === "object" && v !== null && "error" in v;

const wholeNumber =
  (min: number, max: number, what = `a whole number ${min}-${max}`): Parse =>
  (raw) => {
    if (!/^[+-]?\d+$/.test(raw)) return bad(`must be ${what}`);
    const n = Number(raw);
    return n >= min && n <= max ? n : bad(`must be ${what}`);
  };
const decimal =
  (min: number, max: number): Parse =>
  (raw) => {
    const n = raw.trim() === "" ? NaN : Number(raw);
    return Number.isFinite(n) && n >= min && n <= max ? n : bad(`must be a number from ${min} to ${max}`);
  };
const id: Parse = (raw) => (ID_PATTERN.test(raw) ? raw : bad("must be 1-50 characters of A-Z a-z 0-9 _ -"));
const text: Parse = (raw) => raw;
/** The C agent's booleans: true only for the exact string `true`. */
const bool: Parse = (raw) => raw === "true";
/** A boolean of ours, where a typo must not silently mean false (`tls = ture` would send the password in clear). */
const strictBool: Parse = (raw) => (raw === "true" ? true : raw === "false" || raw === "" ? false : bad("must be true or false"));
/** strtol(v, NULL, 0): 0x38, 56 and 070 (octal) all mean the same address. */
const i2cAddress: Parse = (raw) => {
  const n = /^0[xX][0-9a-fA-F]+$/.test(raw)
    ? parseInt(raw.slice(2), 16)
    : /^0[0-7]+$/.test(raw)
      ? parseInt(raw.slice(1), 8)
      : /^\d+$/.test(raw)
        ? Number(raw)
        : NaN;
  // 0x00-0x07 and 0x78-0x7F are reserved by the I2C specification.
  return n >= 0x08 && n <= 0x77 ? n : bad("must be a 7-bit I2C address 0x08-0x77 (the AHT20 is 0x38)");
};

interface Setting {
  section: string;
  key: string;
  /** The AgentConfig field it sets. */
  field: keyof AgentConfig | null;
  parse: Parse;
  env?: string;
}

/**
 * Every key device.conf may hold: the C agent's keys (same sections and
 * defaults) plus ours (`driver`, `[outbox]`, `[clock]`, `reconnect_max_seconds`).
 * Keys with no field are read for compatibility and have no effect.
 */
const SETTINGS: Setting[] = [
  { section: "device", key: "device_uid", field: "device_uid", parse: id, env: "TECHTEMP_DEVICE_UID" },
  { section: "device", key: "home_id", field: "home_id", parse: id, env: "TECHTEMP_HOME_ID" },
  { section: "device", key: "label", field: "label", parse: text },
  {
    section: "sensor",
    key: "driver",
    field: "driver",
    parse: (raw) => (raw === "aht20" || raw === "sim" ? raw : bad("must be aht20 (the real sensor) or sim (simulated)")),
    env: "TECHTEMP_SENSOR_DRIVER",
  },
  { section: "sensor", key: "i2c_address", field: "i2c_address", parse: i2cAddress, env: "TECHTEMP_I2C_ADDRESS" },
  {
    section: "sensor",
    key: "i2c_bus",
    field: "i2c_bus",
    parse: wholeNumber(0, 255, "a bus number 0-255 (/dev/i2c-N)"),
    env: "TECHTEMP_I2C_BUS",
  },
  {
    section: "sensor",
    key: "libc",
    field: "libc",
    parse: (raw) => (raw === "" ? bad("must name a C library (default libc.so.6)") : raw),
    env: "TECHTEMP_LIBC",
  },
  {
    section: "sensor",
    key: "read_interval_seconds",
    field: "interval_s",
    parse: wholeNumber(
      INTERVAL_RANGE[0],
      INTERVAL_RANGE[1],
      `a whole number of seconds ${INTERVAL_RANGE[0]}-${INTERVAL_RANGE[1]}`,
    ),
    env: "TECHTEMP_INTERVAL_S",
  },
  { section: "sensor", key: "temperature_offset", field: "temperature_offset", parse: decimal(OFFSET_RANGE[0], OFFSET_RANGE[1]) },
  { section: "sensor", key: "humidity_offset", field: "humidity_offset", parse: decimal(OFFSET_RANGE[0], OFFSET_RANGE[1]) },
  {
    section: "mqtt",
    key: "broker_host",
    field: "broker_host",
    parse: (raw) => (raw === "" ? bad("must not be empty") : /\s/.test(raw) ? bad("must be a host name or address") : raw),
    env: "TECHTEMP_MQTT_HOST",
  },
  {
    section: "mqtt",
    key: "broker_port",
    field: "broker_port",
    parse: wholeNumber(1, 65535, "a port number 1-65535"),
    env: "TECHTEMP_MQTT_PORT",
  },
  { section: "mqtt", key: "username", field: "username", parse: text, env: "TECHTEMP_MQTT_USERNAME" },
  { section: "mqtt", key: "password", field: "password", parse: text, env: "TECHTEMP_MQTT_PASSWORD" },
  { section: "mqtt", key: "tls", field: "tls", parse: strictBool, env: "TECHTEMP_MQTT_TLS" },
  { section: "mqtt", key: "ca_file", field: "ca_file", parse: text, env: "TECHTEMP_MQTT_CA_FILE" },
  { section: "mqtt", key: "qos", field: "qos", parse: wholeNumber(0, 2, "0, 1 or 2") },
  { section: "mqtt", key: "retain", field: null, parse: bool },
  {
    section: "mqtt",
    key: "keepalive_seconds",
    field: "keepalive_s",
    parse: wholeNumber(0, 65535, "a whole number of seconds 0-65535"),
  },
  {
    section: "mqtt",
    key: "reconnect_max_seconds",
    field: "reconnect_max_s",
    parse: wholeNumber(1, 3600, "a whole number of seconds 1-3600"),
    env: "TECHTEMP_MQTT_RECONNECT_MAX_S",
  },
  {
    section: "logging",
    key: "log_level",
    field: "log_level",
    parse: text,
    env: "TECHTEMP_LOG_LEVEL",
  },
  { section: "logging", key: "log_to_console", field: null, parse: bool },
  { section: "logging", key: "log_to_file", field: null, parse: bool },
  { section: "logging", key: "log_file_path", field: null, parse: text },
  { section: "system", key: "daemon_mode", field: null, parse: bool },
  { section: "system", key: "pid_file", field: null, parse: text },
  {
    section: "outbox",
    key: "max_readings",
    field: "outbox_max_readings",
    parse: wholeNumber(1, 100_000_000, "a whole number of readings 1-100000000"),
    env: "TECHTEMP_OUTBOX_MAX_READINGS",
  },
  {
    section: "outbox",
    key: "drain_rate",
    field: "outbox_drain_rate",
    parse: wholeNumber(1, 100_000, "a whole number of readings per second 1-100000"),
    env: "TECHTEMP_OUTBOX_DRAIN_RATE",
  },
  {
    section: "outbox",
    key: "memory_readings",
    field: "outbox_memory_readings",
    parse: wholeNumber(1, 1_000_000, "a whole number of readings 1-1000000"),
    env: "TECHTEMP_OUTBOX_MEMORY_READINGS",
  },
  {
    section: "clock",
    key: "sync_wait_seconds",
    field: "clock_sync_wait_s",
    parse: wholeNumber(0, 604_800, "a whole number of seconds 0-604800 (0 = trust the clock)"),
    env: "TECHTEMP_CLOCK_SYNC_WAIT_S",
  },
];

/** The defaults: the C agent's (`config_set_defaults`) and ours. */
export const DEVICE_DEFAULTS = {
  home_id: DEFAULT_HOME_ID,
  label: "TechTemp Sensor",
  driver: "aht20" as "aht20" | "sim",
  i2c_address: 0x38,
  i2c_bus: 1,
  libc: "libc.so.6",
  interval_s: 30,
  temperature_offset: 0,
  humidity_offset: 0,
  broker_host: "localhost",
  broker_port: 1883,
  username: "",
  password: "",
  tls: false,
  ca_file: "",
  qos: 1,
  keepalive_s: 60,
  /** Backoff doubles from 1 s up to this, with jitter. */
  reconnect_max_s: 60,
  outbox_max_readings: null as number | null,
  /** Drain fast enough that a day of readings is back in seconds, slow enough not to swamp a Pi Zero server. */
  outbox_drain_rate: 5000,
  /** ~200 B each in memory (1 MB): 42 hours at the default interval while the disk is full. */
  outbox_memory_readings: 5000,
  /** NTP usually syncs within a minute of the network coming up. */
  clock_sync_wait_s: 300,
  log_level: "info" as Level,
};

/** The broker port when `tls = true` and no broker_port is given. */
export const MQTTS_DEFAULT_PORT = 8883;

/** Where device.conf is looked for when no path is given (the C agent's order). */
export const DEFAULT_CONF_CANDIDATES = ["./config/device.conf", "/etc/techtemp/device.conf"];

/** One parsed device.conf: values by field, with where each came from, and warnings. */
export interface ParsedDeviceConf {
  values: Partial<Record<keyof AgentConfig, unknown>>;
  sources: Partial<Record<keyof AgentConfig, string>>;
  warnings: string[];
}

function fail(key: string, raw: string, source: string, problem: string): never {
  throw new DeviceConfigError(`config: ${key} = ${JSON.stringify(raw)} (${source}): ${problem}`);
}

/**
 * device.conf's rules, the C parser's: lines trimmed of space, tab, CR and LF
 * only; `#` first on a line is a comment, and there are no inline comments;
 * `[section]`; `key = value` split at the first `=`; quotes are NOT stripped
 * (the label `"Capteur AHT20 Test"` keeps them; it is only logged).
 */
const DEVICE_CONF: IniRules = { comments: "#", sections: true, trim: "c", unquote: false };

/** Parses device.conf text with the C agent's rules. Throws DeviceConfigError on a bad value. */
export function parseDeviceConf(text: string, path: string): ParsedDeviceConf {
  const out: ParsedDeviceConf = { values: {}, sources: {}, warnings: [] };
  for (const item of readIni(text, DEVICE_CONF)) {
    const where = `${path}:${item.line}`;
    if (item.kind === "section") {
      if (!SETTINGS.some((s) => s.section === item.name))
        out.warnings.push(`${where}: unknown section [${item.name}] (its keys are ignored)`);
      continue;
    }
    if (item.kind === "other") {
      out.warnings.push(`${where}: not "key = value", ignored: ${JSON.stringify(item.text)}`);
      continue;
    }
    const { section, key, value: raw } = item;
    const setting = SETTINGS.find((s) => s.section === section && s.key === key);
    if (!setting) {
      if (section === null) out.warnings.push(`${where}: ${key} is outside any [section], ignored`);
      else if (SETTINGS.some((s) => s.section === section))
        out.warnings.push(`${where}: unknown key ${key} in [${section}], ignored`);
      continue;
    }
    const value = setting.parse(raw);
    if (isBad(value)) fail(key, raw, where, value.error);
    if (setting.field) {
      out.values[setting.field] = value;
      out.sources[setting.field] = where;
    }
  }
  return out;
}

/**
 * Finds device.conf: the path given (an error if it cannot be read), else the
 * first readable candidate, else null (defaults, with a warning).
 */
export function findDeviceConf(
  given: string | undefined,
  candidates = DEFAULT_CONF_CANDIDATES,
): { path: string; text: string } | null {
  if (given !== undefined) {
    try {
      return { path: given, text: readFileSync(given, "utf8") };
    } catch (err) {
      throw new DeviceConfigError(`config: cannot open config file ${given} (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  }
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    try {
      return { path, text: readFileSync(path, "utf8") };
    } catch {
      // Unreadable: the C agent moved on to the next place too.
    }
  }
  return null;
}

/**
 * Resolves the agent's configuration: environment over device.conf over the
 * defaults. Throws DeviceConfigError with one line naming the key and value.
 */
export function loadDeviceConfig(
  options: { path?: string; env?: Record<string, string | undefined>; candidates?: string[]; sysRoot?: string } = {},
): AgentConfig {
  const env = options.env ?? process.env;
  const found = findDeviceConf(options.path, options.candidates);
  const parsed: ParsedDeviceConf = found ? parseDeviceConf(found.text, found.path) : { values: {}, sources: {}, warnings: [] };
  const warnings = [...parsed.warnings];
  if (!found)
    warnings.push(
      `no config file found (looked in ${(options.candidates ?? DEFAULT_CONF_CANDIDATES).join(", ")}); using defaults`,
    );
  const values: Record<string, unknown> = { ...DEVICE_DEFAULTS, ...parsed.values };
  const sources: Record<string, string> = { ...parsed.sources };

  for (const setting of SETTINGS) {
    if (!setting.env || !setting.field) continue;
    const raw = env[setting.env];
    if (raw === undefined) continue;
    const value = setting.parse(raw.trim());
    if (isBad(value)) fail(setting.env, raw, "environment", value.error);
    values[setting.field] = value;
    sources[setting.field] = setting.env;
  }

  const level = (values.log_level as string).toLowerCase();
  if ((LEVELS as readonly string[]).includes(level)) values.log_level = level;
  else {
    // The C agent fell back to INFO; a comment after the value is the usual cause.
    warnings.push(
      `log_level ${JSON.stringify(values.log_level)} is not DEBUG, INFO, WARN or ERROR; using INFO (comments must be on their own line)`,
    );
    values.log_level = "info";
  }
  if (values.qos !== 1) {
    warnings.push(`qos = ${values.qos} is ignored: readings are always sent with QoS 1, so the outbox knows they are stored`);
  }

  // MQTT over TLS has its own port (8883): the default follows `tls` unless a port is given.
  if (values.tls === true && sources.broker_port === undefined) values.broker_port = MQTTS_DEFAULT_PORT;
  if (values.tls === true && values.ca_file !== "") {
    // Read now: a CA file the agent cannot read would otherwise fail every connection, quietly.
    try {
      readFileSync(values.ca_file as string);
    } catch (err) {
      fail(
        "ca_file",
        values.ca_file as string,
        sources.ca_file ?? "default",
        `cannot read it (${(err as NodeJS.ErrnoException).code ?? err}): the server's CA, written by install.sh sensor --tls`,
      );
    }
  }

  let uid = values.device_uid as string | undefined;
  let uidSource = uid === undefined ? "" : sources.device_uid!.startsWith("TECHTEMP_") ? sources.device_uid! : "device.conf";
  if (uid === undefined) {
    const derived = uidFromMac(options.sysRoot);
    if (!derived) {
      throw new DeviceConfigError(
        "config: device_uid is not set and no network interface has a MAC address to derive it from: set device_uid in [device] of device.conf",
      );
    }
    uid = derived.uid;
    uidSource = derived.source;
  }

  return {
    ...(values as Omit<AgentConfig, "device_uid" | "uid_source" | "data_dir" | "file" | "warnings">),
    device_uid: uid,
    uid_source: uidSource,
    data_dir: env.TECHTEMP_DATA_DIR?.trim() || "./data",
    file: found?.path ?? null,
    warnings,
  };
}

/** The outbox bound: the configured one, or 30 days of readings at the interval. */
export function outboxBound(config: Pick<AgentConfig, "outbox_max_readings" | "interval_s">): number {
  return config.outbox_max_readings ?? Math.ceil((30 * 86_400) / config.interval_s);
}
