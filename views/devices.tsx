/** @jsxImportSource @kitajs/html */
// The devices list and a device's page: status, room, last seen, refused
// readings, and the forms to place/move it and to change its label, interval
// and calibration. Forms post to the server, which answers with this same
// page (htmx swaps #content; without JavaScript the browser shows it).

import type { DeviceLive } from "../lib/server/live/live.ts";
import type { Device, Placement, Room } from "../lib/server/store/store.ts";
import { Changes, Chart, type ChartWindow } from "./history.tsx";
import { Layout } from "./layout.tsx";
import { Ago, Csrf, esc, Field, fmtHum, Input, PlacementTable, StatusBadge, Temp, type FormState, type Shell } from "./parts.tsx";

/** A device with its live summary. */
export interface DeviceRow {
  device: Device;
  live: DeviceLive;
}

/** What the devices list shows. */
export interface DevicesPageData {
  shell: Shell;
  devices: DeviceRow[];
  /** The live version the page was rendered at. */
  version: number;
}

/** What a device's page shows. */
export interface DevicePageData {
  shell: Shell;
  row: DeviceRow;
  rooms: Room[];
  placements: Placement[];
  place: FormState;
  settings: FormState;
  /** Which form was just saved, to say so. */
  saved?: "place" | "settings";
  /** A new MQTT password, just made: shown this once. */
  newSecret?: { username: string; password: string };
  /** The device's history chart: the last 24 h. */
  window: ChartWindow;
  labels: Record<string, string>;
  weather: boolean;
  version: number;
  /**
   * After a change saved through htmx: the parts the change touched (the
   * summary, the placement history) are marked to be swapped out of band, so
   * the page swaps them and the form that was sent, and nothing else (what was
   * typed in the other form stays).
   */
  oob?: boolean;
}

/** Its label, else its uid. */
export const deviceName = (d: { uid: string; label: string | null }): string => d.label || d.uid;

/** How a form whose answer is a whole page posts (account and security pages): htmx swaps #content, or a plain post. */
export function formAttrs(action: string) {
  return {
    method: "post",
    action,
    "hx-post": action,
    "hx-target": "#content",
    "hx-select": "#content",
    "hx-swap": "outerHTML",
  } as const;
}

/**
 * How a form of the devices and rooms pages posts: to `action`. With htmx the answer replaces this form only
 * (hx-select of its own id: an error in one form never wipes what was typed
 * in another); the parts a saved change touches come out of band. Without
 * JavaScript it is a plain form post.
 */
export function ownFormAttrs(action: string, id: string, target = `#${id}`) {
  return {
    method: "post",
    action,
    id,
    "hx-post": action,
    "hx-target": target,
    "hx-select": target,
    "hx-swap": "outerHTML",
  } as const;
}

function RoomLink({ d }: { d: Device }): JSX.Element {
  if (d.room_uid === null) {
    return (
      <a href={`/devices/${encodeURIComponent(d.uid)}#place`} class="status late">
        not in a room: place it
      </a>
    );
  }
  return <a href={`/rooms/${encodeURIComponent(d.room_uid)}`}>{esc(d.room_name)}</a>;
}

function Refusals({ d, now, tz }: { d: Device; now: number; tz: string }): JSX.Element {
  if (d.refused_count === 0) return "0";
  return (
    <>
      {d.refused_count}
      {d.last_refusal ? (
        <div class="refusal">
          last: {esc(d.last_refusal)}
          {d.last_refusal_at !== null ? (
            <>
              {" "}
              (<Ago ts={d.last_refusal_at} now={now} tz={tz} />)
            </>
          ) : (
            ""
          )}
        </div>
      ) : (
        ""
      )}
    </>
  );
}

