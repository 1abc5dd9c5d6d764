// API routes of alerts, under /api/v1/alerts: rules (with presets),
// incidents (list, one with its notifications, acknowledge), notification
// channels (their secrets never sent back; "test" sends one now), the
// settings (quiet hours, repeats, digest) and the notifications queued or
// sent. Bad input is a 400 naming the field, like every other API route (the
// SPEC's rule for the whole API): a value that is not a number, min above
// max, an unknown room or device. The pages answer the same mistakes with 422
// and the form (lib/server/http/pages/alerts.ts).

import { Elysia, t } from "elysia";
import type { Alerts } from "../../alerts/alerts.ts";
import { incidentJson } from "../../alerts/messages.ts";
import { describeRule, METRICS, RULE_KINDS, SEVERITIES, unitOf, type RuleSpec } from "../../alerts/rules.ts";
import { settingsJson } from "../../alerts/settings.ts";
import { ruleOf } from "../../alerts/engine.ts";
import type { AlertRuleRow, OutboxRow } from "../../store/store.ts";
import { choiceParam, idString, integerParam, iso, optionalText, parseTime } from "../params.ts";

/** The API's JSON for a rule. */
export function ruleJson(row: AlertRuleRow) {
  const { spec } = ruleOf(row);
  return {
    id: row.id,
    name: row.name,
    kind: spec.kind,
    metric: spec.metric,
    unit: spec.kind === "threshold" || spec.kind === "jump" || spec.kind === "mould" ? unitOf(spec.metric) : null,
    min: spec.min,
    max: spec.max,
    hysteresis: spec.hysteresis,
    duration_s: spec.duration_s,
    intervals: spec.intervals,
    failures: spec.failures,
    dew_margin: spec.dew_margin,
    severity: spec.severity,
    room: row.room_uid ? { uid: row.room_uid, name: row.room_name } : null,
    device: row.device_uid ? { uid: row.device_uid, label: row.device_label } : null,
    enabled: spec.enabled,
    description: describeRule(spec),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** A notification as listed (its payload is the JSON a webhook receives). */
const notificationJson = (n: OutboxRow & { channel_name: string }) => ({
  id: n.id,
  channel: { id: n.channel_id, name: n.channel_name },
  incident_id: n.incident_id,
  event: n.event,
  severity: n.severity,
  state: n.state,
  attempts: n.attempts,
  created_at: iso(n.created_at),
  next_attempt_at: n.state === "pending" ? iso(n.next_at) : null,
  sent_at: iso(n.sent_at),
  last_error: n.last_error,
  notification: JSON.parse(n.payload),
});

/** A number, or null; the message names the field (on the union too: TypeBox reports a failed one as "Expected union value"). */
const numberOrNull = (field: string) => {
  const error = `${field} must be a number, or null`;
  return t.Optional(t.Nullable(t.Number({ error }), { error }));
};
const choice = <T extends string>(field: string, values: readonly T[]) => {
  const error = `${field} must be one of ${values.join(", ")}`;
  return t.Optional(
    t.Union(
      values.map((v) => t.Literal(v)),
      { error },
    ),
  );
};
const uidOrNull = (field: string) => {
  const error = `${field} must be 1-50 characters of A-Z a-z 0-9 _ -, or null`;
  return t.Optional(t.Nullable(idString(field), { error }));
};

/** A rule's fields (every one optional: a change keeps the rest; creating needs `kind` or `preset`). */
const ruleBody = t.Object({
  preset: t.Optional(t.String({ error: "preset must be the id of a preset (GET /api/v1/alerts/presets)" })),
  name: optionalText("name", 100),
  kind: choice("kind", RULE_KINDS),
  metric: t.Optional(
    t.Nullable(t.Union(METRICS.map((m) => t.Literal(m))), { error: `metric must be one of ${METRICS.join(", ")}, or null` }),
  ),
  min: numberOrNull("min"),
  max: numberOrNull("max"),
  hysteresis: t.Optional(t.Number({ error: "hysteresis must be a number" })),
  duration_s: t.Optional(t.Integer({ error: "duration_s must be a whole number of seconds" })),
  intervals: numberOrNull("intervals"),
  failures: numberOrNull("failures"),
  dew_margin: numberOrNull("dew_margin"),
  severity: choice("severity", SEVERITIES),
  room_uid: uidOrNull("room_uid"),
  device_uid: uidOrNull("device_uid"),
  enabled: t.Optional(t.Boolean({ error: "enabled must be true or false" })),
});

const str = (field: string, max: number) =>
  t.Optional(
    t.Nullable(t.String({ maxLength: max, error: `${field} must be text of at most ${max} characters, or null` }), {
      error: `${field} must be text of at most ${max} characters, or null`,
    }),
  );

/** A channel's fields; each kind reads its own (ntfy: url, topic, token; webhook: url, secret; email: host… to). */
const channelBody = t.Object({
  name: t.Optional(t.String({ error: "name must be text" })),
  kind: choice("kind", ["ntfy", "webhook", "email"] as const),
  min_severity: choice("min_severity", SEVERITIES),
  enabled: t.Optional(t.Boolean({ error: "enabled must be true or false" })),
  url: str("url", 500),
  topic: str("topic", 64),
  token: str("token", 200),
  secret: str("secret", 200),
  host: str("host", 200),
  port: t.Optional(
    t.Nullable(t.Integer({ error: "port must be a port number 1-65535" }), { error: "port must be a port number 1-65535" }),
  ),
  security: choice("security", ["starttls", "tls", "none"] as const),
  username: str("username", 200),
  password: str("password", 200),
  from: str("from", 200),
  to: t.Optional(
    t.Union([t.String(), t.Array(t.String())], { error: "to must be an address, a comma-separated list or an array of them" }),
  ),
  ca: str("ca", 20_000),
});

const settingsBody = t.Object({
  quiet_start: str("quiet_start", 5),
  quiet_end: str("quiet_end", 5),
  quiet_allows_critical: t.Optional(t.Boolean({ error: "quiet_allows_critical must be true or false" })),
  repeat_minutes: t.Optional(t.Integer({ error: "repeat_minutes must be a whole number of minutes" })),
  digest_time: str("digest_time", 5),
  link_base: str("link_base", 200),
});

const idParams = t.Object({ id: integerParam("id", 1, 2 ** 31) });

/** `?state=&room_uid=&device_uid=&from=&to=&before=&limit=` of the incident list. */
const incidentQuery = t.Object({
  state: t.Optional(choiceParam("state", ["open", "acknowledged", "resolved", "active"] as const)),
  room_uid: t.Optional(t.String()),
  device_uid: t.Optional(t.String()),
  from: t.Optional(t.String()),
  to: t.Optional(t.String()),
  before: t.Optional(integerParam("before", 1, 2 ** 31)),
  limit: t.Optional(integerParam("limit", 1, 1000)),
});

/** Creates the `/alerts` routes (mounted under /api/v1). */
export function createAlertsApi({ alerts, callerName }: { alerts: Alerts; callerName: (request: Request) => string | null }) {
  return new Elysia({ prefix: "/alerts" })
    .get("/rules", () => ({ data: alerts.rules.list().map(ruleJson) }))
    .get("/rules/:id", ({ params }) => ({ data: ruleJson(alerts.rules.get(params.id)) }), { params: idParams })
    .post(
      "/rules",
      ({ body, set }) => {
        const row = alerts.rules.create(body as Partial<RuleSpec> & { preset?: string });
        set.status = 201;
        return { data: ruleJson(row), message: "Rule created" };
      },
      { body: ruleBody },
    )
    .put(
      "/rules/:id",
      ({ params, body }) => ({ data: ruleJson(alerts.rules.update(params.id, body)), message: "Rule updated" }),
      {
        params: idParams,
        body: ruleBody,
      },
    )
    .delete(
      "/rules/:id",
      ({ params }) => {
        alerts.rules.remove(params.id);
        return { message: "Rule deleted", id: params.id };
      },
      { params: idParams },
    )
    .get("/presets", () => ({
      data: alerts.rules.presets.map((p) => ({
        id: p.id,
        ...p.spec,
        description: describeRule({ ...p.spec, room_uid: null, device_uid: null }),
      })),
    }))
    .get(
      "/incidents",
      ({ query }) => {
        const incidents = alerts.incidents.list({
          state: query.state,
          roomUid: query.room_uid,
          deviceUid: query.device_uid,
          from: query.from === undefined ? undefined : parseTime("from", query.from),
          to: query.to === undefined ? undefined : parseTime("to", query.to),
          before: query.before,
          limit: query.limit ?? 100,
        });
        return { data: incidents.map(incidentJson) };
      },
      { query: incidentQuery },
    )
    .get(
      "/incidents/:id",
      ({ params }) => ({
        data: {
          ...incidentJson(alerts.incidents.get(params.id)),
          notifications: alerts.incidents.notifications(params.id).map(notificationJson),
        },
      }),
      { params: idParams },
    )
    .post(
      "/incidents/:id/ack",
      ({ params, request }) => ({
        data: incidentJson(alerts.incidents.acknowledge(params.id, callerName(request))),
        message: "Acknowledged",
      }),
      { params: idParams },
    )
    .get("/channels", () => ({ data: alerts.channels.list().map(alerts.channels.json) }))
    .get("/channels/:id", ({ params }) => ({ data: alerts.channels.json(alerts.channels.get(params.id)) }), { params: idParams })
    .post(
      "/channels",
      ({ body, set }) => {
        const { row, secret } = alerts.channels.create(body);
        set.status = 201;
        // A secret made up for a webhook is shown this once.
        return { data: alerts.channels.json(row), ...(secret ? { secret } : {}), message: "Channel created" };
      },
      { body: channelBody },
    )
    .put(
      "/channels/:id",
      ({ params, body }) => ({ data: alerts.channels.json(alerts.channels.update(params.id, body)), message: "Channel updated" }),
      { params: idParams, body: channelBody },
    )
    .delete(
      "/channels/:id",
      ({ params }) => {
        alerts.channels.remove(params.id);
        return { message: "Channel deleted", id: params.id };
      },
      { params: idParams },
    )
    .post(
      "/channels/:id/test",
      async ({ params, set }) => {
        const error = await alerts.channels.test(params.id);
        if (error === null) return { data: { delivered: true }, message: "Test notification delivered" };
        // The receiver failed, not the request: 502 like a gateway whose upstream did.
        set.status = 502;
        return { error: `test notification not delivered: ${error}` };
      },
      { params: idParams },
    )
    .post(
      "/mqtt/test",
      async ({ body }) => {
        await alerts.channels.testMqtt(body.home_id ?? "home-001");
        return { data: { published: `home/${body.home_id ?? "home-001"}/alerts/test` }, message: "Test message published" };
      },
      { body: t.Object({ home_id: t.Optional(idString("home_id")) }) },
    )
    .get("/settings", () => ({ data: { ...settingsJson(alerts.settings.get()), time_zone: alerts.timeZone } }))
    .put(
      "/settings",
      ({ body }) => ({
        data: { ...settingsJson(alerts.settings.update(body)), time_zone: alerts.timeZone },
        message: "Settings saved",
      }),
      {
        body: settingsBody,
      },
    )
    .get(
      "/notifications",
      ({ query }) => ({
        data: alerts.notifications.list({ state: query.state, limit: query.limit ?? 100 }).map(notificationJson),
      }),
      {
        query: t.Object({
          state: t.Optional(choiceParam("state", ["pending", "sent", "failed", "skipped"] as const)),
          limit: t.Optional(integerParam("limit", 1, 1000)),
        }),
      },
    );
}
