/** @jsxImportSource @kitajs/html */
// The room page (history charts of one room) and the comparison page
// (several rooms overlaid). The charts are drawn in the browser by
// static/chart.js from GET /api/v1/rooms/:uid/history; the window links and
// the custom range form are plain links and a GET form, so they work without
// JavaScript.

import type { Period, PeriodStats, ValueStats } from "../lib/server/history/stats.ts";
import type { Placement } from "../lib/server/store/store.ts";
import { RoomCardBody, whereText, type RoomCard } from "./dashboard.tsx";
import { Layout } from "./layout.tsx";
import { esc, Field, fmtTime, Input, PlacementTable, type FormState, type Shell } from "./parts.tsx";

/** The time window of a chart and the links around it. */
export interface ChartWindow {
  from: number;
  to: number;
  /** The preset windows (24 h … 1 y) as links; `current` marks the one shown. */
  presets: { label: string; href: string; current: boolean }[];
  /** One window earlier / later (null when the window already ends now). */
  back: string;
  forward: string | null;
  /** The custom range form: `from` and `to` as typed, with messages. */
  custom: FormState;
  /** Points the chart asks the API for. */
  points: number;
}

/** What the room page shows. */
export interface RoomPageData {
  shell: Shell;
  room: RoomCard;
  version: number;
  window: ChartWindow;
  placements: Placement[];
  /** Device uid → name, for the chart's legend. */
  labels: Record<string, string>;
  /** Statistics of the window, newest period first, and the period they are per. */
  stats: { period: Period; periods: PeriodStats[] };
}

/** What the comparison page shows. */
export interface ComparePageData {
  shell: Shell;
  rooms: { uid: string; name: string }[];
  selected: { uid: string; name: string }[];
  window: ChartWindow;
  labels: Record<string, string>;
  /** A message about the room choice (unknown room, none chosen). */
  roomsError?: string;
}

function WindowNav({
  window: w,
  now,
  hidden,
}: {
  window: ChartWindow;
  now: number;
  hidden: Record<string, string>;
}): JSX.Element {
  return (
    <>
      <nav class="ranges" aria-label="Time window">
        {w.presets.map((p) => (
          <a href={p.href} aria-current={p.current ? "true" : undefined}>
            {esc(p.label)}
          </a>
        ))}
        <span class="step">
          <a href={w.back} rel="prev" aria-label="One window earlier">
            ← earlier
          </a>{" "}
          {w.forward ? (
            <a href={w.forward} rel="next" aria-label="One window later">
              later →
            </a>
          ) : (
            ""
          )}
        </span>
      </nav>
      <p class="window">
        {fmtTime(w.from, now)} – {fmtTime(w.to, now)}
      </p>
      <details open={Object.keys(w.custom.errors).length > 0 ? true : undefined}>
        <summary>Choose a range</summary>
        <form method="get" class="panel">
          {Object.entries(hidden).map(([name, value]) => (
            <input type="hidden" name={name} value={value} />
          ))}
          <div class="row">
            <Field label="From" id="from" error={w.custom.errors.from}>
              <Input form={w.custom} name="from" type="datetime-local" />
            </Field>
            <Field label="To" id="to" error={w.custom.errors.to}>
              <Input form={w.custom} name="to" type="datetime-local" />
            </Field>
          </div>
          <button type="submit">Show</button>
        </form>
      </details>
    </>
  );
}

function Chart(props: {
  rooms: { uid: string; name: string }[];
  window: ChartWindow;
  labels: Record<string, string>;
}): JSX.Element {
  return (
    <div
      class="chart"
      id="chart"
      data-chart="history"
      data-rooms={JSON.stringify(props.rooms)}
      data-labels={JSON.stringify(props.labels)}
      data-from={String(props.window.from)}
      data-to={String(props.window.to)}
      data-points={String(props.window.points)}
    >
      <noscript>The charts need JavaScript. The data is also at /api/v1/rooms/…/history.</noscript>
    </div>
  );
}

