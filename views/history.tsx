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
import { esc, Field, Input, PlacementTable, Temp, Time, type FormState, type Shell } from "./parts.tsx";

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
  /** Whether the outdoor weather is drawn beside the room. */
  weather: boolean;
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
  version: number;
  weather: boolean;
}

function WindowNav({
  window: w,
  shell,
  hidden,
}: {
  window: ChartWindow;
  shell: Shell;
  hidden: Record<string, string>;
}): JSX.Element {
  const { now, timeZone: tz } = shell;
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
        <Time ts={w.from} now={now} tz={tz} /> – <Time ts={w.to} now={now} tz={tz} /> <small>({esc(tz)} time)</small>
      </p>
      <details open={Object.keys(w.custom.errors).length > 0 ? true : undefined}>
        <summary>Choose a range</summary>
        <form method="get" class="panel">
          {Object.entries(hidden).map(([name, value]) => (
            <input type="hidden" name={name} value={value} />
          ))}
          <div class="row">
            <Field label="From" id="from" error={w.custom.errors.from} hint={`${tz} time`}>
              <Input form={w.custom} name="from" type="datetime-local" />
            </Field>
            <Field label="To" id="to" error={w.custom.errors.to} hint={`${tz} time`}>
              <Input form={w.custom} name="to" type="datetime-local" />
            </Field>
          </div>
          <button type="submit">Show</button>
        </form>
      </details>
    </>
  );
}

/** What a chart draws: rooms (overlaid) or one device's own history. */
export type ChartSource = { kind: "room" | "device"; uid: string; name: string };

/**
 * A chart drawn by static/chart.js: temperature and humidity of `sources`
 * over the window, in the home's zone (data-tz), the outdoor weather beside
 * them when it is on, live (data-live: the window ends now) while the page is open.
 */
export function Chart(props: {
  sources: ChartSource[];
  window: ChartWindow;
  labels: Record<string, string>;
  shell: Shell;
  weather: boolean;
}): JSX.Element {
  const w = props.window;
  return (
    <div
      class="chart"
      id="chart"
      data-chart="history"
      data-sources={JSON.stringify(props.sources)}
      data-labels={JSON.stringify(props.labels)}
      data-from={String(w.from)}
      data-to={String(w.to)}
      data-points={String(w.points)}
      data-tz={props.shell.timeZone}
      data-live={w.forward === null ? "true" : undefined}
      data-weather={props.weather ? "true" : undefined}
    >
      <noscript>The charts need JavaScript. The data is also at /api/v1/rooms/…/history.</noscript>
    </div>
  );
}

/** The hidden receiver of the `changes` event: which rooms and devices have new readings (static/chart.js appends them). */
export const Changes = (): JSX.Element => <div id="changes" sse-swap="changes" hidden></div>;

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
        <div hx-ext="sse" sse-connect={`/events?since=${data.version}&view=${encodeURIComponent(`room:${room.uid}`)}`}>
          <article class="card solo" id={`room-${room.uid}`} sse-swap={`room-${room.uid}`}>
            <RoomCardBody room={room} shell={shell} />
          </article>
          <Changes />
        </div>
        <WindowNav window={data.window} shell={shell} hidden={{}} />
        <Chart
          sources={[{ kind: "room", uid: room.uid, name: room.name }]}
          window={data.window}
          labels={data.labels}
          shell={shell}
          weather={data.weather}
        />
        <StatsTable stats={data.stats} shell={shell} />
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
          <PlacementTable placements={data.placements} of="room" labels={data.labels} now={shell.now} tz={shell.timeZone} />
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

function Extreme({ v, unit, shell }: { v: ValueStats; unit: "°C" | "%"; shell: Shell }): JSX.Element {
  const { now, timeZone: tz } = shell;
  return (
    <>
      {unit === "°C" ? (
        <>
          <Temp c={v.min} unit={false} />–<Temp c={v.max} />
        </>
      ) : (
        `${v.min.toFixed(1)}–${v.max.toFixed(1)} %`
      )}
      <small>
        {" "}
        (min <Time ts={v.min_at} now={now} tz={tz} />, max <Time ts={v.max_at} now={now} tz={tz} />)
      </small>
    </>
  );
}

/** What the coverage figure means, on hover and focus. */
const coverageHelp = (p: PeriodStats): string =>
  p.expected === null
    ? "Unknown: a sensor has not announced how often it reports"
    : `${p.count} readings of ${p.expected} expected from each sensor's interval, counted from its first reading in this room (or its placement, whichever is later); never above 100 %`;

/**
 * Min (when), max (when), mean and coverage per day, week or month of the
 * window, in the home's zone. On a phone each row stacks like the devices list.
 */
function StatsTable({ stats, shell }: { stats: { period: Period; periods: PeriodStats[] }; shell: Shell }): JSX.Element {
  const rows = stats.periods.filter((p) => p.count > 0 || (p.expected ?? 0) > 0);
  if (rows.length === 0) return <></>;
  const title = PERIOD_TITLE[stats.period];
  return (
    <>
      <h3>Statistics per {stats.period}</h3>
      <table class="stats stack">
        <thead>
          <tr>
            <th>{title}</th>
            <th>Temperature</th>
            <th>Mean</th>
            <th>Humidity</th>
            <th>Mean</th>
            <th title="Readings received ÷ readings expected from each sensor's interval, from its first reading in the room; never above 100 %">
              Coverage
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((p) => (
            <tr>
              <td data-label={title}>
                <Time ts={p.period_start} now={shell.now} tz={shell.timeZone} style={stats.period === "month" ? "m" : "d"} />
              </td>
              <td data-label="Temperature">{p.temperature ? <Extreme v={p.temperature} unit="°C" shell={shell} /> : "–"}</td>
              <td data-label="Mean">{p.temperature ? <Temp c={p.temperature.mean} /> : "–"}</td>
              <td data-label="Humidity">{p.humidity ? <Extreme v={p.humidity} unit="%" shell={shell} /> : "–"}</td>
              <td data-label="Mean">{p.humidity ? esc(`${p.humidity.mean.toFixed(0)} %`) : "–"}</td>
              <td data-label="Coverage">
                <span class="coverage" title={coverageHelp(p)} tabindex="0">
                  {p.coverage_pct === null ? "–" : esc(`${p.coverage_pct.toFixed(0)} %`)}
                </span>
              </td>
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
    <Layout shell={data.shell} title="Compare rooms" section="compare" live={data.selected.length > 0} charts>
      <main
        id="content"
        hx-ext="sse"
        sse-connect={data.selected.length > 0 ? `/events?since=${data.version}&view=compare` : undefined}
      >
        {data.selected.length > 0 ? <Changes /> : ""}
        <h1>Compare rooms</h1>
        <form method="get" class="panel">
          <div class="field">
            <span>
              <strong>Rooms</strong>
            </span>
            <div class="checks">
              {data.rooms.map((r) => (
                <label class="check">
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
            <WindowNav window={data.window} shell={data.shell} hidden={{ rooms: data.selected.map((r) => r.uid).join(",") }} />
            <Chart
              sources={data.selected.map((r) => ({ kind: "room" as const, uid: r.uid, name: r.name }))}
              window={data.window}
              labels={data.labels}
              shell={data.shell}
              weather={data.weather}
            />
          </>
        ) : (
          ""
        )}
      </main>
    </Layout>
  );
}
