// What incidents say: the sentence stored with an incident when it opens,
// the notifications about it (title, message, the incident as JSON) and its
// retained MQTT state. Times are written in the home's time zone; the JSON
// keeps ISO-8601 UTC like the API.

import type { IncidentRow } from "../store/store.ts";
import type { Step } from "./evaluate.ts";
import { metricName, spanText, unitOf, withUnit, type Metric, type RuleSpec, type Severity } from "./rules.ts";
import { fmtLocal } from "./schedule.ts";

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Where an incident happened: "Freezer (aht20-f49c53)", or the device alone when it is in no room. */
export const whereText = (i: Pick<IncidentRow, "room_name" | "device_name">): string =>
  i.room_name === null ? i.device_name : `${i.room_name} (${i.device_name})`;

/** What the step that fired a rule found, as the incident's sentence. */
export function openingText(
  rule: Pick<RuleSpec, "kind" | "metric" | "max" | "intervals">,
  fire: Extract<Step, { type: "fire" }>,
  where: string,
  timeZone: string,
  extra: { intervalS?: number; lastError?: string | null } = {},
): string {
  const m = rule.metric as Metric | null;
  const at = fmtLocal(fire.since, timeZone);
  switch (rule.kind) {
    case "threshold": {
      const side = fire.threshold !== null && fire.value > fire.threshold ? "above" : "below";
      return `${where}: ${metricName(m)} ${withUnit(fire.value, m)}, ${side} ${withUnit(fire.threshold!, m)} since ${at}`;
    }
    case "mould":
      return `${where}: humidity ${withUnit(fire.value, "humidity")} since ${at}, mould risk (above ${withUnit(rule.max!, "humidity")} or near the dew point); ventilate`;
    case "stuck":
      return `${where}: the sensor has sent identical readings since ${at}; is it stuck?`;
    case "jump":
      return `${where}: ${metricName(m)} jumped from ${withUnit(fire.from!, m)} to ${withUnit(fire.value, m)} between two readings, which is implausible`;
    case "stale":
      return `${where}: no reading since ${at} (${spanText(fire.value)}); it reports every ${spanText(extra.intervalS ?? 0)}`;
    case "failures":
      return `${where}: the sensor failed ${fire.value} reads in a row${extra.lastError ? ` (${extra.lastError})` : ""}`;
  }
}

/** Why an incident resolved, in words (the API's `end_reason`). */
export const END_REASONS = {
  cleared: "the condition cleared",
  rule_changed: "its rule was changed",
  rule_deleted: "its rule was deleted",
  rule_disabled: "its rule was turned off",
  device_moved: "the device left the room",
  device_deleted: "the device was deleted",
} as const;

/** An end reason. */
export type EndReason = keyof typeof END_REASONS;

/** How a resolved incident ended, as a sentence. */
function resolvedText(i: IncidentRow, timeZone: string): string {
  const where = whereText(i);
  const end = i.ended_at ?? i.opened_at;
  const lasted = spanText((end - i.started_at) / 1000);
  if (i.end_reason !== "cleared") {
    return `${where}: no longer watched at ${fmtLocal(end, timeZone)} because ${END_REASONS[i.end_reason as EndReason] ?? i.end_reason}`;
  }
  const m = i.metric as Metric | null;
  const peak = i.peak !== null && (i.kind === "threshold" || i.kind === "mould") ? `, worst ${withUnit(i.peak, m)}` : "";
  switch (i.kind) {
    case "stale":
      return `${where}: reporting again at ${fmtLocal(end, timeZone)} after ${lasted} of silence`;
    case "failures":
      return `${where}: the sensor reads again (${fmtLocal(end, timeZone)})`;
    case "stuck":
      return `${where}: the readings change again (${fmtLocal(end, timeZone)}), after ${lasted}`;
    case "jump":
      return `${where}: readings are plausible again (${fmtLocal(end, timeZone)})`;
    default: {
      const back = i.last_value !== null ? ` back to ${withUnit(i.last_value, m)}` : " back to normal";
      return `${where}: ${metricName(m)}${back} at ${fmtLocal(end, timeZone)}, after ${lasted} (since ${fmtLocal(i.started_at, timeZone)}${peak})`;
    }
  }
}

