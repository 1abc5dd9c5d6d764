// The alert pages: /alerts (incidents to acknowledge, history),
// /alerts/rules (rules, presets) and /alerts/channels (the owner's: channels
// with "Send test", the settings). A plain form post is redirected with a
// notice; an htmx post gets the page; a bad form gets the page with each
// problem next to its field (422). Also what the dashboard needs: the
// incidents not resolved by room, and their changes for the event stream.

import { Elysia, t } from "elysia";
import type { Alerts } from "../../alerts/alerts.ts";
import { channelJson } from "../../alerts/channels.ts";
import { describeRule, PRESETS } from "../../alerts/rules.ts";
import { ruleOf } from "../../alerts/engine.ts";
import { settingsJson } from "../../alerts/settings.ts";
import type { Live, LiveChange } from "../../live/live.ts";
import type { AlertRuleRow, ChannelRow, Store } from "../../store/store.ts";
import { AlertsPage } from "../../../../views/alerts.tsx";
import { ChannelsPage, type ChannelsPageData, type ChannelView } from "../../../../views/alerts-channels.tsx";
import { RulesPage, type Choice, type RulesPageData, type RuleView } from "../../../../views/alerts-rules.tsx";
import { freshForm, type Shell } from "../../../../views/parts.tsx";
import { integerParam } from "../params.ts";
import {
  channelForm,
  channelInput,
  presetForm,
  ruleForm,
  ruleInput,
  settingsForm,
  settingsInput,
  showError,
} from "./alerts-forms.ts";
import { isHtmx, redirect, withStatus, type Respond } from "./page.ts";

const NOTICES: Record<string, string> = {
  acknowledged: "Acknowledged: no more repeats.",
  created: "Rule created.",
  saved: "Saved.",
  deleted: "Deleted.",
  added: "Channel added.",
  settings: "Settings saved.",
};

const idParams = t.Object({ id: integerParam("id", 1, 2 ** 31) });
const noticeQuery = t.Object({ done: t.Optional(t.String()), before: t.Optional(t.String()) });
const WEEK = 7 * 86_400_000;
const HISTORY_PAGE = 50;

/** A rule's fields as its edit form shows them. */
function ruleValues(row: AlertRuleRow): Record<string, string> {
  const { spec } = ruleOf(row);
  const n = (v: number | null) => (v === null ? "" : String(v));
  return {
    name: spec.name,
    kind: spec.kind,
    metric: spec.metric ?? "temperature",
    severity: spec.severity,
    scope: row.room_uid ? `room:${row.room_uid}` : row.device_uid ? `device:${row.device_uid}` : "",
    min: n(spec.min),
    max: n(spec.max),
    hysteresis: spec.kind === "threshold" || spec.kind === "mould" ? String(spec.hysteresis) : "",
    duration: spec.duration_s > 0 || spec.kind === "threshold" ? String(spec.duration_s / 60) : "",
    intervals: n(spec.intervals),
    failures: n(spec.failures),
    dew_margin: n(spec.dew_margin),
    enabled: spec.enabled ? "yes" : "",
  };
}

/** A channel's settings as its edit form shows them (never its secrets). */
function channelValues(row: ChannelRow): Record<string, string> {
  const c = channelJson(row) as Record<string, unknown>;
  const s = (k: string) =>
    c[k] === undefined || c[k] === null ? "" : Array.isArray(c[k]) ? (c[k] as string[]).join(", ") : String(c[k]);
  return {
    name: row.name,
    kind: row.kind,
    min_severity: row.min_severity,
    url: s("url"),
    topic: s("topic"),
    host: s("host"),
    port: s("port"),
    security: s("security") || "starttls",
    username: s("username"),
    from: s("from"),
    to: s("to"),
    enabled: row.enabled === 1 ? "yes" : "",
  };
}

