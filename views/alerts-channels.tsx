/** @jsxImportSource @kitajs/html */
// Where alerts go (the owner's page): ntfy, webhook and e-mail channels,
// each with "Send test"; the MQTT topics (always on); notifications that
// failed; and the settings: quiet hours, repeats, the daily digest, the
// pages' address for links.

import { Select, type Choice } from "./alerts-rules.tsx";
import { formAttrs } from "./devices.tsx";
import { Layout } from "./layout.tsx";
import { Csrf, esc, Field, fmtTime, Input, type FormState, type Shell } from "./parts.tsx";

/** A channel as listed. */
export interface ChannelView {
  id: number;
  name: string;
  kind: "ntfy" | "webhook" | "email";
  /** "ntfy.sh, topic attic-alerts", "POST https://…", "to a@b.c via mail.example:587". */
  summary: string;
  minSeverity: string;
  enabled: boolean;
  lastOkAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Its settings as the edit form shows them (secrets never: empty keeps them). */
  values: Record<string, string>;
}

/** A notification given up. */
export interface FailedNotification {
  id: number;
  channel: string;
  title: string;
  at: number;
  error: string | null;
}

/** What the channels page shows. */
export interface ChannelsPageData {
  shell: Shell;
  channels: ChannelView[];
  create: FormState;
  edit?: { id: number; form: FormState };
  settings: FormState;
  /** The result of "Send test": which channel, and the problem (null: delivered). */
  tested?: { id: number | "mqtt"; error: string | null };
  /** A webhook secret made up at creation: shown this once. */
  createdSecret?: { name: string; secret: string };
  /** The home ids whose alert topics exist (`home/{id}/alerts/…`). */
  homeIds: string[];
  failed: FailedNotification[];
  /** The time zone quiet hours and the digest are in. */
  timeZone: string;
  notice?: string;
}

const KIND_CHOICES: Choice[] = [
  ["ntfy", "ntfy"],
  ["webhook", "Webhook (JSON POST, signed)"],
  ["email", "E-mail (SMTP)"],
];
const SEVERITY_CHOICES: Choice[] = [
  ["info", "everything (info and above)"],
  ["warning", "warning and critical"],
  ["critical", "critical only"],
];
const SECURITY_CHOICES: Choice[] = [
  ["starttls", "STARTTLS (587)"],
  ["tls", "TLS (465)"],
  ["none", "none (a local relay, 25)"],
];

/** The fields of a channel; each kind reads its own group. */
function ChannelFields({ form, p, kindFixed }: { form: FormState; p: string; kindFixed: boolean }): JSX.Element {
  const f = (name: string, label: string, hint?: string, type = "text") => (
    <Field label={label} id={`${p}${name}`} error={form.errors[name]} hint={hint}>
      <Input form={form} name={name} id={`${p}${name}`} type={type} />
    </Field>
  );
  return (
    <>
      <div class="row">
        {f("name", "Name")}
        {kindFixed ? (
          ""
        ) : (
          <Field label="Kind" id={`${p}kind`} error={form.errors.kind}>
            <Select form={form} name="kind" id={`${p}kind`} choices={KIND_CHOICES} />
          </Field>
        )}
        <Field label="Sends" id={`${p}min_severity`} error={form.errors.min_severity}>
          <Select form={form} name="min_severity" id={`${p}min_severity`} choices={SEVERITY_CHOICES} />
        </Field>
      </div>
      <fieldset>
        <legend>ntfy and webhook</legend>
        <div class="row">
          {f("url", "URL", "ntfy: the server (https://ntfy.sh or your own); webhook: where to POST", "url")}
          {f("topic", "ntfy topic")}
          {f("token", "ntfy access token", "Optional; empty keeps the one set", "password")}
          {f("secret", "Webhook secret", "Signs each POST (HMAC-SHA256); empty: one is made, or the one set is kept", "password")}
        </div>
      </fieldset>
      <fieldset>
        <legend>E-mail</legend>
        <div class="row">
          {f("host", "SMTP server")}
          {f("port", "Port", "Empty: by security")}
          <Field label="Security" id={`${p}security`} error={form.errors.security}>
            <Select form={form} name="security" id={`${p}security`} choices={SECURITY_CHOICES} />
          </Field>
        </div>
        <div class="row">
          {f("username", "User name", "Optional")}
          {f("password", "Password", "Empty keeps the one set", "password")}
          {f("from", "From", "alerts@example.org")}
          {f("to", "To", "Addresses, separated by commas")}
        </div>
      </fieldset>
      <Field
        label="CA certificates (PEM)"
        id={`${p}ca`}
        error={form.errors.ca}
        hint="Only for a server with its own CA; empty: the system's"
      >
        <textarea id={`${p}ca`} name="ca" rows="2">
          {esc(form.values.ca ?? "")}
        </textarea>
      </Field>
    </>
  );
}

