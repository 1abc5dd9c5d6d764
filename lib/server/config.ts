// Server configuration in one place: environment over file over defaults.
//
// The file (TECHTEMP_CONFIG, default /etc/techtemp/server.conf when it exists)
// holds `key = value` lines with the names below (lib/shared/ini.ts); a line
// starting with `#` or `;` is a comment.
// Each key also has an environment variable: TECHTEMP_ + the key in capitals
// (http_port -> TECHTEMP_HTTP_PORT). Environment variables win.
// A bad value stops start-up with one line naming the setting and the value.

import { accessSync, constants, existsSync, mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { readIni, type IniRules } from "../shared/ini.ts";
import { LEVELS, type Level } from "../shared/log.ts";
import { canonicalZone, systemTimeZone } from "./history/zone.ts";

/** Every server setting, with its default. */
export const defaults = {
  /** HTTP port for the API and the web pages; 0 = any free port. */
  http_port: 3000,
  /** MQTT port of the embedded broker; 0 = any free port. */
  mqtt_port: 1883,
  /** Address both servers bind to. */
  host: "0.0.0.0",
  /** Directory holding techtemp.db; created when missing. */
  data_dir: "./data",
  /** debug | info | warn | error */
  log_level: "info" as Level,
  /** Largest MQTT packet accepted, in bytes; a reading is under 100. */
  mqtt_max_packet_bytes: 65536,
  /** Seconds a new connection has to send CONNECT before it is closed. */
  mqtt_connect_timeout_s: 10,
  /** Longest client id accepted (MQTT 3.1.1 allows 65535; ours are ~20). */
  mqtt_max_client_id: 128,
  /** Most MQTT connections at once; one per sensor plus a few tools. */
  mqtt_max_clients: 500,
  /** Raw readings older than this many days are deleted (rollups stay); 0 keeps them forever. */
  retention_raw_days: 730,
  /**
   * How long a reading may wait for others to join its commit, in ms (0-2000; 0 = commit at once).
   * Fewer commits write far fewer bytes to an SD card; the PUBACK comes up to this much later.
   */
  ingest_commit_window_ms: 250,

  // ---- web sign-in and API access (issue 11; lib/server/auth, lib/server/http/auth) ----
  /**
   * More Host names the pages answer to, comma-separated (`techtemp.lan,pi.fritz.box`). Always
   * accepted: IP addresses, localhost, this machine's hostname and <hostname>.local. Any other
   * name gets 421 (a DNS-rebinding page cannot read the server under its own name).
   */
  http_allowed_hosts: "",
  /** Origins whose pages may call the write routes with an API token, comma-separated (`https://grafana.lan`); reads are open to any origin. */
  cors_origins: "",
  /** A session unused for this many days ends. */
  session_idle_days: 30,
  /** A session ends this many days after sign-in, used or not. */
  session_max_days: 365,
  /** Failed sign-ins per account in any hour before the account answers 429 (ASVS 2.2.1: at most 100). */
  login_failures_per_hour: 100,
  /** Failed sign-ins per client address in any hour, whatever the account. */
  login_address_failures_per_hour: 300,
  /** Password hashes (argon2id, 19 MiB each) computed at once; a Pi has little memory. */
  password_hash_concurrency: 2,
  /** Sign-ins waiting for a hashing slot; beyond this a sign-in gets 503 "busy, try again". */
  password_hash_queue: 32,
  /** HTTPS port for the API and pages, served when a certificate is configured (tls_cert); 0 = any free port. */
  https_port: 8443,
  /** MQTT over TLS port, served when a certificate is configured (tls_cert); 0 = any free port. */
  mqtts_port: 8883,
  /** PEM certificate (the server's, then its chain); empty = <data_dir>/tls/server.crt when it exists (`techtemp-server tls`). */
  tls_cert: "",
  /** PEM private key of tls_cert; empty = <data_dir>/tls/server.key when it exists. */
  tls_key: "",
  /** on | off: plain HTTP on http_port; off only when TLS is configured (then only HTTPS answers). */
  http_plain: "on" as OnOff,
  /** on | off: plain MQTT on mqtt_port; off only when TLS is configured (then sensors need `tls = true`). */
  mqtt_plain: "on" as OnOff,

  // ---- alerts (issue 12; lib/server/alerts) ----
  /** Committed readings waiting for their rules; beyond this they are evaluated later from the database (logged once a minute). */
  alert_queue_max: 100_000,
  /** Notifications waiting to be sent; beyond this new ones are stored as failed, never sent (logged once an hour). */
  alert_outbox_max: 10_000,
  /** Seconds a notification may take (the HTTP request, the SMTP conversation) before the attempt counts as failed. */
  alert_send_timeout_s: 10,
  /** Channels sending at once (each channel sends one notification at a time, in order). */
  alert_send_concurrency: 4,
  /** Attempts of a notification before it is marked failed (shown on the pages and in the API). */
  alert_retry_attempts: 6,
  /** Seconds before a notification's second attempt; each next wait is 3 times longer (10 s, 30 s, 90 s…, at most 1 h). */
  alert_retry_base_s: 10,
  /** Days resolved incidents and finished notifications are kept. */
  alert_history_days: 365,

  // ---- the pages (issue 15: lib/server/history/zone.ts, lib/server/weather) ----
  /**
   * The home's time zone, an IANA name (Europe/Paris): its days, weeks and months (daily rollups,
   * statistics, "today") and every time shown on the pages and charts. Default: the system's zone.
   * Changing it rebuilds the daily rollups at the next start.
   */
  home_timezone: systemTimeZone(),
  /** Outdoor weather (Open-Meteo) for the home at this latitude, decimal degrees −90…90; empty = no weather. */
  weather_latitude: "",
  /** …and this longitude, −180…180 (both or neither). */
  weather_longitude: "",
  /** The Open-Meteo forecast API (another URL for a mirror or a test's stand-in). Asked at most hourly. */
  weather_url: "https://api.open-meteo.com/v1/forecast",

  // ---- operations (issue 13; lib/server/backup, lib/server/metrics, lib/server/mqtt/ha-discovery.ts, bridge.ts) ----
  /** Local time of the daily backup (HH:MM, the home's time zone), or `off`: a quiet hour by default. */
  backup_time: "03:30",
  /** Where backups go; empty = <data_dir>/backups. */
  backup_dir: "",
  /** A second directory each backup is copied to (a USB stick, a NAS mount); empty = none. It must exist: it is never created. */
  backup_second_dir: "",
  /** Backups kept: the newest of each of the last N days… */
  backup_keep_daily: 7,
  /** …of each of the last N ISO weeks… */
  backup_keep_weekly: 4,
  /** …and of each of the last N months (a backup kept for one reason is kept). */
  backup_keep_monthly: 12,
  /** Devices with per-device series on /metrics (the label values are bounded by it); the rest are counted, not listed. */
  metrics_max_devices: 200,
  /** Home Assistant MQTT discovery: retained configs under the prefix for every placed device. */
  ha_discovery: true,
  /** The discovery prefix Home Assistant listens on. */
  ha_discovery_prefix: "homeassistant",
  /** Another MQTT broker (mqtt://host:port or mqtts://…) that readings, statuses and discovery are forwarded to; empty = no bridge. */
  bridge_url: "",
  /** The bridge's login on that broker (empty = none). */
  bridge_username: "",
  bridge_password: "",
  /** The bridge's client id there; empty = techtemp-bridge-<hostname>. */
  bridge_client_id: "",
  /** Readings the bridge keeps while that broker is away; the oldest are dropped beyond it. */
  bridge_buffer: 10000,
  // ---- limits under abuse (issue 16): every one logged once per cause and minute when hit ----
  /** Largest HTTP request body, in bytes; a larger one is refused (413) before it is read. Forms and API bodies are under 10 KB. */
  http_max_body_bytes: 1_048_576,
  /**
   * Most devices the server keeps. A reading or status of a device it does not know yet is refused beyond it
   * (not acknowledged: a sensor keeps it and sends it again once a device is deleted or this is raised).
   */
  max_devices: 1000,
  /** Most MQTT connections of tools (API tokens) at once: the rest of mqtt_max_clients is kept for sensors. */
  mqtt_max_tool_clients: 50,
  /** Most anonymous MQTT connections (earlier sensors, while accept_anonymous_sensors is on) from one address: one Pi each. */
  mqtt_max_anonymous_per_address: 4,
  /** Most messages queued for one persistent session (clean session off) while it is away (Mosquitto's max_queued_messages). */
  mqtt_max_queued_messages: 1000,
  /** Most bytes queued for one persistent session. */
  mqtt_max_queued_bytes: 1_048_576,
  /** Most persistent sessions (clean session off) with subscriptions kept; a new one's SUBSCRIBE is refused beyond. */
  mqtt_max_sessions: 1000,
  /** Most topic filters one MQTT client holds at once (of at most 64 KiB together); a new one's SUBSCRIBE is refused beyond. */
  mqtt_max_subscriptions: 1000,
  /** Most retained messages outside the contract's device topics (those are one status and one config per device, always kept). */
  mqtt_max_retained: 1000,
  /** Most bytes of retained messages outside the contract's device topics. */
  mqtt_max_retained_bytes: 4_194_304,
  /** Most bytes waiting in one subscriber's connection; beyond, messages to that subscriber are dropped (publishers never wait for it). */
  mqtt_max_outgoing_bytes: 1_048_576,
  /** Seconds between two publications of the $SYS/broker statistics (Mosquitto's sys_interval); 0 = never. */
  mqtt_sys_interval_s: 10,
};

/** A switch in server.conf. */
export type OnOff = "on" | "off";

/** Settings that may be empty (the empty value has a meaning of its own). */
const MAY_BE_EMPTY = new Set<string>(["tls_cert", "tls_key"]);

/** Where `techtemp-server tls` puts the certificate and key, and where they are looked for by default. */
export const TLS_DIR = "tls";

/** The resolved configuration the server runs with. */
export type Config = typeof defaults;
export type Setting = keyof Config;

/** A configuration problem; its message is the one line printed at start-up. */
export class ConfigError extends Error {}

/** Where the config file is looked for when TECHTEMP_CONFIG is not set. */
export const DEFAULT_CONFIG_FILE = "/etc/techtemp/server.conf";

const envName = (key: string) => `TECHTEMP_${key.toUpperCase()}`;

function fail(key: string, value: unknown, source: string, problem: string): never {
  throw new ConfigError(`config: ${key} = ${JSON.stringify(value)} (${source}): ${problem}`);
}

function coerce(key: Setting, raw: unknown, source: string): Config[Setting] {
  const def = defaults[key];
  if (typeof def === "boolean") return coerceSwitch(key, raw, source);
  if (typeof def === "number") {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n)) fail(key, raw, source, "must be a whole number");
    if (key.endsWith("_port")) {
      if (n < 0 || n > 65535) fail(key, raw, source, "must be a port number 0-65535");
    } else if (key === "retention_raw_days") {
      if (n < 0) fail(key, raw, source, "must be 0 (keep forever) or more days");
    } else if (key === "backup_keep_weekly" || key === "backup_keep_monthly") {
      if (n < 0) fail(key, raw, source, "must be 0 (none) or more");
    } else if (key === "ingest_commit_window_ms") {
      if (n < 0 || n > 2000) fail(key, raw, source, "must be 0 (commit at once) to 2000 ms");
    } else if (key === "mqtt_sys_interval_s") {
      if (n < 0) fail(key, raw, source, "must be 0 (never) or more seconds");
    } else if (key === "password_hash_queue") {
      if (n < 0) fail(key, raw, source, "must be 0 (no waiting) or more");
    } else if (n < 1) fail(key, raw, source, "must be at least 1");
    return n;
  }
  if (key in LISTS) return coerceList(key as keyof typeof LISTS, raw, source);
  if (key === "weather_latitude" || key === "weather_longitude") return coerceDegrees(key, raw, source);
  if (key in TEXTS) return coerceText(key as keyof typeof TEXTS, raw, source);
  if (typeof raw !== "string") fail(key, raw, source, "must be text");
  if (raw.trim() === "" && !MAY_BE_EMPTY.has(key)) fail(key, raw, source, "must not be empty");
  const s = raw.trim();
  if (key === "home_timezone") {
    const zone = canonicalZone(s);
    if (zone === null) fail(key, raw, source, "must be a time zone name like Europe/Paris (see timedatectl list-timezones)");
    return zone;
  }
  if (key === "weather_url" && !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(s))
    fail(key, raw, source, "must be an http:// or https:// URL");
  if (key === "log_level" && !(LEVELS as readonly string[]).includes(s)) {
    fail(key, raw, source, `must be one of ${LEVELS.join(", ")}`);
  }
  if ((key === "http_plain" || key === "mqtt_plain") && s !== "on" && s !== "off") fail(key, raw, source, "must be on or off");
  return s;
}