function channelSummary(row: ChannelRow): string {
  const c = channelJson(row) as Record<string, unknown>;
  if (row.kind === "ntfy") return `${c.url}, topic ${c.topic}`;
  if (row.kind === "webhook") return `POST ${c.url}, signed`;
  return `to ${(c.to as string[]).join(", ")} via ${c.host}:${c.port} (${c.security})`;
}

/** Creates the alert pages. */
export function createAlertsPages({ alerts, store, respond }: { alerts: Alerts; store: Store; respond: Respond }) {
  const scopes = (): Choice[] => [
    ["", "every room"],
    ...store.listRooms().map((r): Choice => [`room:${r.uid}`, `room: ${r.name}`]),
    ...store
      .listDevices()
      .map((d): Choice => [`device:${d.uid}`, `sensor: ${d.label || d.uid}${d.room_name ? ` (${d.room_name})` : ""}`]),
  ];

  const rulesPage = (shell: Shell, extra: Partial<RulesPageData> = {}) =>
    RulesPage({
      shell,
      rules: alerts.rules.list().map((row): RuleView => ({
        id: row.id,
        name: row.name,
        description: describeRule(ruleOf(row).spec),
        severity: row.severity,
        scope: row.room_uid
          ? `in ${row.room_name}`
          : row.device_uid
            ? `sensor ${row.device_label || row.device_uid}`
            : "every room",
        enabled: row.enabled === 1,
        values: ruleValues(row),
      })),
      scopes: scopes(),
      presets: PRESETS.map((p): Choice => [
        p.id,
        `${p.spec.name}: ${describeRule({ ...p.spec, room_uid: null, device_uid: null })}`,
      ]),
      create: freshForm({ kind: "threshold", metric: "temperature", severity: "warning", scope: "" }),
      preset: freshForm({ preset: PRESETS[0]!.id, scope: "" }),
      ...extra,
    });

  const channelsPage = (shell: Shell, extra: Partial<ChannelsPageData> = {}) => {
    const s = settingsJson(alerts.settings.get());
    const homes = [...new Set(store.listDevices().map((d) => d.home_id ?? "home-001"))];
    return ChannelsPage({
      shell,
      channels: alerts.channels.list().map((row): ChannelView => ({
        id: row.id,
        name: row.name,
        kind: row.kind,
        summary: channelSummary(row),
        minSeverity: row.min_severity,
        enabled: row.enabled === 1,
        lastOkAt: row.last_ok_at,
        lastError: row.last_error,
        lastErrorAt: row.last_error_at,
        values: channelValues(row),
      })),
      create: freshForm({ kind: "ntfy", min_severity: "warning", security: "starttls", url: "https://ntfy.sh" }),
      settings: freshForm({
        quiet_start: s.quiet_start ?? "",
        quiet_end: s.quiet_end ?? "",
        quiet_allows_critical: s.quiet_allows_critical ? "yes" : "",
        repeat_minutes: String(s.repeat_minutes),
        digest_time: s.digest_time ?? "",
        link_base: s.link_base ?? "",
      }),
      homeIds: homes.length ? homes : ["home-001"],
      failed: alerts.notifications
        .list({ state: "failed", limit: 20 })
        .filter((n) => n.created_at >= shell.now - WEEK)
        .map((n) => ({
          id: n.id,
          channel: n.channel_name,
          title: (JSON.parse(n.payload) as { title: string }).title,
          at: n.created_at,
          error: n.last_error,
        })),
      timeZone: alerts.timeZone,
      ...extra,
    });
  };

  /** After a change: the page for htmx, a redirect with a notice for a plain post. */
  const done = (request: Request, shell: Shell, path: string, what: keyof typeof NOTICES) => {
    if (!isHtmx(request)) return redirect(`${path}?done=${what}`);
    if (path === "/alerts/rules") return rulesPage(shell, { notice: NOTICES[what] });
    if (path === "/alerts/channels") return channelsPage(shell, { notice: NOTICES[what] });
    return alertsPage(shell, { notice: NOTICES[what] });
  };

  function alertsPage(shell: Shell, extra: { notice?: string; before?: number } = {}) {
    const history = alerts.incidents.list({ limit: HISTORY_PAGE + 1, before: extra.before });
    return AlertsPage({
      shell,
      active: alerts.active(),
      history: history.slice(0, HISTORY_PAGE),
      nextBefore: history.length > HISTORY_PAGE ? history[HISTORY_PAGE - 1]!.id : null,
      failed: alerts.notifications.list({ state: "failed", limit: 1000 }).filter((n) => n.created_at >= shell.now - WEEK).length,
      notice: extra.notice,
    });
  }

  /** Checks and applies a rule form (`id`: a change); the page, or the form with its problems (422). */
  function saveRule(request: Request, shell: Shell, body: unknown, id: number | null) {
    const { form, ...checked } = ruleForm.read(body);
    if (checked.ok) {
      try {
        const input = ruleInput(checked.data, id !== null);
        if (id === null) alerts.rules.create(input);
        else alerts.rules.update(id, input);
        return done(request, shell, "/alerts/rules", id === null ? "created" : "saved");
      } catch (err) {
        if (!showError(form, err)) throw err;
      }
    }
    return withStatus(rulesPage(shell, id === null ? { create: form } : { edit: { id, form } }), 422);
  }

  function saveChannel(request: Request, shell: Shell, body: unknown, id: number | null) {
    const { form, ...checked } = channelForm.read(body);
    if (checked.ok) {
      try {
        const input = channelInput(checked.data as Record<string, string>, id !== null);
        if (id !== null) {
          alerts.channels.update(id, input);
          return done(request, shell, "/alerts/channels", "saved");
        }
        const { row, secret } = alerts.channels.create(input);
        // A secret made up for a webhook is shown once: the answer itself, never a redirect.
        if (secret) return channelsPage(shell, { notice: NOTICES.added, createdSecret: { name: row.name, secret } });
        return done(request, shell, "/alerts/channels", "added");
      } catch (err) {
        if (!showError(form, err, {})) throw err;
      }
    }
    // What was typed stays, never a secret.
    for (const k of ["token", "secret", "password"]) form.values[k] = "";
    return withStatus(channelsPage(shell, id === null ? { create: form } : { edit: { id, form } }), 422);
  }

  const notice = (done: string | undefined) => NOTICES[done ?? ""];

  return new Elysia()
    .get(
      "/alerts",
      ({ request, query }) =>
        respond(request, (shell) => {
          const before = query.before && /^\d{1,12}$/.test(query.before) ? Number(query.before) : undefined;
          return alertsPage(shell, { notice: notice(query.done), before });
        }),
      { query: noticeQuery },
    )
    .post(
      "/alerts/incidents/:id/ack",
      ({ request, params }) =>
        respond(request, (shell) => {
          alerts.incidents.acknowledge(params.id, shell.viewer.name);
          return done(request, shell, "/alerts", "acknowledged");
        }),
      { params: idParams },
    )
    .get("/alerts/rules", ({ request, query }) => respond(request, (shell) => rulesPage(shell, { notice: notice(query.done) })), {
      query: noticeQuery,
    })
    .post("/alerts/rules", ({ request, body }) => respond(request, (shell) => saveRule(request, shell, body, null)))
    .post("/alerts/rules/preset", ({ request, body }) =>
      respond(request, (shell) => {
        const { form, ...checked } = presetForm.read(body);
        try {
          const scope = checked.data.scope ?? "";
          const m = /^(room|device):(.+)$/.exec(scope);
          alerts.rules.create({
            preset: checked.data.preset,
            room_uid: m?.[1] === "room" ? m[2] : null,
            device_uid: m?.[1] === "device" ? m[2] : null,
          });
          return done(request, shell, "/alerts/rules", "created");
        } catch (err) {
          if (!showError(form, err, { room_uid: "scope", device_uid: "scope" }, "preset")) throw err;
        }
        return withStatus(rulesPage(shell, { preset: form }), 422);
      }),
    )
    .post(
      "/alerts/rules/:id",
      ({ request, params, body }) =>
        respond(request, (shell) => (alerts.rules.get(params.id), saveRule(request, shell, body, params.id))),
      {
        params: idParams,
      },
    )
    .post(
      "/alerts/rules/:id/delete",
      ({ request, params }) =>
        respond(request, (shell) => {
          alerts.rules.remove(params.id);
          return done(request, shell, "/alerts/rules", "deleted");
        }),
      { params: idParams },
    )
    .get(
      "/alerts/channels",
      ({ request, query }) => respond(request, (shell) => channelsPage(shell, { notice: notice(query.done) })),
      {
        query: noticeQuery,
      },
    )
    .post("/alerts/channels", ({ request, body }) => respond(request, (shell) => saveChannel(request, shell, body, null)))
    .post("/alerts/channels/mqtt-test", ({ request }) =>
      respond(request, async (shell) => {
        const home = store.listDevices()[0]?.home_id ?? "home-001";
        let error: string | null = null;
        await alerts.channels.testMqtt(home).catch((err: Error) => (error = err.message));
        return channelsPage(shell, { tested: { id: "mqtt", error } });
      }),
    )
    .post(
      "/alerts/channels/:id",
      ({ request, params, body }) =>
        respond(request, (shell) => (alerts.channels.get(params.id), saveChannel(request, shell, body, params.id))),
      { params: idParams },
    )
    .post(
      "/alerts/channels/:id/delete",
      ({ request, params }) =>
        respond(request, (shell) => {
          alerts.channels.remove(params.id);
          return done(request, shell, "/alerts/channels", "deleted");
        }),
      { params: idParams },
    )
    .post(
      "/alerts/channels/:id/test",
      ({ request, params }) =>
        respond(request, async (shell) => {
          const error = await alerts.channels.test(params.id);
          return channelsPage(shell, { tested: { id: params.id, error } });
        }),
      { params: idParams },
    )
    .post("/alerts/settings", ({ request, body }) =>
      respond(request, (shell) => {
        const { form, ...checked } = settingsForm.read(body);
        if (checked.ok) {
          try {
            alerts.settings.update(settingsInput(checked.data));
            return done(request, shell, "/alerts/channels", "settings");
          } catch (err) {
            if (!showError(form, err, {})) throw err;
          }
        }
        return withStatus(channelsPage(shell, { settings: form }), 422);
      }),
    );
}

