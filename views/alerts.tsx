/** @jsxImportSource @kitajs/html */
// Alerts on the pages: the banner of incidents not resolved (the dashboard,
// pushed live as its own SSE fragment `alerts`), the mark on a room's card,
// and the alerts page: incidents to acknowledge, and their history with
// start, worst value and end.

import type { IncidentRow } from "../lib/server/store/store.ts";
import { formAttrs } from "./devices.tsx";
import { Layout } from "./layout.tsx";
import { Csrf, esc, fmtTime, type Shell } from "./parts.tsx";

/** How many incidents the dashboard's banner names; the rest are counted. */
const BANNER_MAX = 5;

/** The severity as a small badge. */
export function Severity({ severity }: { severity: string }): JSX.Element {
  return <span class={`sev sev-${esc(severity)}`}>{esc(severity)}</span>;
}

/** Where an incident is: its room's name, else its device's. */
const placeOf = (i: IncidentRow) => i.room_name ?? i.device_name;

/** The unit of an incident's values. */
const unitOf = (i: IncidentRow) =>
  i.kind === "stale" ? " s" : i.kind === "failures" || i.kind === "stuck" ? "" : i.metric === "humidity" ? " %" : " °C";

/**
 * The banner of incidents not resolved: the dashboard's SSE fragment
 * `alerts`. Empty when all is well.
 */
export function AlertBanner({ alerts, shell }: { alerts: IncidentRow[]; shell: Pick<Shell, "now" | "timeZone"> }): JSX.Element {
  if (alerts.length === 0) return "";
  const open = alerts.filter((i) => i.state === "open").length;
  const worst = alerts.some((i) => i.severity === "critical")
    ? "critical"
    : alerts.some((i) => i.severity === "warning")
      ? "warning"
      : "info";
  return (
    <div class={`banner alert-banner alert-${worst}`} role="alert" id="alert-banner">
      <strong>
        {alerts.length === 1 ? "1 alert" : `${alerts.length} alerts`}
        {open < alerts.length ? ` (${alerts.length - open} acknowledged)` : ""}
      </strong>{" "}
      <a href="/alerts">See alerts</a>
      <ul>
        {alerts.slice(0, BANNER_MAX).map((i) => (
          <li>
            <Severity severity={i.severity} /> {esc(i.rule_name)} · {esc(placeOf(i))}{" "}
            <small>
              since {fmtTime(i.started_at, shell.now, shell.timeZone)}
              {i.state === "acknowledged" ? ", acknowledged" : ""}
            </small>
          </li>
        ))}
        {alerts.length > BANNER_MAX ? <li>and {alerts.length - BANNER_MAX} more</li> : ""}
      </ul>
    </div>
  );
}

/** Where the dashboard shows the banner: the element the event stream swaps `alerts` into (nothing without the alerts module). */
export function AlertsSlot({ alerts, shell }: { alerts?: IncidentRow[]; shell: Pick<Shell, "now" | "timeZone"> }): JSX.Element {
  if (alerts === undefined) return "";
  return (
    <div id="alerts" sse-swap="alerts">
      <AlertBanner alerts={alerts} shell={shell} />
    </div>
  );
}

/** The mark on a room's card when the room has incidents not resolved. */
export function AlertMark({ alerts }: { alerts?: IncidentRow[] }): JSX.Element {
  if (!alerts || alerts.length === 0) return "";
  const critical = alerts.some((i) => i.severity === "critical");
  const text = alerts.length === 1 ? alerts[0]!.rule_name : `${alerts.length} alerts`;
  return (
    <a
      href="/alerts"
      class={`alert-mark ${critical ? "sev-critical" : "sev-warning"}`}
      title={alerts.map((i) => i.message).join("\n")}
    >
      ⚠ {esc(text)}
    </a>
  );
}

