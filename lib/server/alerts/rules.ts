// Alert rules as a person writes them: the kinds, what each one takes, its
// defaults, the presets, and the check that turns input (API JSON or a form)
// into a rule or a DomainError naming the field at fault. Pure: whether a
// room or device exists is the store's question (lib/server/store/alerts.ts).

import { invalid } from "../../shared/errors.ts";
import { HUMIDITY_RANGE, TEMPERATURE_RANGE } from "../../shared/contract.ts";

/** What a rule watches. */
export const RULE_KINDS = ["threshold", "stale", "failures", "stuck", "jump", "mould"] as const;
/** A rule's kind. */
export type RuleKind = (typeof RULE_KINDS)[number];
/** The values a threshold or jump rule can watch. */
export const METRICS = ["temperature", "humidity", "dew_point"] as const;
/** A watched value. */
export type Metric = (typeof METRICS)[number];
/** How bad an incident is, worst first: decides ntfy's priority and which channels hear of it. */
export const SEVERITIES = ["critical", "warning", "info"] as const;
/** An incident's severity. */
export type Severity = (typeof SEVERITIES)[number];

/** Most rules a home may have (each is evaluated on every reading of the devices it covers). */
export const MAX_RULES = 500;
/** Longest duration a rule can wait for (and the longest window replayed at start). */
export const MAX_DURATION_S = 7 * 86_400;

/** A rule as stored and evaluated (without its id and scope names). */
export interface RuleSpec {
  name: string;
  kind: RuleKind;
  /** threshold, jump: the value watched; mould: humidity. */
  metric: Metric | null;
  /** threshold: fires below it. */
  min: number | null;
  /** threshold: fires above it; jump: the largest plausible change between two readings; mould: humidity %. */
  max: number | null;
  /** How far back past the threshold a value must come before the incident resolves. */
  hysteresis: number;
  /** threshold, mould: how long the condition must hold; stuck: how long values stay identical; jump: the longest gap between two readings compared. */
  duration_s: number;
  /** stale: late after this many of the device's own intervals. */
  intervals: number | null;
  /** failures: this many failed sensor reads in a row. */
  failures: number | null;
  /** mould: also when the air is within this many °C of its dew point (surfaces colder than the air get wet). */
  dew_margin: number | null;
  severity: Severity;
  /** The scope: a room (by uid), a device (by uid), or neither = every device placed in a room. */
  room_uid: string | null;
  device_uid: string | null;
  enabled: boolean;
}

/** Input to create or change a rule: every field optional (a change keeps the rest); null clears. */
export type RuleInput = { [K in keyof RuleSpec]?: unknown };

/** Unit of a metric, for messages. */
export const unitOf = (metric: Metric | null): string => (metric === "humidity" ? "%" : "°C");

const METRIC_RANGE: Record<Metric, readonly [number, number]> = {
  temperature: TEMPERATURE_RANGE,
  humidity: HUMIDITY_RANGE,
  dew_point: [-60, 85],
};

/** Default hysteresis per metric: about the sensor's noise, so a value hovering at the threshold does not flap. */
const HYSTERESIS: Record<Metric, number> = { temperature: 0.5, humidity: 2, dew_point: 0.5 };

/** The presets: the earlier TechTemp's thresholds (temperature 5/18/26/35 °C, humidity 15/30/66/85 %), and one of each other kind. */
export const PRESETS: { id: string; spec: Omit<RuleSpec, "room_uid" | "device_uid" | "enabled"> }[] = [
  preset("temperature-critical", "Temperature critical", "critical", { metric: "temperature", min: 5, max: 35 }),
  preset("temperature-high", "Temperature high", "warning", { metric: "temperature", max: 26 }),
  preset("temperature-low", "Temperature low", "warning", { metric: "temperature", min: 18 }),
  preset("humidity-critical", "Humidity critical", "critical", { metric: "humidity", min: 15, max: 85 }),
  preset("humidity-high", "Humidity high", "warning", { metric: "humidity", max: 66 }),
  preset("humidity-low", "Humidity low", "warning", { metric: "humidity", min: 30 }),
  preset("sensor-stale", "Sensor stopped reporting", "warning", { kind: "stale", intervals: 5 }),
  preset("sensor-failures", "Sensor read failures", "warning", { kind: "failures", failures: 3 }),
  preset("sensor-stuck", "Sensor stuck", "warning", { kind: "stuck", duration_s: 6 * 3600 }),
  preset("implausible-jump", "Implausible jump", "info", { kind: "jump", metric: "temperature", max: 5, duration_s: 600 }),
  preset("mould-risk", "Mould risk", "warning", { kind: "mould", metric: "humidity", max: 70, duration_s: 12 * 3600 }),
];

