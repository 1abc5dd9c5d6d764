// Rule evaluation, one device at a time, as pure state machines: each
// reading (or status message, or tick of the clock for staleness) moves a
// rule's state for that device and may fire it or clear it. The engine
// (engine.ts) keeps the states, feeds them in order and turns the steps into
// incidents.
//
// A condition must hold on every reading for the rule's duration before it
// fires (one odd reading does not alarm; a reading back inside the threshold
// starts the wait again), and an incident clears only once a value comes back
// past the threshold by the hysteresis (a value hovering at the threshold
// does not flap). Durations are measured in the readings' own timestamps, so
// a restart that replays stored readings reaches the same states.

import { dewPoint } from "../live/comfort.ts";
import type { Metric, RuleSpec } from "./rules.ts";

/** A reading as rules see it: values rounded to the hundredths they are stored in. */
export interface Sample {
  ts: number;
  t: number;
  h: number;
}

/** A rule's state for one device. */
export interface RuleState {
  phase: "ok" | "pending" | "firing";
  /** When the condition began: the first reading beyond the threshold. */
  since: number;
  /** Above (1) or below (-1) the threshold. */
  dir: 1 | -1;
  /** The worst value since the condition began, and when. */
  peak: number;
  peakAt: number;
  /** The latest value seen. */
  last: number | null;
  /** stuck: the first reading of the run of identical values; jump: the previous reading. */
  ref: Sample | null;
}

/** What a step did: nothing, fired (the incident opens), or cleared (it resolves). */
export type Step =
  | null
  | { type: "fire"; since: number; value: number; threshold: number | null; from?: number }
  | { type: "clear"; value: number | null };

/** A fresh state: nothing seen. */
export const newState = (): RuleState => ({ phase: "ok", since: 0, dir: 1, peak: 0, peakAt: 0, last: null, ref: null });

/** Dew point of a reading, rounded like the stored values (null at 0 % humidity, where none exists). */
function dew(s: Sample): number | null {
  const d = dewPoint(s.t, s.h);
  return d === null ? null : Math.round(d * 100) / 100;
}

/** The value of `metric` in a reading. */
export function metricValue(metric: Metric | null, s: Sample): number | null {
  if (metric === "humidity") return s.h;
  if (metric === "dew_point") return dew(s);
  return s.t;
}

function track(state: RuleState, v: number, ts: number): void {
  state.last = v;
  if (state.dir > 0 ? v > state.peak : v < state.peak) {
    state.peak = v;
    state.peakAt = ts;
  }
}

/** Starts waiting: the condition began with this reading. */
function begin(state: RuleState, dir: 1 | -1, v: number, ts: number): void {
  state.phase = "pending";
  state.since = ts;
  state.dir = dir;
  state.peak = v;
  state.peakAt = ts;
  state.last = v;
}

/** Fires once the condition has held for the rule's duration. */
function maybeFire(rule: RuleSpec, state: RuleState, v: number, ts: number, threshold: number | null): Step {
  if (ts - state.since < rule.duration_s * 1000) return null;
  state.phase = "firing";
  return { type: "fire", since: state.since, value: v, threshold };
}

/** threshold: above max or below min for the duration; clears back past it by the hysteresis. */
function threshold(rule: RuleSpec, state: RuleState, s: Sample): Step {
  const v = metricValue(rule.metric, s);
  if (v === null) return null;
  if (state.phase === "firing") {
    track(state, v, s.ts);
    const cleared = state.dir > 0 ? v <= rule.max! - rule.hysteresis : v >= rule.min! + rule.hysteresis;
    if (!cleared) return null;
    state.phase = "ok";
    return { type: "clear", value: v };
  }
  const dir = rule.max !== null && v > rule.max ? 1 : rule.min !== null && v < rule.min ? -1 : 0;
  if (dir === 0) {
    state.phase = "ok";
    state.last = v;
    return null;
  }
  if (state.phase === "ok" || dir !== state.dir) begin(state, dir, v, s.ts);
  else track(state, v, s.ts);
  return maybeFire(rule, state, v, s.ts, dir > 0 ? rule.max : rule.min);
}

/** Surfaces a little colder than the air get wet once the air is within this of its dew point; clearing needs 1 °C more. */
const DEW_CLEAR_C = 1;