function TestResult({ data, id }: { data: ChannelsPageData; id: number | "mqtt" }): JSX.Element {
  if (data.tested?.id !== id) return "";
  return data.tested.error === null ? (
    <p class="notice" role="status" id={`test-result-${id}`}>
      Test delivered.
    </p>
  ) : (
    <p class="error" role="alert" id={`test-result-${id}`}>
      Test not delivered: {esc(data.tested.error)}
    </p>
  );
}

function ChannelItem({ c, data }: { c: ChannelView; data: ChannelsPageData }): JSX.Element {
  const { shell } = data;
  const editing = data.edit?.id === c.id ? data.edit.form : null;
  const path = `/alerts/channels/${c.id}`;
  return (
    <section class="panel" id={`channel-${c.id}`}>
      <h3>
        {esc(c.name)} <small>{esc(c.kind)}</small> {c.enabled ? "" : <small>(off)</small>}
      </h3>
      <p>
        {esc(c.summary)} · sends {esc(c.minSeverity)} and above
      </p>
      <p class="muted">
        {c.lastOkAt !== null ? `Last delivered ${fmtTime(c.lastOkAt, shell.now, shell.timeZone)}. ` : ""}
        {c.lastError !== null && c.lastErrorAt !== null && (c.lastOkAt === null || c.lastErrorAt > c.lastOkAt) ? (
          <span class="error">
            Last failure {fmtTime(c.lastErrorAt, shell.now, shell.timeZone)}: {esc(c.lastError)}
          </span>
        ) : (
          ""
        )}
      </p>
      <TestResult data={data} id={c.id} />
      <form {...formAttrs(`${path}/test`)} class="inline">
        <Csrf shell={shell} />
        <button type="submit" class="secondary">
          Send test
        </button>
      </form>
      <details open={editing ? true : undefined}>
        <summary>Change or delete</summary>
        <form {...formAttrs(path)}>
          <Csrf shell={shell} />
          <ChannelFields form={editing ?? { values: c.values, errors: {} }} p={`c${c.id}-`} kindFixed />
          <label>
            <input
              type="checkbox"
              name="enabled"
              value="yes"
              checked={(editing ?? { values: c.values }).values.enabled === "yes"}
            />{" "}
            On
          </label>{" "}
          <button type="submit">Save</button>
        </form>
        <form {...formAttrs(`${path}/delete`)} class="inline">
          <Csrf shell={shell} />
          <button type="submit" class="danger">
            Delete
          </button>
        </form>
      </details>
    </section>
  );
}