/** Incidents not resolved by room uid (null = a device in no room): the room cards' marks. */
export function alertsByRoom(alerts: Pick<Alerts, "active">) {
  const byRoom = new Map<string | null, ReturnType<Alerts["active"]>>();
  for (const i of alerts.active()) byRoom.set(i.room_uid, [...(byRoom.get(i.room_uid) ?? []), i]);
  return byRoom;
}

/** A change of the live cards that came from alerts: the banner and the cards of the rooms concerned. */
export type AlertChange = LiveChange & { alerts?: true };

/**
 * The live summaries' changes and the alerts' in one stream, for the event
 * hub: an incident's change pushes the cards of its rooms (their marks) and
 * the banner, like a reading pushes its room's card.
 */
export function withAlertChanges(live: Pick<Live, "version" | "onChange">, alerts: Pick<Alerts, "onChange"> | undefined) {
  if (!alerts) return live;
  return {
    get version() {
      return live.version;
    },
    onChange(listener: (change: AlertChange) => void): () => void {
      const a = live.onChange(listener);
      const b = alerts.onChange((rooms) => {
        const named = new Set([...rooms].filter((r): r is string => r !== null));
        listener({ rooms: named, unplaced: false, devices: new Set(), layout: false, version: live.version, alerts: true });
      });
      return () => {
        a();
        b();
      };
    },
  };
}