/** mould: humidity above max (or the air near its dew point) for the duration. */
function mould(rule: RuleSpec, state: RuleState, s: Sample): Step {
  const d = dew(s);
  const spread = d === null ? null : s.t - d;
  const near = rule.dew_margin !== null && spread !== null && spread < rule.dew_margin;
  if (state.phase === "firing") {
    track(state, s.h, s.ts);
    const farEnough = rule.dew_margin === null || spread === null || spread >= rule.dew_margin + DEW_CLEAR_C;
    if (s.h > rule.max! - rule.hysteresis || !farEnough) return null;
    state.phase = "ok";
    return { type: "clear", value: s.h };
  }
  if (!(s.h > rule.max! || near)) {
    state.phase = "ok";
    state.last = s.h;
    return null;
  }
  if (state.phase === "ok") begin(state, 1, s.h, s.ts);
  else track(state, s.h, s.ts);
  return maybeFire(rule, state, s.h, s.ts, rule.max);
}

/** stuck: temperature and humidity identical on every reading for the duration. */
function stuck(rule: RuleSpec, state: RuleState, s: Sample): Step {
  const ref = state.ref;
  state.last = s.t;
  if (ref !== null && ref.t === s.t && ref.h === s.h) {
    if (state.phase === "firing" || s.ts - ref.ts < rule.duration_s * 1000) return null;
    state.phase = "firing";
    state.since = ref.ts;
    state.peak = s.t;
    state.peakAt = s.ts;
    return { type: "fire", since: ref.ts, value: s.t, threshold: null };
  }
  state.ref = s;
  if (state.phase !== "firing") return null;
  state.phase = "ok";
  return { type: "clear", value: s.t };
}

/** jump: a change of more than max between two readings at most duration apart; clears at the next calm reading. */
function jump(rule: RuleSpec, state: RuleState, s: Sample): Step {
  const v = metricValue(rule.metric, s);
  if (v === null) return null;
  const prev = state.ref;
  state.ref = s;
  state.last = v;
  const pv = prev === null ? null : metricValue(rule.metric, prev);
  const jumped = pv !== null && s.ts - prev!.ts <= rule.duration_s * 1000 && Math.abs(v - pv) > rule.max!;
  if (jumped) {
    if (state.phase === "firing") return null;
    state.phase = "firing";
    state.since = s.ts;
    state.dir = v > pv! ? 1 : -1;
    state.peak = v;
    state.peakAt = s.ts;
    return { type: "fire", since: s.ts, value: v, threshold: rule.max, from: pv! };
  }
  if (state.phase !== "firing") return null;
  state.phase = "ok";
  return { type: "clear", value: v };
}

/** The reading-driven kinds. */
const ON_READING = { threshold, mould, stuck, jump } as const;

/** Whether a rule of this kind looks at readings (stale and failures look at the clock and at status messages). */
export const readsReadings = (kind: RuleSpec["kind"]): kind is keyof typeof ON_READING => kind in ON_READING;

/**
 * Feeds one reading to a rule's state. A stale rule clears on any reading
 * (the device reports again); a failures rule ignores readings.
 */
export function onReading(rule: RuleSpec, state: RuleState, s: Sample): Step {
  if (readsReadings(rule.kind)) return ON_READING[rule.kind](rule, state, s);
  if (rule.kind === "stale" && state.phase === "firing") {
    state.phase = "ok";
    return { type: "clear", value: 0 };
  }
  return null;
}

/**
 * failures: fires once the sensor reports `failures` failed reads in a row
 * (its status message's sensor_failures), clears when it reports 0 (it reads again).
 */
export function onFailures(rule: RuleSpec, state: RuleState, failures: number, at: number): Step {
  state.last = failures;
  if (state.phase === "firing") {
    if (failures > state.peak) ((state.peak = failures), (state.peakAt = at));
    if (failures > 0) return null;
    state.phase = "ok";
    return { type: "clear", value: 0 };
  }
  if (failures < rule.failures!) return null;
  state.phase = "firing";
  state.since = at;
  state.peak = failures;
  state.peakAt = at;
  return { type: "fire", since: at, value: failures, threshold: rule.failures };
}

/**
 * stale: fires once nothing was heard from the device for `intervals` of its
 * own interval (lib/server/live/freshness.ts's expectedIntervalS, as the
 * dashboard measures it). `lastHeard` is when its last reading arrived (never
 * before the server started: a restart gives every sensor its full time to
 * reconnect, so an outage of the server alarms nobody). The value is the
 * seconds since then.
 */
export function onClock(rule: RuleSpec, state: RuleState, lastHeard: number, intervalS: number, now: number): Step {
  if (state.phase === "firing") {
    track(state, Math.round((now - lastHeard) / 1000), now);
    return null;
  }
  const dueAt = lastHeard + rule.intervals! * intervalS * 1000;
  if (now < dueAt) return null;
  const silentS = Math.round((now - lastHeard) / 1000);
  state.phase = "firing";
  state.dir = 1;
  state.since = lastHeard;
  state.peak = silentS;
  state.peakAt = now;
  state.last = silentS;
  return { type: "fire", since: lastHeard, value: silentS, threshold: rule.intervals! * intervalS };
}
