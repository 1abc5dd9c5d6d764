// The MQTT contract between sensors and the server (SPEC.md, "MQTT contract").
// Both server.ts and sensor.ts import this module, so the topics and payloads
// cannot drift apart. Sensors of the earlier TechTemp speak exactly this.

/** IDs (home, device, room) are 1–50 characters of [A-Za-z0-9_-]. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,50}$/;

/** The earlier agent's default home id (`[device] home_id`). */
export const DEFAULT_HOME_ID = "home-001";

/** Lowest and highest temperature an AHT20 can report (°C). */
export const TEMPERATURE_RANGE = [-40, 85] as const;
/** Humidity is a percentage. */
export const HUMIDITY_RANGE = [0, 100] as const;
/** A reading may be stamped at most this far in the future (clock skew between Pis). */
export const MAX_FUTURE_MS = 24 * 3600 * 1000;
/**
 * The earliest `ts` a reading may carry: 2000-01-01T00:00:00Z. Nothing was
 * measured by TechTemp before it; anything earlier is a clock that was never
 * set (`ts: 0`) or seconds sent for milliseconds (1725427200 is 1970-01-20 in
 * milliseconds, and seconds stay below this bound until the year 33658).
 */
export const MIN_TS = 946_684_800_000;

/** The three message kinds a device topic can carry. */
export type TopicKind = "reading" | "status" | "config";

/** A device topic split into its parts. */
export interface DeviceTopic {
  homeId: string;
  deviceUid: string;
  kind: TopicKind;
}

/** `home/{home_id}/sensors/{device_uid}/{kind}` */
export function topicFor(homeId: string, deviceUid: string, kind: TopicKind): string {
  return `home/${homeId}/sensors/${deviceUid}/${kind}`;
}

/** Whether a topic is under `home/+/sensors/+/…` at all (before checking the IDs). */
export function isDeviceTopic(topic: string): boolean {
  return topic.startsWith("home/") && topic.includes("/sensors/");
}

/**
 * Parses a device topic. Returns an error message naming the bad part when the
 * topic has the contract's shape but an ID or the kind is not valid.
 */
export function parseTopic(topic: string): DeviceTopic | { error: string } {
  const parts = topic.split("/");
  if (parts.length !== 5 || parts[0] !== "home" || parts[2] !== "sensors") {
    return { error: `topic ${JSON.stringify(topic)} is not home/{home_id}/sensors/{device_uid}/{reading|status|config}` };
  }
  const [, homeId, , deviceUid, kind] = parts as [string, string, string, string, string];
  if (!ID_PATTERN.test(homeId)) return { error: `home_id ${JSON.stringify(homeId)} must be 1-50 characters of A-Z a-z 0-9 _ -` };
  if (!ID_PATTERN.test(deviceUid))
    return { error: `device_uid ${JSON.stringify(deviceUid)} must be 1-50 characters of A-Z a-z 0-9 _ -` };
  if (kind !== "reading" && kind !== "status" && kind !== "config") {
    return { error: `topic kind ${JSON.stringify(kind)} is not reading, status or config` };
  }
  return { homeId, deviceUid, kind };
}

/** A reading as the contract carries it. */
export interface Reading {
  temperature_c: number;
  humidity_pct: number;
  /** Epoch milliseconds, UTC. */
  ts: number;
  /** Sent as false by a newer agent when the Pi's clock never synchronised. */
  clock_synced?: boolean;
}

/** Result of parsing a payload: the value, or a reason a person can act on. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function parseJsonObject(payload: Uint8Array | string): Parsed<Record<string, unknown>> {
  const text = typeof payload === "string" ? payload : new TextDecoder().decode(payload);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: `payload is not valid JSON: ${JSON.stringify(text.slice(0, 80))}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, reason: "payload is not a JSON object" };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

function checkNumber(obj: Record<string, unknown>, key: string, [min, max]: readonly [number, number]): string | null {
  const v = obj[key];
  if (v === undefined) return `${key} is missing`;
  // "23.5" is refused: the earlier sensors always sent numbers, and a string is a bug upstream.
  if (typeof v !== "number") return `${key} must be a number, got ${JSON.stringify(v)}`;
  if (!Number.isFinite(v)) return `${key} must be finite`;
  if (v < min || v > max) return `${key} ${v} is outside ${min}…${max}`;
  return null;
}

/**
 * Validates a reading payload (SPEC: both values finite numbers, temperature
 * −40…85 °C, humidity 0…100 %, ts not more than 24 h in the future; unknown
 * fields ignored).
 */
