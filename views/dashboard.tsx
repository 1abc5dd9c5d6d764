/** @jsxImportSource @kitajs/html */
// The dashboard: a card per room with its sensors' current values, trend
// arrows and the time of the last reading, the outdoor weather, and a banner
// for devices that are in no room yet. A card's body is also the fragment
// pushed by Server-Sent Events when a reading is stored; the cards section as
// a whole is pushed when rooms are created, renamed or deleted.

import type { DeviceLive } from "../lib/server/live/live.ts";
import type { IncidentRow } from "../lib/server/store/store.ts";
import { AlertMark, AlertsSlot } from "./alerts.tsx";
import type { OutdoorNow } from "../lib/server/weather/weather.ts";
import { Layout } from "./layout.tsx";
import { Ago, esc, fmtHum, Sparkline, StatusBadge, Temp, Time, type Shell } from "./parts.tsx";

/** One sensor on a card. */
export interface SensorCard {
  uid: string;
  /** Its label, else its uid. */
  name: string;
  live: DeviceLive;
}

/** A room's card. */
export interface RoomCard {
  uid: string;
  name: string;
  floor: string | null;
  side: string | null;
  sensors: SensorCard[];
  /** Its incidents not resolved (views/alerts.tsx marks the card). */
  alerts?: IncidentRow[];
}

/** A device in no room. */
export interface UnplacedDevice {
  uid: string;
  name: string;
  lastSeenAt: number | null;
}

/** Everything the dashboard shows. */
export interface DashboardData {
  shell: Shell;
  rooms: RoomCard[];
  unplaced: UnplacedDevice[];
  /** The outdoor weather, null when it is off. */
  outdoor: OutdoorNow | null;
  /** The live version the page was rendered at (the stream sends what came after). */
  version: number;
  /** Incidents not resolved (the alerts banner, views/alerts.tsx); undefined without the alerts module. */
  alerts?: IncidentRow[];
}

/** "Ground floor · south" */
export const whereText = (room: { floor: string | null; side: string | null }): string =>
  [room.floor, room.side].filter((v) => v !== null && v !== "").join(" · ");

/** A change over the last hour smaller than this is steady (°C, then %). */
const STEADY = { temperature: 0.3, humidity: 2 } as const;

/** ↑ or ↓ beside a value that rose or fell over the last hour, with by how much on hover. */
function Trend({ delta, quantity }: { delta: number | null; quantity: "temperature" | "humidity" }): JSX.Element {
  if (delta === null || Math.abs(delta) < STEADY[quantity]) return "";
  const rising = delta > 0;
  const amount = quantity === "temperature" ? `${Math.abs(delta).toFixed(1)} °C` : `${Math.round(Math.abs(delta))} %`;
  const words = `${rising ? "rising" : "falling"}: ${rising ? "+" : "−"}${amount} in the last hour`;
  return (
    <span class={`trend ${rising ? "rising" : "falling"}`} title={words} aria-label={words} role="img">
      {rising ? "↑" : "↓"}
    </span>
  );
}

function Sensor({ sensor, showName, shell }: { sensor: SensorCard; showName: boolean; shell: Shell }): JSX.Element {
  const { live } = sensor;
  const { now, timeZone: tz } = shell;
  const last = live.last;
  return (
    <div class="sensor" data-device={sensor.uid}>
      {showName ? (
        <div class="sensor-name" title={sensor.name}>
          {esc(sensor.name)}
        </div>
      ) : (
        ""
      )}
      {last ? (
        <div class="now">
          <span class="temp">
            <Temp c={last.temperature} unit={false} />
            <small class="tu">°C</small>
            <Trend delta={live.trend?.temperature ?? null} quantity="temperature" />
          </span>
          <span class="hum">
            {fmtHum(last.humidity)}
            <small>%</small>
            <Trend delta={live.trend?.humidity ?? null} quantity="humidity" />
          </span>
        </div>
      ) : (
        <p class="empty">{live.freshness.status === "offline" ? "Offline before its first reading." : "No reading yet."}</p>
      )}
      <div class="meta">
        <StatusBadge f={live.freshness} />
        {last ? (
          <>
            {" · "}
            <span class="updated">
              updated <Time ts={last.ts} now={now} tz={tz} style="t" />
            </span>
            {" · "}
            <Ago ts={last.ts} now={now} tz={tz} />
          </>
        ) : (
          ""
        )}
      </div>
      {last ? (
        <dl class="facts">
          <div>
            <dt>Today</dt>
            <dd>
              {live.today ? (
                <>
                  <Temp c={live.today.tMin} unit={false} />–<Temp c={live.today.tMax} />
                </>
              ) : (
                "—"
              )}
            </dd>
            <dd>{live.today ? `${fmtHum(live.today.hMin)}–${fmtHum(live.today.hMax)} %` : ""}</dd>
          </div>
          <div>
            <dt>Dew point</dt>
            <dd>{live.comfort?.dewPoint != null ? <Temp c={live.comfort.dewPoint} /> : "—"}</dd>
          </div>
          <div>
            <dt>Humidex</dt>
            <dd>
              {live.comfort ? Math.round(live.comfort.humidex) : "—"}{" "}
              {live.comfort ? <span class={`comfort ${live.comfort.word}`}>{live.comfort.word}</span> : ""}
            </dd>
          </div>
        </dl>
      ) : (
        ""
      )}
      <Sparkline values={live.spark} label={`${sensor.name}: temperature over the last 24 hours`} />
    </div>
  );
}