/** A latitude or longitude in decimal degrees ("" = none; a decimal comma is fine too), written back as text. */
function coerceDegrees(key: "weather_latitude" | "weather_longitude", raw: unknown, source: string): string {
  const text = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw.trim().replace(",", ".") : null;
  if (text === null) fail(key, raw, source, "must be a number of degrees");
  if (text === "") return "";
  const max = key === "weather_latitude" ? 90 : 180;
  const n = /^[+-]?\d{1,3}(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(Math.abs(n) <= max)) fail(key, raw, source, `must be a number of degrees from -${max} to ${max}, or empty`);
  return String(n);
}

/** Settings that hold a comma-separated list (empty = none), with the rule each item follows. */
const LISTS = {
  http_allowed_hosts: {
    item: /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
    what: "a host name like techtemp.lan",
  },
  cors_origins: {
    item: /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9a-f:.]+\](:\d{1,5})?$/,
    what: "an origin like https://grafana.lan:3000",
  },
} as const;

/** A list setting: items trimmed and lowercased, each checked; written back comma-separated. */
function coerceList(key: keyof typeof LISTS, raw: unknown, source: string): string {
  if (typeof raw !== "string") fail(key, raw, source, "must be a comma-separated list");
  const items = raw
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const item of items)
    if (!LISTS[key].item.test(item)) fail(key, raw, source, `${JSON.stringify(item)} is not ${LISTS[key].what}`);
  return items.join(",");
}