export function parseReading(payload: Uint8Array | string, now: number): Parsed<Reading> {
  const json = parseJsonObject(payload);
  if (!json.ok) return json;
  const obj = json.value;
  const bad = checkNumber(obj, "temperature_c", TEMPERATURE_RANGE) ?? checkNumber(obj, "humidity_pct", HUMIDITY_RANGE);
  if (bad) return { ok: false, reason: bad };
  const ts = obj.ts;
  if (ts === undefined) return { ok: false, reason: "ts is missing" };
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0) {
    return { ok: false, reason: `ts must be epoch milliseconds (a whole number), got ${JSON.stringify(ts)}` };
  }
  if (ts < MIN_TS) {
    // Seconds since 1970 of a time after 2000 are 946684800…(about 1e10): say so, it is the usual mistake.
    const seconds = ts >= MIN_TS / 1000 && ts < 1e11;
    return {
      ok: false,
      reason: seconds
        ? `ts ${ts} looks like seconds (${new Date(ts * 1000).toISOString()}); send epoch milliseconds`
        : `ts ${ts} is before 2000-01-01: the sensor's clock is not set (ts must be epoch milliseconds)`,
    };
  }
  if (ts > now + MAX_FUTURE_MS) {
    // A Date ends at 8.64e15 ms: a larger ts has no ISO form to show.
    const when = ts <= 8.64e15 ? new Date(ts).toISOString() : `${ts}`;
    return {
      ok: false,
      reason: `ts ${when} is more than 24 h in the future (the server's clock says ${new Date(now).toISOString()})`,
    };
  }
  const reading: Reading = { temperature_c: obj.temperature_c as number, humidity_pct: obj.humidity_pct as number, ts };
  if (obj.clock_synced === false) reading.clock_synced = false;
  return { ok: true, value: reading };
}

/** Formats a reading the way the earlier agent did (two decimals). */
export function formatReading(r: Reading): string {
  const body: Record<string, unknown> = {
    temperature_c: Number(r.temperature_c.toFixed(2)),
    humidity_pct: Number(r.humidity_pct.toFixed(2)),
    ts: r.ts,
  };
  if (r.clock_synced === false) body.clock_synced = false;
  return JSON.stringify(body);
}

/** The retained status message: birth (online) or last will (offline). */
export interface Status {
  state: "online" | "offline";
  interval_s?: number;
  version?: string;
  /** Consecutive failed sensor reads, reported by the agent. */
  sensor_failures?: number;
  /** The agent's last sensor error, a sentence a person can act on. */
  last_error?: string;
}

/** Validates a status payload. Unknown fields are ignored. */
export function parseStatus(payload: Uint8Array | string): Parsed<Status> {
  const json = parseJsonObject(payload);
  if (!json.ok) return json;
  const obj = json.value;
  if (obj.state !== "online" && obj.state !== "offline") {
    return { ok: false, reason: `state must be "online" or "offline", got ${JSON.stringify(obj.state)}` };
  }
  const status: Status = { state: obj.state };
  if (obj.interval_s !== undefined) {
    if (!Number.isInteger(obj.interval_s) || (obj.interval_s as number) < 1 || (obj.interval_s as number) > 86400) {
      return { ok: false, reason: `interval_s must be a whole number of seconds 1…86400, got ${JSON.stringify(obj.interval_s)}` };
    }
    status.interval_s = obj.interval_s as number;
  }
  if (typeof obj.version === "string") status.version = obj.version.slice(0, 50);
  if (Number.isInteger(obj.sensor_failures)) status.sensor_failures = obj.sensor_failures as number;
  if (typeof obj.last_error === "string") status.last_error = obj.last_error.slice(0, 300);
  return { ok: true, value: status };
}

/**
 * Formats a status message: the agent's birth (`{"state":"online","interval_s":…,"version":…}`,
 * plus `sensor_failures`/`last_error` when it has them) or last will (`{"state":"offline"}`).
 */
export function formatStatus(s: Status): string {
  const body: Status = { state: s.state };
  if (s.interval_s !== undefined) body.interval_s = s.interval_s;
  if (s.version !== undefined) body.version = s.version;
  if (s.sensor_failures !== undefined) body.sensor_failures = s.sensor_failures;
  if (s.last_error !== undefined) body.last_error = s.last_error;
  return JSON.stringify(body);
}

/** The retained config message the server sends to a device. */
export interface DeviceConfig {
  interval_s?: number;
  temperature_offset?: number;
  humidity_offset?: number;
}

/** Interval limits a device accepts (the earlier agent's `read_interval_seconds`). */
export const INTERVAL_RANGE = [1, 3600] as const;
/** Calibration offsets are small corrections, not conversions. */
export const OFFSET_RANGE = [-20, 20] as const;

/** Validates a config payload (the agent's side of the contract). */
export function parseConfig(payload: Uint8Array | string): Parsed<DeviceConfig> {
  const json = parseJsonObject(payload);
  if (!json.ok) return json;
  const obj = json.value;
  const config: DeviceConfig = {};
  if (obj.interval_s !== undefined) {
    const v = obj.interval_s;
    if (!Number.isInteger(v) || (v as number) < INTERVAL_RANGE[0] || (v as number) > INTERVAL_RANGE[1]) {
      return { ok: false, reason: `interval_s must be a whole number 1…3600, got ${JSON.stringify(v)}` };
    }
    config.interval_s = v as number;
  }
  for (const key of ["temperature_offset", "humidity_offset"] as const) {
    if (obj[key] === undefined) continue;
    const bad = checkNumber(obj, key, OFFSET_RANGE);
    if (bad) return { ok: false, reason: bad };
    config[key] = obj[key] as number;
  }
  return { ok: true, value: config };
}

/** Formats a config message. */
export function formatConfig(c: DeviceConfig): string {
  return JSON.stringify(c);
}