/** The inside of a room's card: the SSE fragment for `room-<uid>`. */
export function RoomCardBody({ room, shell }: { room: RoomCard; shell: Shell }): JSX.Element {
  const where = whereText(room);
  return (
    <>
      <header class="card-head">
        <h2>
          <a href={`/rooms/${encodeURIComponent(room.uid)}`} title={room.name}>
            {esc(room.name)}
          </a>
        </h2>
        {where ? <span class="where">{esc(where)}</span> : ""}
        <AlertMark alerts={room.alerts} />
      </header>
      {room.sensors.length === 0 ? (
        <p class="empty">
          No sensor in this room. <a href="/devices">Place one</a>.
        </p>
      ) : (
        room.sensors.map((sensor) => <Sensor sensor={sensor} showName={room.sensors.length > 1} shell={shell} />)
      )}
    </>
  );
}

/** Every room's card: the SSE fragment for `cards`, pushed when rooms come and go. */
export function RoomCards({ rooms, shell }: { rooms: RoomCard[]; shell: Shell }): JSX.Element {
  if (rooms.length === 0) {
    return (
      <p class="panel">
        No rooms yet. <a href="/rooms">Create a room</a>, or start a sensor: it shows up here to be placed.
      </p>
    );
  }
  return (
    <>
      {rooms.map((room) => (
        <article class="card" id={`room-${room.uid}`} sse-swap={`room-${room.uid}`}>
          <RoomCardBody room={room} shell={shell} />
        </article>
      ))}
    </>
  );
}

/** The outdoor weather line: the SSE fragment for `outdoor`. */
export function Outdoor({ outdoor, shell }: { outdoor: OutdoorNow | null; shell: Shell }): JSX.Element {
  if (outdoor === null) return "";
  const { current, problem } = outdoor;
  return (
    <p class="outdoor">
      {current ? (
        <>
          Outside{" "}
          <strong>
            {current.temperature === null ? "—" : <Temp c={current.temperature} />}
            {current.humidity === null ? "" : ` · ${fmtHum(current.humidity)} %`}
          </strong>{" "}
          <small>
            (<Time ts={current.ts} now={shell.now} tz={shell.timeZone} style="t" />, Open-Meteo)
          </small>
        </>
      ) : (
        ""
      )}
      {problem ? (
        <span class="muted" role="status">
          {current ? " · " : ""}Outdoor weather unavailable since <Time ts={problem.since} now={shell.now} tz={shell.timeZone} />:{" "}
          {esc(problem.message)}
        </span>
      ) : current ? (
        ""
      ) : (
        <span class="muted">Outdoor weather: waiting for the first answer.</span>
      )}
    </p>
  );
}

/** The banner listing devices in no room: the SSE fragment for `unplaced`. */
export function UnplacedBanner({ devices, shell }: { devices: UnplacedDevice[]; shell: Shell }): JSX.Element {
  if (devices.length === 0) return "";
  return (
    <div class="banner" role="status">
      <strong>{devices.length === 1 ? "1 device is" : `${devices.length} devices are`} not in a room yet.</strong> Place{" "}
      {devices.length === 1 ? "it" : "them"} to see {devices.length === 1 ? "its" : "their"} readings here:
      <ul>
        {devices.map((d) => (
          <li>
            <a href={`/devices/${encodeURIComponent(d.uid)}#place`}>{esc(d.name)}</a>
            {d.lastSeenAt !== null ? (
              <>
                {" "}
                <small>
                  (seen <Ago ts={d.lastSeenAt} now={shell.now} tz={shell.timeZone} />)
                </small>
              </>
            ) : (
              ""
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The dashboard page. */
export function DashboardPage(data: DashboardData): JSX.Element {
  const { shell } = data;
  return (
    <Layout shell={shell} title="Rooms" section="dashboard" live>
      <main id="content" hx-ext="sse" sse-connect={`/events?since=${data.version}&view=dashboard`}>
        <AlertsSlot alerts={data.alerts} shell={shell} />
        <div id="outdoor" sse-swap="outdoor">
          <Outdoor outdoor={data.outdoor} shell={shell} />
        </div>
        <div id="unplaced" sse-swap="unplaced">
          <UnplacedBanner devices={data.unplaced} shell={shell} />
        </div>
        <section class="cards" id="cards" sse-swap="cards">
          <RoomCards rooms={data.rooms} shell={shell} />
        </section>
      </main>
    </Layout>
  );
}
