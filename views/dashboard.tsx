/** @jsxImportSource @kitajs/html */
// The dashboard: a card per room with its sensors' current values, and a
// banner for devices that are in no room yet. A card's body is also the
// fragment pushed by Server-Sent Events when a reading is stored.

import type { DeviceLive } from "../lib/server/live/live.ts";
import type { IncidentRow } from "../lib/server/store/store.ts";
import { AlertMark, AlertsSlot } from "./alerts.tsx";
import { Layout } from "./layout.tsx";
import { Ago, esc, fmtHum, fmtTemp, Sparkline, StatusBadge, type Shell } from "./parts.tsx";

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
  /** The live version the page was rendered at (the stream sends what came after). */
  version: number;
  /** Incidents not resolved (the alerts banner, views/alerts.tsx); undefined without the alerts module. */
  alerts?: IncidentRow[];
}

/** "Ground floor · south" */
export const whereText = (room: { floor: string | null; side: string | null }): string =>
  [room.floor, room.side].filter((v) => v !== null && v !== "").join(" · ");

function Sensor({ sensor, showName, now }: { sensor: SensorCard; showName: boolean; now: number }): JSX.Element {
  const { live } = sensor;
  const last = live.last;
  return (
    <div class="sensor" data-device={sensor.uid}>
      {showName ? <div class="sensor-name">{esc(sensor.name)}</div> : ""}
      {last ? (
        <div class="now">
          <span class="temp">
            {fmtTemp(last.temperature)}
            <small>°C</small>
          </span>
          <span class="hum">
            {fmtHum(last.humidity)}
            <small>%</small>
          </span>
        </div>
      ) : (
        <p class="empty">No reading yet.</p>
      )}
      <div class="meta">
        <StatusBadge f={live.freshness} />
        {last ? (
          <>
            {" · "}
            <Ago ts={last.ts} now={now} />
          </>
        ) : (
          ""
        )}
      </div>
      {last ? (
        <dl class="facts">
          <div>
            <dt>Today</dt>
            <dd>{live.today ? `${fmtTemp(live.today.tMin)}–${fmtTemp(live.today.tMax)} °C` : "—"}</dd>
            <dd>{live.today ? `${fmtHum(live.today.hMin)}–${fmtHum(live.today.hMax)} %` : ""}</dd>
          </div>
          <div>
            <dt>Dew point</dt>
            <dd>{live.comfort?.dewPoint != null ? `${fmtTemp(live.comfort.dewPoint)} °C` : "—"}</dd>
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
export function RoomCardBody({ room, now }: { room: RoomCard; now: number }): JSX.Element {
  const where = whereText(room);
  return (
    <>
      <header class="card-head">
        <h2>
          <a href={`/rooms/${encodeURIComponent(room.uid)}`}>{esc(room.name)}</a>
        </h2>
        {where ? <span class="where">{esc(where)}</span> : ""}
        <AlertMark alerts={room.alerts} />
      </header>
      {room.sensors.length === 0 ? (
        <p class="empty">
          No sensor in this room. <a href="/devices">Place one</a>.
        </p>
      ) : (
        room.sensors.map((sensor) => <Sensor sensor={sensor} showName={room.sensors.length > 1} now={now} />)
      )}
    </>
  );
}

/** The banner listing devices in no room: the SSE fragment for `unplaced`. */
export function UnplacedBanner({ devices, now }: { devices: UnplacedDevice[]; now: number }): JSX.Element {
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
                  (seen <Ago ts={d.lastSeenAt} now={now} />)
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
  const now = data.shell.now;
  return (
    <Layout shell={data.shell} title="Rooms" section="dashboard" live>
      <main id="content" hx-ext="sse" sse-connect={`/events?since=${data.version}`}>
        <AlertsSlot alerts={data.alerts} now={now} />
        <div id="unplaced" sse-swap="unplaced">
          <UnplacedBanner devices={data.unplaced} now={now} />
        </div>
        {data.rooms.length === 0 ? (
          <p class="panel">
            No rooms yet. <a href="/rooms">Create a room</a>, or start a sensor: it shows up here to be placed.
          </p>
        ) : (
          ""
        )}
        <section class="cards">
          {data.rooms.map((room) => (
            <article class="card" id={`room-${room.uid}`} sse-swap={`room-${room.uid}`}>
              <RoomCardBody room={room} now={now} />
            </article>
          ))}
        </section>
      </main>
    </Layout>
  );
}
