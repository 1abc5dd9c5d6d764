/** @jsxImportSource @kitajs/html */
// The owner's security pages: API tokens (made, shown once, listed with
// their last use, revoked), and the rest: the settings kept on by an
// upgrade, enrollment tokens for new sensors, and the kiosk link.

import { Notice } from "./account.tsx";
import { formAttrs } from "./devices.tsx";
import { Layout } from "./layout.tsx";
import { Csrf, esc, Field, fmtTime, Input, type FormState, type Shell } from "./parts.tsx";

/** An API token as listed (never its secret). */
export interface TokenRow {
  id: number;
  name: string;
  scope: "read" | "write";
  prefix: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** What the tokens page shows. */
export interface TokensPageData {
  shell: Shell;
  tokens: TokenRow[];
  form: FormState;
  /** The token just made: shown this once. */
  created?: { name: string; token: string };
  notice?: string;
}

/** A secret shown once, with what to do with it. */
function ShownOnce({ id, children, value }: { id: string; children: JSX.Element; value: string }): JSX.Element {
  return (
    <div class="secret panel" role="status">
      {children}
      <pre id={id}>{esc(value)}</pre>
      <p class="muted">It is shown only now: the server keeps a hash of it, not the secret.</p>
    </div>
  );
}

/** The API tokens page. */
export function TokensPage(data: TokensPageData): JSX.Element {
  const { shell, form } = data;
  const at = (ms: number | null) => (ms === null ? "never" : fmtTime(ms, shell.now, shell.timeZone));
  return (
    <Layout shell={shell} title="API tokens" section="account">
      <main id="content">
        <h1>API tokens</h1>
        <Notice text={data.notice} />
        {data.created ? (
          <ShownOnce id="new-token" value={data.created.token}>
            <p>
              The token <strong>{esc(data.created.name)}</strong>. Send it as <code>Authorization: Bearer …</code>, e.g.{" "}
              <code>curl -H "Authorization: Bearer $TOKEN" http://…/api/v1/readings/latest</code>; MQTT tools use the token's name
              as user name and the token as password.
            </p>
          </ShownOnce>
        ) : (
          ""
        )}
        <form {...formAttrs("/tokens")} class="panel" id="create-token">
          <Csrf shell={shell} />
          <h2>New token</h2>
          <div class="row">
            <Field label="Name" id="name" error={form.errors.name} hint="What uses it: grafana, home-assistant…">
              <Input form={form} name="name" />
            </Field>
            <Field label="May" id="scope" error={form.errors.scope}>
              <select id="scope" name="scope">
                <option value="read" selected={form.values.scope !== "write"}>
                  read
                </option>
                <option value="write" selected={form.values.scope === "write"}>
                  read and write
                </option>
              </select>
            </Field>
          </div>
          <button type="submit">Make the token</button>
        </form>
        {data.tokens.length === 0 ? (
          <p class="muted">No token yet.</p>
        ) : (
          <table class="stack" id="tokens">
            <thead>
              <tr>
                <th>Name</th>
                <th>May</th>
                <th>Starts with</th>
                <th>Made</th>
                <th>Last used</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {data.tokens.map((tk) => (
                <tr id={`token-${tk.id}`}>
                  <td data-label="Name">{esc(tk.name)}</td>
                  <td data-label="May">{tk.scope === "write" ? "read and write" : "read"}</td>
                  <td data-label="Starts with">
                    <code>{esc(tk.prefix)}…</code>
                  </td>
                  <td data-label="Made">{at(tk.created_at)}</td>
                  <td data-label="Last used">{at(tk.last_used_at)}</td>
                  <td>
                    {tk.revoked_at !== null ? (
                      <span class="status offline">revoked {at(tk.revoked_at)}</span>
                    ) : (
                      <form {...formAttrs(`/tokens/${tk.id}/revoke`)} class="inline">
                        <Csrf shell={shell} />
                        <button type="submit" class="danger">
                          Revoke
                        </button>
                      </form>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </main>
    </Layout>
  );
}

/** An enrollment token as listed. */
export interface EnrollmentItem {
  id: number;
  created_at: number;
  expires_at: number;
  uses: number;
  max_uses: number;
}

/** What the security page shows. */
export interface SecurityPageData {
  shell: Shell;
  switches: { public_read: boolean; accept_anonymous_sensors: boolean };
  /** Devices without an MQTT password. */
  anonymousDevices: number;
  enrollments: EnrollmentItem[];
  enrollForm: FormState;
  /** The enrollment token just made, with the command that uses it. */
  enrolled?: { token: string; command: string };
  kioskActive: boolean;
  /** The kiosk link just made: shown this once. */
  kioskLink?: string;
  notice?: string;
}

function Switch(props: { shell: Shell; name: string; on: boolean; title: string; children: JSX.Element }): JSX.Element {
  return (
    <form {...formAttrs("/security/switch")} class="panel" id={props.name}>
      <Csrf shell={props.shell} />
      <input type="hidden" name="switch" value={props.name} />
      <input type="hidden" name="value" value={props.on ? "off" : "on"} />
      <h2>
        {props.title}: <span class={props.on ? "status late" : "status online"}>{props.on ? "on" : "off"}</span>
      </h2>
      {props.children}
      <button type="submit" class={props.on ? "" : "danger"}>
        {props.on ? "Turn off" : "Turn on"}
      </button>
    </form>
  );
}

/** The owner's security page. */
export function SecurityPage(data: SecurityPageData): JSX.Element {
  const { shell, enrollForm: form } = data;
  return (
    <Layout shell={shell} title="Security" section="account">
      <main id="content">
        <h1>Security</h1>
        <Notice text={data.notice} />
        <Switch shell={shell} name="public_read" on={data.switches.public_read} title="Read without signing in">
          <p class="muted">
            On, anyone on the network reads every page and the API. An upgrade from a version without accounts keeps it on so that
            dashboards and scripts keep working; give them an <a href="/tokens">API token</a> and turn it off.
          </p>
        </Switch>
        <Switch
          shell={shell}
          name="accept_anonymous_sensors"
          on={data.switches.accept_anonymous_sensors}
          title="Sensors without a password"
        >
          <p class="muted" id="anonymous">
            On, a sensor without MQTT credentials may still publish readings (and nothing else).{" "}
            {data.anonymousDevices === 1 ? "1 device has" : `${data.anonymousDevices} devices have`} no password yet. Give an
            earlier sensor one with the "New MQTT password" button of its device page, then put the two lines in its device.conf.
          </p>
        </Switch>

        <section class="panel" id="enrollment">
          <h2>Enroll a sensor</h2>
          {data.enrolled ? (
            <ShownOnce id="new-enrollment" value={data.enrolled.token}>
              <>
                <p>On the new sensor Pi, run:</p>
                <pre id="enroll-command">{esc(data.enrolled.command)}</pre>
                <p>The enrollment token:</p>
              </>
            </ShownOnce>
          ) : (
            ""
          )}
          <form {...formAttrs("/security/enrollment")}>
            <Csrf shell={shell} />
            <div class="row">
              <Field label="Valid for (minutes)" id="ttl_minutes" error={form.errors.ttl_minutes} hint="1 to 10080 (a week)">
                <Input form={form} name="ttl_minutes" type="number" step="1" />
              </Field>
              <Field label="Sensors it may enroll" id="max_uses" error={form.errors.max_uses} hint="1 to 1000">
                <Input form={form} name="max_uses" type="number" step="1" />
              </Field>
            </div>
            <button type="submit">Make an enrollment token</button>
          </form>
          {data.enrollments.length === 0 ? (
            ""
          ) : (
            <table class="stack" id="enrollments">
              <thead>
                <tr>
                  <th>Made</th>
                  <th>Expires</th>
                  <th>Used</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {data.enrollments.map((e) => (
                  <tr id={`enrollment-${e.id}`}>
                    <td data-label="Made">{fmtTime(e.created_at, shell.now, shell.timeZone)}</td>
                    <td data-label="Expires">{fmtTime(e.expires_at, shell.now, shell.timeZone)}</td>
                    <td data-label="Used">
                      {e.uses} of {e.max_uses}
                    </td>
                    <td>
                      <form {...formAttrs(`/security/enrollment/${e.id}/revoke`)} class="inline">
                        <Csrf shell={shell} />
                        <button type="submit" class="danger">
                          Revoke
                        </button>
                      </form>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>

        <section class="panel" id="kiosk">
          <h2>Kiosk link</h2>
          <p class="muted">
            A link for a wall tablet: it shows the dashboard, live, without signing in, and nothing else.{" "}
            {data.kioskActive ? "A link exists." : "There is no link."}
          </p>
          {data.kioskLink ? (
            <ShownOnce id="kiosk-link" value={data.kioskLink}>
              <p>Open this on the tablet:</p>
            </ShownOnce>
          ) : (
            ""
          )}
          <form {...formAttrs("/security/kiosk")} class="inline">
            <Csrf shell={shell} />
            <button type="submit">{data.kioskActive ? "Make a new link (the old one stops)" : "Make a link"}</button>
          </form>{" "}
          {data.kioskActive ? (
            <form {...formAttrs("/security/kiosk/revoke")} class="inline">
              <Csrf shell={shell} />
              <button type="submit" class="danger">
                Revoke
              </button>
            </form>
          ) : (
            ""
          )}
        </section>
      </main>
    </Layout>
  );
}