/** An incident as the API, webhooks and notifications show it. */
export function incidentJson(i: IncidentRow) {
  return {
    id: i.id,
    state: i.state,
    severity: i.severity,
    rule_id: i.rule_id,
    rule: i.rule_name,
    kind: i.kind,
    metric: i.metric,
    unit: i.kind === "threshold" || i.kind === "jump" || i.kind === "mould" ? unitOf(i.metric as Metric | null) : null,
    device: i.device_uid,
    device_name: i.device_name,
    room: i.room_uid,
    room_name: i.room_name,
    value: i.value,
    threshold: i.threshold,
    peak: i.peak,
    peak_at: iso(i.peak_at),
    last_value: i.last_value,
    since: iso(i.started_at),
    opened_at: iso(i.opened_at),
    acknowledged_at: iso(i.acknowledged_at),
    acknowledged_by: i.acknowledged_by,
    ended_at: iso(i.ended_at),
    end_reason: i.end_reason,
    repeats: i.repeats,
    message: i.message,
  };
}

/**
 * The retained state on `home/{home_id}/alerts/{id}` (SPEC: state, severity,
 * room, device, value, since), with the incident's other facts beside them.
 */
export function mqttState(i: IncidentRow) {
  return {
    state: i.state,
    severity: i.severity,
    room: i.room_uid,
    device: i.device_uid,
    value: i.state === "resolved" ? (i.last_value ?? i.value) : i.value,
    since: iso(i.started_at),
    ended: iso(i.ended_at),
    incident_id: i.id,
    rule_id: i.rule_id,
    rule: i.rule_name,
    kind: i.kind,
    metric: i.metric,
    threshold: i.threshold,
    peak: i.peak,
    message: i.message,
  };
}

/** A notification as queued: the same JSON is the webhook body, the ntfy message and the e-mail. */
export interface Notification {
  /** Stable across retries and restarts (the outbox's dedup key): a receiver may drop a repeat of it. */
  id: string;
  event: "opened" | "repeat" | "resolved" | "test" | "digest";
  severity: Severity;
  title: string;
  message: string;
  /** The alerts page, when the settings give the address of the pages. */
  link: string | null;
  incident: ReturnType<typeof incidentJson> | null;
  created_at: string;
}

const SEVERITY_WORD: Record<Severity, string> = { critical: "Critical", warning: "Warning", info: "Info" };

/** The notification of an incident event. */
export function incidentNotification(
  event: "opened" | "repeat" | "resolved",
  i: IncidentRow,
  id: string,
  ctx: { timeZone: string; linkBase: string | null; now: number },
): Notification {
  const place = i.room_name ?? i.device_name;
  const title =
    event === "resolved"
      ? `Resolved: ${i.rule_name} · ${place}`
      : `${event === "repeat" ? "Still: " : `${SEVERITY_WORD[i.severity as Severity] ?? i.severity}: `}${i.rule_name} · ${place}`;
  let message = i.message;
  if (event === "resolved") message = resolvedText(i, ctx.timeZone);
  else if (event === "repeat") {
    const peak =
      i.peak !== null && (i.kind === "threshold" || i.kind === "mould") ? `; worst ${withUnit(i.peak, i.metric as Metric)}` : "";
    message = `${i.message}. Not acknowledged after ${spanText((ctx.now - i.opened_at) / 1000)}${peak}`;
  }
  return {
    id,
    event,
    severity: i.severity as Severity,
    title,
    message,
    link: ctx.linkBase ? `${ctx.linkBase}/alerts#incident-${i.id}` : null,
    incident: incidentJson(i),
    created_at: new Date(ctx.now).toISOString(),
  };
}