/** On/off settings: true/false, on/off, yes/no, 1/0. */
function coerceSwitch(key: Setting, raw: unknown, source: string): boolean {
  if (typeof raw === "boolean") return raw;
  const s = typeof raw === "string" ? raw.trim().toLowerCase() : "";
  if (["true", "on", "yes", "1"].includes(s)) return true;
  if (["false", "off", "no", "0"].includes(s)) return false;
  fail(key, raw, source, "must be on or off");
}

/** Text settings that may be empty (= not set), with the rule a value follows. */
const TEXTS: Record<string, { rule: RegExp; what: string }> = {
  backup_time: { rule: /^(off|([01]\d|2[0-3]):[0-5]\d)$/, what: "a time HH:MM (24 h) or off" },
  backup_dir: { rule: /^\/|^\./, what: "a directory path" },
  backup_second_dir: { rule: /^\/|^\./, what: "a directory path" },
  ha_discovery_prefix: { rule: /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, what: "an MQTT topic prefix like homeassistant" },
  bridge_url: { rule: /^mqtts?:\/\/[^\s/:]+(:\d{1,5})?\/?$/, what: "a broker URL like mqtt://192.168.1.20:1883" },
  bridge_username: { rule: /^[^\s]{1,100}$/, what: "a user name without spaces" },
  bridge_password: { rule: /^.{1,200}$/, what: "a password of 1-200 characters" },
  bridge_client_id: { rule: /^[A-Za-z0-9_-]{1,64}$/, what: "1-64 letters, digits, - or _" },
};