function preset(id: string, name: string, severity: Severity, spec: Partial<RuleSpec>) {
  return { id, spec: normalizeRule({ name, severity, kind: "threshold", ...spec }) };
}

/** A number, or null when absent; anything else names the field. */
function num(input: RuleInput, field: keyof RuleSpec, what: string): number | null {
  const v = input[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(field, `${JSON.stringify(v)} is not a number; ${what}`);
  return v;
}

/** A number within [lo, hi] (whole when `whole`), or `fallback` when absent. */
function bounded(input: RuleInput, field: keyof RuleSpec, lo: number, hi: number, fallback: number | null, whole = false) {
  const what = `give ${whole ? "a whole number" : "a number"} from ${lo} to ${hi}`;
  const v = num(input, field, what);
  if (v === null) return fallback;
  if (v < lo || v > hi || (whole && !Number.isInteger(v))) throw invalid(field, `${v} is outside ${lo}-${hi}; ${what}`);
  return v;
}

function oneOf<T extends string>(input: RuleInput, field: keyof RuleSpec, choices: readonly T[], fallback: T | null): T | null {
  const v = input[field];
  if (v === undefined || v === null || v === "") return fallback;
  if (typeof v === "string" && (choices as readonly string[]).includes(v)) return v as T;
  throw invalid(field, `${JSON.stringify(v)} is not one of ${choices.join(", ")}`);
}

/**
 * Checks a rule and fills in its defaults: input merged over `base` (a rule
 * being changed), fields its kind does not use set to null. Throws
 * `invalid(field, …)`: a value that is not a number, out of range, min above
 * max, a hysteresis wider than the band, a scope naming both a room and a device.
 */
export function normalizeRule(input: RuleInput, base?: RuleSpec): RuleSpec {
  const merged: RuleInput = base ? { ...base, ...input } : input;
  // A change of kind starts from that kind's defaults, not from the old kind's values.
  const m: RuleInput = base && input.kind !== undefined && input.kind !== base.kind ? { ...input } : merged;
  for (const k of ["name", "severity", "room_uid", "device_uid", "enabled"] as const) if (m[k] === undefined) m[k] = merged[k];
  const kind = oneOf(m, "kind", RULE_KINDS, null);
  if (kind === null) throw invalid("kind", `give one of ${RULE_KINDS.join(", ")}`);
  const rule: RuleSpec = {
    name: "",
    kind,
    metric: null,
    min: null,
    max: null,
    hysteresis: 0,
    duration_s: 0,
    intervals: null,
    failures: null,
    dew_margin: null,
    severity: oneOf(m, "severity", SEVERITIES, "warning")!,
    room_uid: null,
    device_uid: null,
    enabled: m.enabled === undefined || m.enabled === null ? true : m.enabled === true,
  };
  if (m.enabled !== undefined && m.enabled !== null && typeof m.enabled !== "boolean")
    throw invalid("enabled", "give true or false");

  switch (kind) {
    case "threshold":
    case "jump": {
      const metric = oneOf(m, "metric", METRICS, null);
      if (metric === null) throw invalid("metric", `give one of ${METRICS.join(", ")}`);
      rule.metric = metric;
      const [lo, hi] = METRIC_RANGE[metric];
      if (kind === "jump") {
        rule.max = bounded(m, "max", 0.1, hi - lo, null);
        if (rule.max === null)
          throw invalid("max", `give the largest plausible change between two readings, in ${unitOf(metric)}`);
        rule.duration_s = bounded(m, "duration_s", 1, 86_400, 600, true)!;
        break;
      }
      rule.min = bounded(m, "min", lo, hi, null);
      rule.max = bounded(m, "max", lo, hi, null);
      if (rule.min === null && rule.max === null) throw invalid("max", "give min, max or both");
      if (rule.min !== null && rule.max !== null && rule.min > rule.max) {
        throw invalid("min", `${rule.min} is above max (${rule.max}); min is the lower bound`);
      }
      rule.hysteresis = bounded(m, "hysteresis", 0, (hi - lo) / 2, HYSTERESIS[metric])!;
      if (rule.min !== null && rule.max !== null && rule.hysteresis * 2 >= rule.max - rule.min && rule.max > rule.min) {
        throw invalid(
          "hysteresis",
          `${rule.hysteresis} is too wide for ${rule.min}-${rule.max}: it must be less than half the band`,
        );
      }
      rule.duration_s = bounded(m, "duration_s", 0, MAX_DURATION_S, 300, true)!;
      break;
    }
    case "stale":
      rule.intervals = bounded(m, "intervals", 2, 100, 5, true);
      break;
    case "failures":
      rule.failures = bounded(m, "failures", 1, 10_000, 3, true);
      break;
    case "stuck":
      rule.duration_s = bounded(m, "duration_s", 600, MAX_DURATION_S, 6 * 3600, true)!;
      break;
    case "mould":
      rule.metric = "humidity";
      rule.max = bounded(m, "max", 40, 100, 70);
      rule.hysteresis = bounded(m, "hysteresis", 0, 30, 3)!;
      rule.duration_s = bounded(m, "duration_s", 0, MAX_DURATION_S, 12 * 3600, true)!;
      rule.dew_margin = bounded(m, "dew_margin", 0.1, 20, null);
      break;
  }

  for (const field of ["room_uid", "device_uid"] as const) {
    const v = m[field];
    if (v === undefined || v === null || v === "") continue;
    if (typeof v !== "string" || !/^[A-Za-z0-9_-]{1,50}$/.test(v))
      throw invalid(field, "must be 1-50 characters of A-Z a-z 0-9 _ -");
    rule[field] = v;
  }
  if (rule.room_uid !== null && rule.device_uid !== null) throw invalid("device_uid", "give room_uid or device_uid, not both");

  // A name the rule made up itself follows the rule's new values.
  const generated = base !== undefined && input.name === undefined && base.name === capitalize(describeRule(base));
  const name = generated ? undefined : m.name;
  if (name !== undefined && name !== null && name !== "") {
    if (typeof name !== "string" || name.trim().length > 100) throw invalid("name", "must be text of at most 100 characters");
    rule.name = name.trim();
  }
  if (rule.name === "") rule.name = capitalize(describeRule(rule));
  return rule;
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** A duration as a person says it: "90 s", "10 min", "6 h", "2 days". */
export function spanText(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * 86_400) {
    const h = Math.floor(seconds / 3600);
    const min = Math.round((seconds % 3600) / 60);
    return min === 0 || h >= 10 ? `${Math.round(seconds / 3600)} h` : `${h} h ${min} min`;
  }
  return `${Math.round(seconds / 86_400)} days`;
}

/** The name of a metric in a sentence. */
export const metricName = (metric: Metric | null): string => (metric === "dew_point" ? "dew point" : (metric ?? "value"));

/** A number with its unit: "26 °C", "70 %". */
export const withUnit = (v: number, metric: Metric | null): string => `${Number(v.toFixed(2))} ${unitOf(metric)}`;

/** What a rule watches, in words: "temperature above 26 °C for 5 min". */
export function describeRule(r: Pick<RuleSpec, Exclude<keyof RuleSpec, "name" | "severity" | "enabled">>): string {
  const forText = r.duration_s > 0 ? ` for ${spanText(r.duration_s)}` : "";
  switch (r.kind) {
    case "threshold": {
      const m = metricName(r.metric);
      const parts: string[] = [];
      if (r.min !== null) parts.push(`below ${withUnit(r.min, r.metric)}`);
      if (r.max !== null) parts.push(`above ${withUnit(r.max, r.metric)}`);
      return `${m} ${parts.join(" or ")}${forText}`;
    }
    case "stale":
      return `no reading for ${r.intervals} of the sensor's intervals`;
    case "failures":
      return `${r.failures} failed sensor read${r.failures === 1 ? "" : "s"} in a row`;
    case "stuck":
      return `identical readings for ${spanText(r.duration_s)}`;
    case "jump":
      return `${metricName(r.metric)} changing by more than ${withUnit(r.max!, r.metric)} between two readings`;
    case "mould": {
      const dew = r.dew_margin !== null ? ` or within ${withUnit(r.dew_margin, "temperature")} of the dew point` : "";
      return `humidity above ${withUnit(r.max!, "humidity")}${dew}${forText} (mould risk)`;
    }
  }
}