/** What the alerts page shows. */
export interface AlertsPageData {
  shell: Shell;
  /** Open and acknowledged incidents, oldest first. */
  active: IncidentRow[];
  /** Incidents newest first (a page of the history). */
  history: IncidentRow[];
  /** The `before` of the next page of history, or null. */
  nextBefore: number | null;
  /** Notifications given up in the last week (shown as a warning with a link to the channels). */
  failed: number;
  notice?: string;
}

/** The value of an incident with its unit ("27.1 °C"), or "—". */
const valueText = (i: IncidentRow, v: number | null) => (v === null ? "—" : `${Number(v.toFixed(2))}${unitOf(i)}`);

function ActiveItem({ i, shell }: { i: IncidentRow; shell: Shell }): JSX.Element {
  return (
    <section class={`panel incident sev-line-${esc(i.severity)}`} id={`incident-${i.id}`}>
      <h2>
        <Severity severity={i.severity} /> {esc(i.rule_name)} · {esc(placeOf(i))}
      </h2>
      <p>{esc(i.message)}</p>
      <p class="muted">
        Since {fmtTime(i.started_at, shell.now, shell.timeZone)}; worst {valueText(i, i.peak)}, last {valueText(i, i.last_value)}.
        {i.state === "acknowledged"
          ? ` Acknowledged${i.acknowledged_by ? ` by ${esc(i.acknowledged_by)}` : ""} at ${fmtTime(i.acknowledged_at!, shell.now, shell.timeZone)}: no more repeats.`
          : ""}
      </p>
      {shell.canWrite && i.state === "open" ? (
        <form {...formAttrs(`/alerts/incidents/${i.id}/ack`)} class="inline">
          <Csrf shell={shell} />
          <button type="submit">Acknowledge</button>
        </form>
      ) : (
        ""
      )}
    </section>
  );
}

/** The alerts page. */
export function AlertsPage(data: AlertsPageData): JSX.Element {
  const { shell } = data;
  return (
    <Layout shell={shell} title="Alerts" section="alerts">
      <main id="content">
        <h1>Alerts</h1>
        <p class="subnav">
          <a href="/alerts/rules">Rules</a> · <a href="/alerts/channels">Channels and settings</a>
        </p>
        {data.notice ? (
          <p class="notice" role="status">
            {esc(data.notice)}
          </p>
        ) : (
          ""
        )}
        {data.failed > 0 ? (
          <p class="banner" role="status" id="failed-notifications">
            {data.failed === 1 ? "1 notification" : `${data.failed} notifications`} could not be delivered this week.{" "}
            <a href="/alerts/channels">Check the channels</a>
          </p>
        ) : (
          ""
        )}
        {data.active.length === 0 ? (
          <p class="panel" id="all-clear">
            No alert now.
          </p>
        ) : (
          data.active.map((i) => <ActiveItem i={i} shell={shell} />)
        )}
        <h2>History</h2>
        {data.history.length === 0 ? (
          <p class="muted">No incident yet.</p>
        ) : (
          <table class="stack" id="history">
            <thead>
              <tr>
                <th>Alert</th>
                <th>Where</th>
                <th>Began</th>
                <th>Worst</th>
                <th>Ended</th>
              </tr>
            </thead>
            <tbody>
              {data.history.map((i) => (
                <tr id={`history-${i.id}`}>
                  <td data-label="Alert">
                    <Severity severity={i.severity} /> {esc(i.rule_name)}
                  </td>
                  <td data-label="Where">{esc(placeOf(i))}</td>
                  <td data-label="Began">{fmtTime(i.started_at, shell.now, shell.timeZone)}</td>
                  <td data-label="Worst">{valueText(i, i.peak)}</td>
                  <td data-label="Ended">
                    {i.ended_at === null
                      ? i.state === "acknowledged"
                        ? "acknowledged"
                        : "open"
                      : fmtTime(i.ended_at, shell.now, shell.timeZone)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {data.nextBefore !== null ? (
          <p>
            <a href={`/alerts?before=${data.nextBefore}`}>Older</a>
          </p>
        ) : (
          ""
        )}
      </main>
    </Layout>
  );
}