/** A text setting: trimmed; empty = not set (except where a value is needed). */
function coerceText(key: keyof typeof TEXTS, raw: unknown, source: string): string {
  const s = typeof raw === "string" ? raw.trim() : "";
  if (s === "" && (key === "backup_time" || key === "ha_discovery_prefix")) fail(key, raw, source, "must not be empty");
  if (s !== "" && !TEXTS[key]!.rule.test(s)) fail(key, raw, source, `must be ${TEXTS[key]!.what}`);
  return s;
}

/** server.conf's rules: `#` and `;` comments after any white space, no sections, `"quoted"` values unquoted. */
const SERVER_CONF: IniRules = { comments: "#;", sections: false, trim: "unicode", unquote: true };

/** A setting's name: letters, digits and `_`, not starting with a digit. */
const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses the `key = value` config file text; unknown keys are errors. */
export function parseConfigFile(text: string, path: string): Partial<Config> {
  const out: Record<string, unknown> = {};
  for (const entry of readIni(text, SERVER_CONF)) {
    const where = `${path}:${entry.line}`;
    // A value holding a line separator other than LF (a stray CR, U+2028) is refused as well.
    if (entry.kind !== "entry" || !KEY.test(entry.key) || /[\r\u2028\u2029]/.test(entry.value)) {
      throw new ConfigError(`config: ${where}: expected "key = value", got ${JSON.stringify(entry.raw)}`);
    }
    const key = entry.key.toLowerCase();
    if (!(key in defaults)) {
      throw new ConfigError(
        `config: ${where}: unknown setting ${JSON.stringify(entry.key)} (known: ${Object.keys(defaults).join(", ")})`,
      );
    }
    out[key] = coerce(key as Setting, entry.value, where);
  }
  return out as Partial<Config>;
}