/** The table of every device: the SSE fragment for `devices` (pushed when any device changes). */
export function DevicesTable({ devices, shell }: { devices: DeviceRow[]; shell: Shell }): JSX.Element {
  const { now, timeZone: tz } = shell;
  if (devices.length === 0) {
    return <p class="panel">No device yet. A sensor appears here as soon as it sends its first reading.</p>;
  }
  return (
    <table class="stack">
      <thead>
        <tr>
          <th>Device</th>
          <th>Status</th>
          <th>Room</th>
          <th>Last reading</th>
          <th>Last seen</th>
          <th>Refused readings</th>
        </tr>
      </thead>
      <tbody>
        {devices.map(({ device: d, live }) => (
          <tr id={`device-${d.uid}`}>
            <td data-label="Device">
              <a href={`/devices/${encodeURIComponent(d.uid)}`} title={deviceName(d)}>
                {esc(deviceName(d))}
              </a>
              {d.label ? <div class="muted">{esc(d.uid)}</div> : ""}
            </td>
            <td data-label="Status">
              <StatusBadge f={live.freshness} />
            </td>
            <td data-label="Room">
              <RoomLink d={d} />
            </td>
            <td data-label="Last reading">
              {live.last ? (
                <>
                  <Temp c={live.last.temperature} /> · {fmtHum(live.last.humidity)} %
                </>
              ) : (
                "—"
              )}
            </td>
            <td data-label="Last seen">{d.last_seen_at !== null ? <Ago ts={d.last_seen_at} now={now} tz={tz} /> : "never"}</td>
            <td data-label="Refused readings">
              <Refusals d={d} now={now} tz={tz} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The list of every device, live: statuses change when the server says so. */
export function DevicesPage(data: DevicesPageData): JSX.Element {
  return (
    <Layout shell={data.shell} title="Devices" section="devices" live>
      <main id="content" hx-ext="sse" sse-connect={`/events?since=${data.version}&view=devices`}>
        <h1>Devices</h1>
        <div id="device-list" sse-swap="devices">
          <DevicesTable devices={data.devices} shell={data.shell} />
        </div>
      </main>
    </Layout>
  );
}

function PlaceForm(props: { shell: Shell; d: Device; rooms: Room[]; form: FormState; saved: boolean }): JSX.Element {
  const { d, rooms, form, saved } = props;
  const chosen = form.values.room ?? "";
  return (
    <form {...ownFormAttrs(`/devices/${encodeURIComponent(d.uid)}/place`, "place")} class="panel">
      <Csrf shell={props.shell} />
      <h2>{d.room_uid === null ? "Place it in a room" : "Move it to another room"}</h2>
      <div class="row">
        <Field label="Room" id="room" error={form.errors.room}>
          <select id="room" name="room" aria-invalid={form.errors.room ? "true" : undefined}>
            <option value="" selected={chosen === ""}>
              — in no room —
            </option>
            {rooms.map((r) => (
              <option value={r.uid} selected={chosen === r.uid}>
                {esc(r.name)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="or a new room" id="new_room" error={form.errors.new_room} hint="Created with this name">
          <Input form={form} name="new_room" placeholder="Living room" />
        </Field>
      </div>
      <Field
        label="Moved at (optional)"
        id="moved_at"
        error={form.errors.moved_at}
        hint="Leave empty for now. A past moment moves the readings since then to the new room."
      >
        <Input form={form} name="moved_at" type="datetime-local" />
      </Field>
      <button type="submit">{d.room_uid === null ? "Place" : "Move"}</button>
      {saved ? <span class="saved">Saved</span> : ""}
    </form>
  );
}

function SettingsForm({ shell, d, form, saved }: { shell: Shell; d: Device; form: FormState; saved: boolean }): JSX.Element {
  return (
    <form {...ownFormAttrs(`/devices/${encodeURIComponent(d.uid)}/settings`, "settings")} class="panel">
      <Csrf shell={shell} />
      <h2>Name and settings</h2>
      <Field label="Label" id="label" error={form.errors.label} hint="At most 100 characters; empty: shown by its uid">
        <Input form={form} name="label" />
      </Field>
      <div class="row">
        <Field
          label="Reading interval (s)"
          id="interval_s"
          error={form.errors.interval_s}
          hint={`1–3600; empty: the device's own${d.interval_s !== null ? ` (${d.interval_s} s)` : ""}`}
        >
          <Input form={form} name="interval_s" type="number" step="1" />
        </Field>
        <Field label="Temperature offset (°C)" id="temperature_offset" error={form.errors.temperature_offset} hint="−20 to 20">
          <Input form={form} name="temperature_offset" type="number" step="0.01" />
        </Field>
        <Field label="Humidity offset (%)" id="humidity_offset" error={form.errors.humidity_offset} hint="−20 to 20">
          <Input form={form} name="humidity_offset" type="number" step="0.01" />
        </Field>
      </div>
      <p class="muted">The interval and offsets reach the sensor through its retained config message, without a restart.</p>
      <button type="submit">Save</button>
      {saved ? <span class="saved">Saved</span> : ""}
    </form>
  );
}

/** The device's own MQTT password: a new one on request, shown once (for an earlier agent's device.conf). */
function MqttPassword({ shell, d, secret }: { shell: Shell; d: Device; secret?: DevicePageData["newSecret"] }): JSX.Element {
  return (
    <form {...ownFormAttrs(`/devices/${encodeURIComponent(d.uid)}/mqtt-password`, "mqtt-password")} class="panel">
      <Csrf shell={shell} />
      <h2>MQTT password</h2>
      {secret ? (
        <div class="secret" role="status">
          <p>
            Put these two lines in the <code>[mqtt]</code> section of the sensor's <code>/etc/techtemp/device.conf</code>, then
            restart it. This password is shown only now.
          </p>
          <pre id="new-secret">
            username = {esc(secret.username)}
            {"\n"}password = {esc(secret.password)}
          </pre>
        </div>
      ) : (
        <p class="muted">
          A sensor set up with an enrollment token has its own password already. A new one replaces it: the sensor then needs the
          new one in its device.conf.
        </p>
      )}
      <button type="submit">New MQTT password</button>
    </form>
  );
}

/** What the device reports now: the SSE fragment for `summary` (and swapped out of band after a saved form). */
export function DeviceSummary({ row, shell, oob }: { row: DeviceRow; shell: Shell; oob?: boolean }): JSX.Element {
  const { device: d, live } = row;
  const { now, timeZone: tz } = shell;
  return (
    <dl class="facts" id="summary-facts" hx-swap-oob={oob ? "true" : undefined}>
      <div>
        <dt>Status</dt>
        <dd>
          <StatusBadge f={live.freshness} />
        </dd>
        <dd class="muted">every {live.intervalS} s</dd>
      </div>
      <div>
        <dt>Room</dt>
        <dd>
          <RoomLink d={d} />
        </dd>
      </div>
      <div>
        <dt>Last reading</dt>
        <dd>
          {live.last ? (
            <>
              <Temp c={live.last.temperature} /> · {fmtHum(live.last.humidity)} % · <Ago ts={live.last.ts} now={now} tz={tz} />
            </>
          ) : (
            "none yet"
          )}
        </dd>
      </div>
      <div>
        <dt>Last seen</dt>
        <dd>{d.last_seen_at !== null ? <Ago ts={d.last_seen_at} now={now} tz={tz} /> : "never"}</dd>
      </div>
      <div>
        <dt>Refused readings</dt>
        <dd>
          <Refusals d={d} now={now} tz={tz} />
        </dd>
      </div>
      <div>
        <dt>Agent</dt>
        <dd>{d.version ? esc(d.version) : "earlier agent (no status messages)"}</dd>
      </div>
      {d.last_error ? (
        <div class="wide">
          <dt>Sensor error</dt>
          <dd class="refusal">{esc(d.last_error)}</dd>
        </div>
      ) : (
        ""
      )}
    </dl>
  );
}

/** One device: what it reports (live), its history chart, where it is and has been, and its forms. */
export function DevicePage(data: DevicePageData): JSX.Element {
  const { device: d } = data.row;
  const { shell } = data;
  return (
    <Layout shell={shell} title={deviceName(d)} section="devices" live charts>
      <main id="content">
        <h1>
          {esc(deviceName(d))} {d.label ? <small>{esc(d.uid)}</small> : ""}
        </h1>
        <section
          class="panel"
          id="summary"
          hx-ext="sse"
          sse-connect={`/events?since=${data.version}&view=${encodeURIComponent(`device:${d.uid}`)}`}
        >
          <div sse-swap="summary">
            <DeviceSummary row={data.row} shell={shell} oob={data.oob} />
          </div>
          <Changes />
        </section>
        <Chart
          sources={[{ kind: "device", uid: d.uid, name: deviceName(d) }]}
          window={data.window}
          labels={data.labels}
          shell={shell}
          weather={data.weather}
        />
        {shell.canWrite ? (
          <>
            <PlaceForm shell={shell} d={d} rooms={data.rooms} form={data.place} saved={data.saved === "place"} />
            <SettingsForm shell={shell} d={d} form={data.settings} saved={data.saved === "settings"} />
            <MqttPassword shell={shell} d={d} secret={data.newSecret} />
          </>
        ) : (
          <p class="muted" id="read-only">
            Only the owner can move this device or change its settings.
          </p>
        )}
        <section id="placement-history" hx-swap-oob={data.oob ? "true" : undefined}>
          <h3>Placement history</h3>
          {data.placements.length === 0 ? (
            <p class="muted">Never placed in a room.</p>
          ) : (
            <PlacementTable placements={data.placements} of="device" now={shell.now} tz={shell.timeZone} />
          )}
        </section>
      </main>
    </Layout>
  );
}
