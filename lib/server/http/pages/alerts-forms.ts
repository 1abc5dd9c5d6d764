// The alert pages' forms: a rule, a preset, a channel, the settings. Each
// field is read as text and decoded (a number that is not one is named at
// once); what only the whole rule can tell (min above max, a room that does
// not exist, a hysteresis wider than the band) comes from the same checks
// the API uses (lib/server/alerts/rules.ts, channels.ts, settings.ts), and
// the field it names is shown next to the input. Every refusal is a 422
// with the form as it was typed.

import { t } from "elysia";
import { DomainError, invalid } from "../../../shared/errors.ts";
import type { ChannelInput } from "../../alerts/channels.ts";
import type { RuleInput } from "../../alerts/rules.ts";
import type { SettingsInput } from "../../alerts/settings.ts";
import { decodedText } from "../params.ts";
import { defineForm, textField } from "./forms.ts";
import type { FormState } from "../../../../views/parts.tsx";

/** A number as typed (a decimal comma is fine); "" is none (null). */
const numberField = (field: string) =>
  decodedText((value) => {
    if (value === "") return null;
    const n = /^[+-]?(\d+([.,]\d*)?|[.,]\d+)$/.test(value) ? Number(value.replace(",", ".")) : NaN;
    if (!Number.isFinite(n)) throw invalid(field, `${JSON.stringify(value.slice(0, 20))} is not a number`);
    return n;
  });

/** A rule's form. Durations are in minutes here (seconds in the API). */
export const ruleForm = defineForm({
  name: textField("name", 100),
  kind: t.String(),
  metric: t.String(),
  severity: t.String(),
  scope: t.String(),
  min: numberField("min"),
  max: numberField("max"),
  hysteresis: numberField("hysteresis"),
  duration: numberField("duration"),
  intervals: numberField("intervals"),
  failures: numberField("failures"),
  dew_margin: numberField("dew_margin"),
  enabled: t.String(),
});

/** A preset applied somewhere. */
export const presetForm = defineForm({ preset: t.String(), scope: t.String() });

/** What a scope choice means: "" every room, "room:uid", "device:uid". */
function scopeOf(scope: string): Pick<RuleInput, "room_uid" | "device_uid"> {
  if (scope === "") return { room_uid: null, device_uid: null };
  const m = /^(room|device):(.+)$/.exec(scope);
  if (!m) throw invalid("scope", `${JSON.stringify(scope)} is not a room or a device of the list`);
  return m[1] === "room" ? { room_uid: m[2], device_uid: null } : { room_uid: null, device_uid: m[2] };
}

/** The rule input of a checked rule form (empty numbers = defaults). */
export function ruleInput(d: Record<string, unknown>, withEnabled: boolean): RuleInput {
  const minutes = d.duration as number | null;
  return {
    name: (d.name as string) || null,
    kind: d.kind,
    metric: d.metric || null,
    severity: d.severity || null,
    ...scopeOf(d.scope as string),
    min: d.min,
    max: d.max,
    hysteresis: d.hysteresis,
    duration_s: minutes === null ? null : Math.round(minutes * 60),
    intervals: d.intervals,
    failures: d.failures,
    dew_margin: d.dew_margin,
    ...(withEnabled ? { enabled: d.enabled === "yes" } : {}),
  };
}

/** The form's field for a field the checks named. */
const RULE_FIELD: Record<string, string> = { duration_s: "duration", room_uid: "scope", device_uid: "scope" };

/** Puts an error of the checks next to its field; false when it is not about the input. */
export function showError(
  form: FormState,
  err: unknown,
  rename: Record<string, string> = RULE_FIELD,
  fallback = "name",
): boolean {
  if (!(err instanceof DomainError) || (err.kind !== "invalid" && err.kind !== "not_found" && err.kind !== "conflict"))
    return false;
  const field = err.field === null ? fallback : (rename[err.field] ?? err.field);
  let problem = err.problem;
  // The checks speak seconds; the form, minutes.
  const range = err.field === "duration_s" ? /outside (\d+)-(\d+)/.exec(problem) : null;
  if (range) problem = `must be from ${Number(range[1]) / 60} to ${Number(range[2]) / 60} minutes for this kind of rule`;
  else if (err.field === "duration_s") problem = problem.replace(/seconds?/g, "minutes");
  form.errors[field] = problem;
  return true;
}

/** A channel's form (every kind's fields; each kind reads its own). */
export const channelForm = defineForm(
  {
    name: textField("name", 50),
    kind: t.String(),
    min_severity: t.String(),
    url: textField("url", 500),
    topic: textField("topic", 64),
    token: textField("token", 200),
    secret: textField("secret", 200),
    host: textField("host", 200),
    port: textField("port", 5),
    security: t.String(),
    username: textField("username", 200),
    password: textField("password", 200),
    from: textField("from", 200),
    to: textField("to", 2000),
    ca: textField("ca", 20_000),
    enabled: t.String(),
  },
  { untrimmed: ["password", "token", "secret"] },
);

/** The channel input of a checked form; secrets left empty are left out (a change keeps them). */
export function channelInput(d: Record<string, string>, withEnabled: boolean): ChannelInput {
  const input: ChannelInput = {};
  for (const [k, v] of Object.entries(d)) {
    if (k === "enabled") continue;
    if ((k === "token" || k === "secret" || k === "password") && v === "") continue;
    input[k as keyof ChannelInput] = v === "" ? null : v;
  }
  if (withEnabled) input.enabled = d.enabled === "yes";
  return input;
}

/** The settings' form. */
export const settingsForm = defineForm({
  quiet_start: textField("quiet_start", 5),
  quiet_end: textField("quiet_end", 5),
  quiet_allows_critical: t.String(),
  repeat_minutes: decodedText((value) => {
    if (!/^\d{1,6}$/.test(value)) throw invalid("repeat_minutes", "a whole number of minutes, 0 for never");
    return Number(value);
  }),
  digest_time: textField("digest_time", 5),
  link_base: textField("link_base", 200),
});

/** The settings input of a checked form. */
export const settingsInput = (d: Record<string, unknown>): SettingsInput => ({
  quiet_start: d.quiet_start || null,
  quiet_end: d.quiet_end || null,
  quiet_allows_critical: d.quiet_allows_critical === "yes",
  repeat_minutes: d.repeat_minutes,
  digest_time: d.digest_time || null,
  link_base: d.link_base || null,
});