/** Checks that the data directory exists (creating it) and is writable. */
function checkDataDir(dir: string, source: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    fail("data_dir", dir, source, `cannot write there (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/**
 * Resolves the configuration: `overrides` (from code, e.g. tests) over the
 * environment over the config file over the defaults. Throws ConfigError.
 */
export function loadConfig(
  options: {
    env?: Record<string, string | undefined>;
    overrides?: Partial<Config>;
    /** Whether http_plain/mqtt_plain = off need a certificate (not for `tls`, the command that makes one). */
    checkListeners?: boolean;
  } = {},
): Config {
  const env = options.env ?? process.env;
  const config: Record<string, unknown> = { ...defaults };
  const sources: Record<string, string> = {};

  const explicitFile = env.TECHTEMP_CONFIG;
  const file = explicitFile ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError(
        `config: TECHTEMP_CONFIG = ${JSON.stringify(file)}: cannot read it (${(err as NodeJS.ErrnoException).code ?? err})`,
      );
    }
    for (const [k, v] of Object.entries(parseConfigFile(text, file))) {
      config[k] = v;
      sources[k] = file;
    }
  }
  // Only our own names are read: the agent shares the TECHTEMP_ prefix (TECHTEMP_SENSOR_DRIVER…).
  for (const key of Object.keys(defaults) as Setting[]) {
    const raw = env[envName(key)];
    if (raw !== undefined) {
      config[key] = coerce(key, raw, envName(key));
      sources[key] = envName(key);
    }
  }
  for (const [k, v] of Object.entries(options.overrides ?? {})) {
    if (!(k in defaults)) throw new ConfigError(`config: unknown setting ${JSON.stringify(k)}`);
    config[k] = coerce(k as Setting, v, "start options");
    sources[k] = "start options";
  }
  if ((config.weather_latitude === "") !== (config.weather_longitude === "")) {
    const missing = config.weather_latitude === "" ? "weather_latitude" : "weather_longitude";
    fail(missing, "", sources[missing] ?? "default", "set both weather_latitude and weather_longitude, or neither");
  }
  config.data_dir = resolve(config.data_dir as string);
  checkDataDir(config.data_dir as string, sources.data_dir ?? "default");
  resolveTls(config as Config, sources, options.checkListeners ?? true);
  return config as Config;
}

/**
 * Resolves the certificate settings: tls_cert and tls_key both or neither,
 * each a readable file; without them, the pair `techtemp-server tls` writes
 * in the data directory when it is there. Plain listeners may be switched
 * off only when TLS is configured, or nothing would answer.
 */
function resolveTls(config: Config, sources: Record<string, string>, checkListeners: boolean): void {
  const source = (key: Setting) => sources[key] ?? "default";
  if (config.tls_cert === "" && config.tls_key === "") {
    const cert = resolve(config.data_dir, TLS_DIR, "server.crt");
    const key = resolve(config.data_dir, TLS_DIR, "server.key");
    if (existsSync(cert) && existsSync(key)) {
      config.tls_cert = cert;
      config.tls_key = key;
    }
  } else {
    for (const [key, other] of [
      ["tls_cert", "tls_key"],
      ["tls_key", "tls_cert"],
    ] as const) {
      if (config[key] === "") fail(key, "", source(key), `must be set too when ${other} is`);
      try {
        accessSync(config[key], constants.R_OK);
      } catch (err) {
        fail(key, config[key], source(key), `cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      config[key] = resolve(config[key]);
    }
  }
  for (const key of ["http_plain", "mqtt_plain"] as const) {
    if (checkListeners && config[key] === "off" && config.tls_cert === "") {
      fail(
        key,
        "off",
        source(key),
        "needs TLS: set tls_cert and tls_key, or run `techtemp-server tls` (install.sh server --tls), or nothing would answer",
      );
    }
  }
}

/** Whether the server has a certificate to serve HTTPS and MQTT over TLS with. */
export const tlsConfigured = (config: Pick<Config, "tls_cert">): boolean => config.tls_cert !== "";