/** The room page: its live card, the history charts and its placements. */
export function RoomPage(data: RoomPageData): JSX.Element {
  const { room, shell } = data;
  const where = whereText(room);
  return (
    <Layout shell={shell} title={room.name} section="dashboard" live charts>
      <main id="content">
        <h1>
          {esc(room.name)} {where ? <small>{esc(where)}</small> : ""}
        </h1>
        <div hx-ext="sse" sse-connect={`/events?since=${data.version}`}>
          <article class="card solo" id={`room-${room.uid}`} sse-swap={`room-${room.uid}`}>
            <RoomCardBody room={room} now={shell.now} />
          </article>
        </div>
        <WindowNav window={data.window} now={shell.now} hidden={{}} />
        <Chart rooms={[{ uid: room.uid, name: room.name }]} window={data.window} labels={data.labels} />
        <StatsTable stats={data.stats} now={shell.now} />
        <p class="exports">
          Download this window:{" "}
          <a href={exportHref(room.uid, data.window, "raw", "csv")} download="">
            readings (CSV)
          </a>
          ,{" "}
          <a href={exportHref(room.uid, data.window, "hour", "csv")} download="">
            hourly (CSV)
          </a>
          ,{" "}
          <a href={exportHref(room.uid, data.window, "raw", "json")} download="">
            readings (JSON)
          </a>
        </p>
        <h3>Devices in this room over time</h3>
        {data.placements.length === 0 ? (
          <p class="muted">No device has been placed here.</p>
        ) : (
          <PlacementTable placements={data.placements} of="room" labels={data.labels} now={shell.now} />
        )}
        <p>
          <a href={`/compare?rooms=${encodeURIComponent(room.uid)}`}>Compare with other rooms</a>
        </p>
      </main>
    </Layout>
  );
}

const exportHref = (room: string, w: ChartWindow, bucket: string, format: string) =>
  `/api/v1/rooms/${encodeURIComponent(room)}/export?format=${format}&bucket=${bucket}&from=${w.from}&to=${w.to}`;

const PERIOD_TITLE: Record<Period, string> = { day: "Day", week: "Week of", month: "Month" };
const dayLabel = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
const monthLabel = new Intl.DateTimeFormat("en-GB", { month: "long", year: "numeric", timeZone: "UTC" });

function Extreme({ v, unit, now }: { v: ValueStats; unit: string; now: number }): JSX.Element {
  return (
    <>
      {esc(v.min.toFixed(1))}–{esc(v.max.toFixed(1))} {unit}
      <small>
        {" "}
        (min {fmtTime(v.min_at, now)}, max {fmtTime(v.max_at, now)})
      </small>
    </>
  );
}

/** Min (when), max (when), mean and coverage per day, week or month of the window (UTC periods, like the rollups). */
function StatsTable({ stats, now }: { stats: { period: Period; periods: PeriodStats[] }; now: number }): JSX.Element {
  const rows = stats.periods.filter((p) => p.count > 0 || (p.expected ?? 0) > 0);
  if (rows.length === 0) return <></>;
  return (
    <>
      <h3>Statistics per {stats.period}</h3>
      <table class="stats">
        <thead>
          <tr>
            <th>{PERIOD_TITLE[stats.period]}</th>
            <th>Temperature</th>
            <th>Mean</th>
            <th>Humidity</th>
            <th>Mean</th>
            <th title="Readings received ÷ readings expected from each sensor's interval">Coverage</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((p) => (
            <tr>
              <td>{esc((stats.period === "month" ? monthLabel : dayLabel).format(p.period_start))}</td>
              <td>{p.temperature ? <Extreme v={p.temperature} unit="°C" now={now} /> : "–"}</td>
              <td>{p.temperature ? esc(`${p.temperature.mean.toFixed(1)} °C`) : "–"}</td>
              <td>{p.humidity ? <Extreme v={p.humidity} unit="%" now={now} /> : "–"}</td>
              <td>{p.humidity ? esc(`${p.humidity.mean.toFixed(0)} %`) : "–"}</td>
              <td>{p.coverage_pct === null ? "–" : esc(`${p.coverage_pct.toFixed(0)} %`)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** The comparison page: pick rooms, see them overlaid. */
export function ComparePage(data: ComparePageData): JSX.Element {
  const selected = new Set(data.selected.map((r) => r.uid));
  return (
    <Layout shell={data.shell} title="Compare rooms" section="compare" charts>
      <main id="content">
        <h1>Compare rooms</h1>
        <form method="get" class="panel">
          <div class="field">
            <span>
              <strong>Rooms</strong>
            </span>
            <div class="checks">
              {data.rooms.map((r) => (
                <label>
                  <input type="checkbox" name="rooms" value={r.uid} checked={selected.has(r.uid)} /> {esc(r.name)}
                </label>
              ))}
            </div>
            {data.roomsError ? (
              <span class="error" role="alert">
                {esc(data.roomsError)}
              </span>
            ) : (
              ""
            )}
          </div>
          <button type="submit">Compare</button>
        </form>
        {data.selected.length > 0 ? (
          <>
            <WindowNav window={data.window} now={data.shell.now} hidden={{ rooms: data.selected.map((r) => r.uid).join(",") }} />
            <Chart rooms={data.selected} window={data.window} labels={data.labels} />
          </>
        ) : (
          ""
        )}
      </main>
    </Layout>
  );
}