/** The channels and settings page. */
export function ChannelsPage(data: ChannelsPageData): JSX.Element {
  const { shell, settings: s } = data;
  return (
    <Layout shell={shell} title="Alert channels" section="alerts">
      <main id="content">
        <h1>Channels and settings</h1>
        <p class="subnav">
          <a href="/alerts">Alerts</a> · <a href="/alerts/rules">Rules</a>
        </p>
        {data.notice ? (
          <p class="notice" role="status">
            {esc(data.notice)}
          </p>
        ) : (
          ""
        )}
        {data.createdSecret ? (
          <div class="secret panel" role="status">
            <p>
              The webhook <strong>{esc(data.createdSecret.name)}</strong> signs each POST with this secret (header{" "}
              <code>X-TechTemp-Signature-256: sha256=…</code>, HMAC-SHA256 of the body). Give it to the receiver:
            </p>
            <pre id="new-secret">{esc(data.createdSecret.secret)}</pre>
            <p class="muted">It is shown only now.</p>
          </div>
        ) : (
          ""
        )}
        {data.failed.length > 0 ? (
          <section class="panel" id="failed">
            <h2>Not delivered</h2>
            <ul>
              {data.failed.map((n) => (
                <li>
                  {fmtTime(n.at, shell.now, shell.timeZone)} · {esc(n.channel)}: {esc(n.title)}{" "}
                  <small class="error">{esc(n.error ?? "")}</small>
                </li>
              ))}
            </ul>
          </section>
        ) : (
          ""
        )}
        <h2>Channels</h2>
        {data.channels.length === 0 ? <p class="muted">No channel yet: alerts show on the pages and on MQTT only.</p> : ""}
        {data.channels.map((c) => (
          <ChannelItem c={c} data={data} />
        ))}
        <form {...formAttrs("/alerts/channels")} class="panel" id="create-channel">
          <Csrf shell={shell} />
          <h2>New channel</h2>
          <ChannelFields form={data.create} p="new-" kindFixed={false} />
          <button type="submit">Add</button>
        </form>
        <section class="panel" id="mqtt">
          <h2>MQTT</h2>
          <p>
            Always on: each rule's state per device is retained on{" "}
            {data.homeIds.map((h, n) => (
              <>
                {n > 0 ? ", " : ""}
                <code>home/{esc(h)}/alerts/rule-…</code>
              </>
            ))}{" "}
            (JSON: state open, acknowledged or resolved, severity, room, device, value, since), for Home Assistant and Node-RED.
          </p>
          <TestResult data={data} id="mqtt" />
          <form {...formAttrs("/alerts/channels/mqtt-test")} class="inline">
            <Csrf shell={shell} />
            <button type="submit" class="secondary">
              Publish a test on home/{esc(data.homeIds[0] ?? "home-001")}/alerts/test
            </button>
          </form>
        </section>
        <form {...formAttrs("/alerts/settings")} class="panel" id="settings">
          <Csrf shell={shell} />
          <h2>Settings</h2>
          <p class="muted">Times of day are in {esc(data.timeZone)}.</p>
          <div class="row">
            <Field label="Quiet from" id="quiet_start" error={s.errors.quiet_start} hint="Empty: no quiet hours">
              <Input form={s} name="quiet_start" type="time" />
            </Field>
            <Field label="Quiet until" id="quiet_end" error={s.errors.quiet_end}>
              <Input form={s} name="quiet_end" type="time" />
            </Field>
          </div>
          <label>
            <input type="checkbox" name="quiet_allows_critical" value="yes" checked={s.values.quiet_allows_critical === "yes"} />{" "}
            Critical alerts are sent during quiet hours too (others wait for their end)
          </label>
          <div class="row">
            <Field
              label="Repeat every (minutes)"
              id="repeat_minutes"
              error={s.errors.repeat_minutes}
              hint="Until acknowledged; 0: never"
            >
              <Input form={s} name="repeat_minutes" type="number" step="1" />
            </Field>
            <Field label="Daily digest at" id="digest_time" error={s.errors.digest_time} hint="Empty: no digest">
              <Input form={s} name="digest_time" type="time" />
            </Field>
            <Field label="Address of these pages" id="link_base" error={s.errors.link_base} hint="For links in notifications">
              <Input form={s} name="link_base" type="url" placeholder="http://techtemp.local:3000" />
            </Field>
          </div>
          <button type="submit">Save</button>
        </form>
      </main>
    </Layout>
  );
}
