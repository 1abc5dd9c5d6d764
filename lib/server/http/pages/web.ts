// The web pages: dashboard, room history, comparison, devices and rooms,
// their forms, and the Server-Sent Events stream that pushes each stored
// reading to open dashboards. Routes are thin: read the store, build the
// view's data, render. Every form is validated here and answered with the same
// page showing a message next to the bad field and what was typed (status
// 422); htmx swaps #content with it, and without JavaScript the browser shows
// it. Writes pass authorizeWrite like the API's (the global onRequest hook in
// lib/server/http/api/api.ts errorHandling() runs it for every POST).

import { Elysia } from "elysia";
import { createAssets, compressed } from "../assets.ts";
import { INTERVAL_RANGE, OFFSET_RANGE } from "../../../shared/contract.ts";
import { DomainError, invalid } from "../../../shared/errors.ts";
import { HTTP_STATUS } from "../errors.ts";
import type { DeviceLive, Live, LiveChange } from "../../live/live.ts";
import { iso, parseTime } from "../params.ts";
import type { Period, Stats } from "../../history/stats.ts";
import type { Device, Room, Store } from "../../store/store.ts";
import { DashboardPage, RoomCardBody, UnplacedBanner, type RoomCard, type UnplacedDevice } from "../../../../views/dashboard.tsx";
import { deviceName, DevicePage, DevicesPage, type DevicePageData } from "../../../../views/devices.tsx";
import { ComparePage, RoomPage, type ChartWindow } from "../../../../views/history.tsx";
import { ErrorPage } from "../../../../views/layout.tsx";
import { freshForm, localInputValue, type FormState, type Shell } from "../../../../views/parts.tsx";
import { RoomsPage, type RoomsPageData } from "../../../../views/rooms.tsx";

/** What the pages need from the rest of the server. */
export interface WebDeps {
  store: Store;
  /** The live summaries the cards show and whose changes the event stream pushes. */
  live: Pick<Live, "summary" | "version" | "onChange">;
  /** Statistics for the room page (lib/server/history/stats.ts). */
  stats: Pick<Stats, "room">;
  /** The clock (tests inject one); defaults to the store's. */
  now?: () => number;
}

// Scripts and styles only from this server: a label that slipped through
// escaping still could not run. Inline styles stay allowed for uPlot.
const CSP =
  "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const DAY = 86_400_000;
/** The chart windows offered, as [query value, label, length]. */
const RANGES: [string, string, number][] = [
  ["24h", "24 h", DAY],
  ["7d", "7 d", 7 * DAY],
  ["30d", "30 d", 30 * DAY],
  ["90d", "90 d", 90 * DAY],
  ["1y", "1 y", 365 * DAY],
];
/** Points a chart asks for: 24 h of 1-minute readings still come raw, longer windows as hourly/daily buckets. */
const CHART_POINTS = 1500;
/** A keep-alive comment on the event stream this often, so proxies and phones keep it open. */
const HEARTBEAT_MS = 15_000;
/** Saved-state notices of the rooms page (after a redirect). */
const ROOM_NOTICES: Record<string, string> = { created: "Room created.", saved: "Room saved.", deleted: "Room deleted." };

/** A form field's value as a trimmed string ("" when absent). */
function field(body: unknown, name: string): string {
  const v = body !== null && typeof body === "object" ? (body as Record<string, unknown>)[name] : undefined;
  if (typeof v === "string") return v.trim();
  if (typeof v === "number") return String(v);
  return "";
}

const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?$/;

/**
 * Parses a time from a form or a link: `2026-11-28T14:05` (what
 * <input type="datetime-local"> sends) is the server's local time, which is the
 * home's; an ISO time with a zone or epoch milliseconds are exact.
 */
export function parseFormTime(name: string, value: string): number {
  if (LOCAL_TIME.test(value)) {
    const [date, time] = value.split("T") as [string, string];
    const [y, mo, d] = date.split("-").map(Number) as [number, number, number];
    const [h, mi, s] = time.split(":").map(Number) as [number, number, number?];
    const ms = new Date(y, mo - 1, d, h, mi, s ?? 0).getTime();
    if (Number.isFinite(ms) && new Date(ms).getDate() === d) return ms;
  } else if (/\d{4}-\d{2}-\d{2}T.*(?:Z|[+-]\d{2}:?\d{2})$/.test(value) || /^\d{1,16}$/.test(value)) {
    try {
      return parseTime(name, value);
    } catch {}
  }
  throw invalid(name, `${JSON.stringify(value)} is not a date and time; use the form 2026-11-28T14:05`);
}

/** An event-stream message; every line of the HTML becomes a `data:` line. */
function sseMessage(event: string, html: string, id: number): string {
  return `id: ${id}\nevent: ${event}\n${html
    .split("\n")
    .map((line) => `data: ${line}\n`)
    .join("")}\n`;
}

/** Room cards of the dashboard: every room with the devices in it now, each summarised by `summary`. */
export function toRoomCards(rooms: Room[], devices: Device[], summary: (d: Device) => DeviceLive): RoomCard[] {
  const inRoom = new Map<string, Device[]>();
  for (const d of devices) if (d.room_uid !== null) inRoom.set(d.room_uid, [...(inRoom.get(d.room_uid) ?? []), d]);
  return rooms.map((r) => ({
    uid: r.uid,
    name: r.name,
    floor: r.floor,
    side: r.side,
    sensors: (inRoom.get(r.uid) ?? []).map((d) => ({ uid: d.uid, name: deviceName(d), live: summary(d) })),
  }));
}

/** Devices in no room, for the banner. */
export const unplacedOf = (devices: Device[]): UnplacedDevice[] =>
  devices.filter((d) => d.room_uid === null).map((d) => ({ uid: d.uid, name: deviceName(d), lastSeenAt: d.last_seen_at }));

/**
 * The dashboard's HTML: what `GET /` renders. `summary` gives each device's
 * card data (the live summaries; bench/pages.ts also passes a naive one).
 */
export function renderDashboard(store: Store, summary: (d: Device) => DeviceLive, shell: Shell, version: number): string {
  const devices = store.listDevices();
  return DashboardPage({
    shell,
    rooms: toRoomCards(store.listRooms(), devices, summary),
    unplaced: unplacedOf(devices),
    version,
  }) as string;
}

/** Creates the page routes. */
export function createWeb(deps: WebDeps) {
  const { store, live } = deps;
  const now = deps.now ?? store.now;
  const assets = createAssets();
  const shell = (): Shell => ({ assets: assets.urls, now: now() });

  function page(request: Request, html: JSX.Element, status = 200): Response {
    return compressed(
      request,
      html as string,
      { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-security-policy": CSP },
      status,
    );
  }

  /** Runs a page handler; a domain error (unknown room…) becomes an error page with its status. */
  async function guard(request: Request, handler: () => Response | Promise<Response>): Promise<Response> {
    try {
      return await handler();
    } catch (err) {
      if (err instanceof DomainError && HTTP_STATUS[err.kind] < 500) {
        const status = HTTP_STATUS[err.kind];
        return page(request, ErrorPage({ shell: shell(), status, message: err.message }), status);
      }
      throw err;
    }
  }

  const isHtmx = (request: Request) => request.headers.get("hx-request") === "true";
  const redirect = (location: string) => new Response(null, { status: 303, headers: { location } });

  // ---- data for the views ----

  const roomCards = (rooms: Room[], devices: Device[], at: number) => toRoomCards(rooms, devices, (d) => live.summary(d, at));

  /** Device uid → name, for chart legends and placement tables. */
  const labelsOf = (devices: Device[]) => Object.fromEntries(devices.map((d) => [d.uid, deviceName(d)]));

  /**
   * The chart window from the query: a preset (`range`, ending at `end` or
   * now) or a custom `from`/`to`. Bad values fall back to the last 24 h, with
   * a message for the field.
   */
  function chartWindow(params: URLSearchParams, base: string, keep: Record<string, string>, at: number): ChartWindow {
    const link = (q: Record<string, string>) => `${base}?${new URLSearchParams({ ...keep, ...q })}`;
    const custom: FormState = { values: { from: params.get("from") ?? "", to: params.get("to") ?? "" }, errors: {} };
    let key: string | null = params.get("range") ?? "24h";
    let span = RANGES.find(([k]) => k === key)?.[2];
    if (span === undefined) {
      custom.errors.from = `range ${JSON.stringify(key)} is not one of ${RANGES.map(([k]) => k).join(", ")}`;
      key = "24h";
      span = DAY;
    }
    let to = at;
    let from = at - span;
    if (custom.values.from || custom.values.to) {
      const parse = (name: "from" | "to", fallback: number | null): number | null => {
        const typed = custom.values[name]!;
        if (typed === "") {
          if (fallback === null) custom.errors[name] = "choose a date and time";
          return fallback;
        }
        try {
          return parseFormTime(name, typed);
        } catch (err) {
          custom.errors[name] = (err as DomainError).problem;
          return null;
        }
      };
      const f = parse("from", null);
      const t = parse("to", at);
      if (f !== null && t !== null && f >= t) custom.errors.to = "must be after From";
      if (Object.keys(custom.errors).length === 0) {
        from = f!;
        to = t!;
        span = to - from;
        key = null;
      }
    } else if (params.get("end")) {
      try {
        to = Math.min(parseFormTime("end", params.get("end")!), at);
        from = to - span;
      } catch (err) {
        custom.errors.to = (err as DomainError).problem;
      }
    }
    if (Object.keys(custom.errors).length === 0) custom.values = { from: localInputValue(from), to: localInputValue(to) };
    const shifted = (by: number) =>
      key === null
        ? link({ from: iso(from + by)!, to: iso(to + by)! })
        : to + by >= at
          ? link({ range: key })
          : link({ range: key, end: iso(to + by)! });
    return {
      from,
      to,
      presets: RANGES.map(([k, label]) => ({ label, href: link({ range: k }), current: k === key })),
      back: shifted(-span),
      forward: to >= at ? null : shifted(span),
      custom,
      points: CHART_POINTS,
    };
  }

  function devicePage(d: Device, forms: Partial<Pick<DevicePageData, "place" | "settings" | "saved">> = {}): JSX.Element {
    const at = now();
    return DevicePage({
      shell: shell(),
      row: { device: d, live: live.summary(d, at) },
      rooms: store.listRooms(),
      placements: store.devicePlacements(d.uid),
      place: forms.place ?? freshForm({ room: d.room_uid ?? "", new_room: "", moved_at: "" }),
      settings:
        forms.settings ??
        freshForm({
          label: d.label ?? "",
          interval_s: d.config_interval_s === null ? "" : String(d.config_interval_s),
          temperature_offset: String(d.temperature_offset),
          humidity_offset: String(d.humidity_offset),
        }),
      saved: forms.saved,
    });
  }

  function roomsPage(extra: Partial<RoomsPageData> = {}): JSX.Element {
    const count = new Map<string, number>();
    for (const d of store.listDevices()) if (d.room_uid !== null) count.set(d.room_uid, (count.get(d.room_uid) ?? 0) + 1);
    return RoomsPage({
      shell: shell(),
      rooms: store.listRooms().map((room) => ({ room, devices: count.get(room.uid) ?? 0 })),
      create: freshForm({ name: "", floor: "", side: "" }),
      ...extra,
    });
  }

  /** Validates the room fields of a form: name required (≤ 100), floor and side optional (≤ 50). */
  function roomForm(body: unknown): FormState {
    const form = freshForm({ name: field(body, "name"), floor: field(body, "floor"), side: field(body, "side") });
    if (form.values.name === "") form.errors.name = "give the room a name";
    else if (form.values.name!.length > 100) form.errors.name = "at most 100 characters";
    for (const f of ["floor", "side"]) if (form.values[f]!.length > 50) form.errors[f] = "at most 50 characters";
    return form;
  }

  // ---- Server-Sent Events ----

  const encoder = new TextEncoder();
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let heartbeat: ReturnType<typeof setInterval> | null = null;

  function send(controller: ReadableStreamDefaultController<Uint8Array>, text: string): void {
    try {
      controller.enqueue(encoder.encode(text));
    } catch {
      streams.delete(controller);
    }
  }

  function broadcast(text: string): void {
    for (const controller of streams) send(controller, text);
  }

  /** Messages that bring every card of a page up to date. */
  function everything(version: number): string {
    const at = now();
    const devices = store.listDevices();
    let out = sseMessage("unplaced", UnplacedBanner({ devices: unplacedOf(devices), now: at }) as string, version);
    for (const card of roomCards(store.listRooms(), devices, at)) {
      out += sseMessage(`room-${card.uid}`, RoomCardBody({ room: card, now: at }) as string, version);
    }
    return out;
  }

  live.onChange((change: LiveChange) => {
    if (streams.size === 0) return;
    const at = now();
    const devices = store.listDevices();
    const rooms = store.listRooms().filter((r) => change.rooms.has(r.uid));
    let out = "";
    for (const card of roomCards(rooms, devices, at)) {
      out += sseMessage(`room-${card.uid}`, RoomCardBody({ room: card, now: at }) as string, change.version);
    }
    if (change.unplaced) {
      out += sseMessage("unplaced", UnplacedBanner({ devices: unplacedOf(devices), now: at }) as string, change.version);
    }
    if (out) broadcast(out);
  });

  function openStream(request: Request, since: number): Response {
    let self: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        self = controller;
        streams.add(controller);
        // Ask the browser to reconnect after 2 s, and send what changed since the page was rendered.
        send(controller, "retry: 2000\n\n");
        if (!(since >= live.version)) send(controller, everything(live.version));
        heartbeat ??= setInterval(() => {
          broadcast(": keep-alive\n\n");
          if (streams.size === 0 && heartbeat) {
            clearInterval(heartbeat);
            heartbeat = null;
          }
        }, HEARTBEAT_MS);
      },
      cancel() {
        streams.delete(self);
      },
    });
    request.signal.addEventListener("abort", () => streams.delete(self));
    return new Response(stream, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
    });
  }

  // ---- routes ----

  return (
    new Elysia({ name: "web" })
      .use(assets.routes)
      .onStop(() => {
        if (heartbeat) clearInterval(heartbeat);
        heartbeat = null;
        for (const controller of streams) {
          try {
            controller.close();
          } catch {}
        }
        streams.clear();
      })
      .get("/", ({ request }) =>
        guard(request, () => {
          const at = now();
          return page(
            request,
            renderDashboard(store, (d) => live.summary(d, at), shell(), live.version),
          );
        }),
      )
      .get("/events", ({ request, query, server }) => {
        // An event stream is idle between readings: no idle timeout for it.
        server?.timeout(request, 0);
        const since = Number(request.headers.get("last-event-id") ?? query.since);
        return openStream(request, since);
      })

      // ---- rooms ----
      .get("/rooms", ({ request, query }) =>
        guard(request, () => page(request, roomsPage({ notice: ROOM_NOTICES[query.done ?? ""] }))),
      )
      .post("/rooms", ({ request, body }) =>
        guard(request, () => {
          const form = roomForm(body);
          if (Object.keys(form.errors).length === 0) {
            try {
              store.createRoom({ name: form.values.name!, floor: form.values.floor || null, side: form.values.side || null });
              return isHtmx(request)
                ? page(request, roomsPage({ notice: ROOM_NOTICES.created }))
                : redirect("/rooms?done=created");
            } catch (err) {
              if (!(err instanceof DomainError) || err.kind === "unavailable") throw err;
              // "room_name: must contain a letter" or "room "x" already exists": both are about the name.
              form.errors.name = err.problem;
            }
          }
          return page(request, roomsPage({ create: form }), 422);
        }),
      )
      .get("/rooms/:uid", ({ request, params }) =>
        guard(request, () => {
          const room = store.getRoom(params.uid);
          const at = now();
          const devices = store.listDevices();
          const base = `/rooms/${encodeURIComponent(room.uid)}`;
          const window = chartWindow(new URL(request.url).searchParams, base, {}, at);
          // Days for a week, weeks up to a season, months beyond: a table a person can read.
          const span = window.to - window.from;
          const period: Period = span <= 8 * DAY ? "day" : span <= 100 * DAY ? "week" : "month";
          const periods = deps.stats.room(room.id, { from: window.from, to: window.to, period, now: at }).reverse();
          const html = RoomPage({
            stats: { period, periods },
            shell: shell(),
            room: roomCards([room], devices, at)[0]!,
            version: live.version,
            window,
            placements: store.roomPlacements(room.uid),
            labels: labelsOf(devices),
          });
          return page(request, html, Object.keys(window.custom.errors).length ? 400 : 200);
        }),
      )
      .post("/rooms/:uid", ({ request, params, body }) =>
        guard(request, () => {
          store.getRoom(params.uid);
          const form = roomForm(body);
          if (Object.keys(form.errors).length === 0) {
            store.updateRoom(params.uid, {
              name: form.values.name!,
              floor: form.values.floor || null,
              side: form.values.side || null,
            });
            return isHtmx(request) ? page(request, roomsPage({ notice: ROOM_NOTICES.saved })) : redirect("/rooms?done=saved");
          }
          return page(request, roomsPage({ edit: { uid: params.uid, form } }), 422);
        }),
      )
      .post("/rooms/:uid/delete", ({ request, params, body }) =>
        guard(request, () => {
          store.getRoom(params.uid);
          let message = "tick the box to confirm";
          if (field(body, "confirm") === "yes") {
            try {
              store.deleteRoom(params.uid);
              return isHtmx(request)
                ? page(request, roomsPage({ notice: ROOM_NOTICES.deleted }))
                : redirect("/rooms?done=deleted");
            } catch (err) {
              if (!(err instanceof DomainError) || err.kind === "unavailable") throw err;
              message = err.message;
            }
          }
          return page(request, roomsPage({ deleteError: { uid: params.uid, message } }), 422);
        }),
      )

      // ---- comparison ----
      .get("/compare", ({ request }) =>
        guard(request, () => {
          const params = new URL(request.url).searchParams;
          const rooms = store.listRooms();
          const wanted = [
            ...new Set(
              params
                .getAll("rooms")
                .flatMap((v) => v.split(","))
                .map((v) => v.trim())
                .filter(Boolean),
            ),
          ];
          const unknown = wanted.filter((uid) => !rooms.some((r) => r.uid === uid));
          const selected = wanted.flatMap((uid) => rooms.filter((r) => r.uid === uid).map((r) => ({ uid: r.uid, name: r.name })));
          const at = now();
          const window = chartWindow(params, "/compare", { rooms: selected.map((r) => r.uid).join(",") }, at);
          const roomsError = unknown.length
            ? `no room ${unknown.map((u) => JSON.stringify(u)).join(", ")}; choose from the list`
            : rooms.length === 0
              ? "there are no rooms yet"
              : selected.length === 0
                ? "choose one or more rooms"
                : undefined;
          const html = ComparePage({
            shell: shell(),
            rooms,
            selected,
            window,
            labels: labelsOf(store.listDevices()),
            roomsError,
          });
          const bad = unknown.length > 0 || Object.keys(window.custom.errors).length > 0;
          return page(request, html, bad ? 400 : 200);
        }),
      )

      // ---- devices ----
      .get("/devices", ({ request }) =>
        guard(request, () => {
          const at = now();
          const rows = store.listDevices().map((device) => ({ device, live: live.summary(device, at) }));
          return page(request, DevicesPage({ shell: shell(), devices: rows }));
        }),
      )
      .get("/devices/:uid", ({ request, params, query }) =>
        guard(request, () => {
          const saved = query.saved === "place" || query.saved === "settings" ? query.saved : undefined;
          return page(request, devicePage(store.getDevice(params.uid), { saved }));
        }),
      )
      .post("/devices/:uid/place", ({ request, params, body }) =>
        guard(request, () => {
          const d = store.getDevice(params.uid);
          const form = freshForm({
            room: field(body, "room"),
            new_room: field(body, "new_room"),
            moved_at: field(body, "moved_at"),
          });
          const { room, new_room: newRoom, moved_at: movedText } = form.values as Record<string, string>;
          let movedAt: number | undefined;
          if (movedText) {
            try {
              movedAt = parseFormTime("moved_at", movedText);
            } catch (err) {
              form.errors.moved_at = (err as DomainError).problem;
            }
          }
          if (newRoom.length > 100) form.errors.new_room = "at most 100 characters";
          if (!newRoom && room && !store.listRooms().some((r) => r.uid === room))
            form.errors.room = "choose a room from the list";
          if (!newRoom && (room || null) === d.room_uid) {
            form.errors.room =
              d.room_uid === null ? "it is in no room already; choose a room" : `it is in ${d.room_name} already`;
          }
          if (Object.keys(form.errors).length === 0) {
            try {
              store.updateDevice(d.uid, { ...(newRoom ? { roomName: newRoom } : { roomUid: room || null }), movedAt });
              const saved = store.getDevice(d.uid);
              if (!isHtmx(request)) return redirect(`/devices/${encodeURIComponent(d.uid)}?saved=place#place`);
              return page(request, devicePage(saved, { saved: "place" }));
            } catch (err) {
              if (!(err instanceof DomainError) || err.kind === "unavailable") throw err;
              form.errors[err.field === "moved_at" ? "moved_at" : newRoom ? "new_room" : "room"] = err.problem;
            }
          }
          return page(request, devicePage(d, { place: form }), 422);
        }),
      )
      .post("/devices/:uid/settings", ({ request, params, body }) =>
        guard(request, () => {
          const d = store.getDevice(params.uid);
          const form = freshForm({
            label: field(body, "label"),
            interval_s: field(body, "interval_s"),
            temperature_offset: field(body, "temperature_offset"),
            humidity_offset: field(body, "humidity_offset"),
          });
          const v = form.values as Record<string, string>;
          if (v.label.length > 100) form.errors.label = "at most 100 characters";
          let interval: number | null = null;
          if (v.interval_s !== "") {
            interval = /^\d+$/.test(v.interval_s) ? Number(v.interval_s) : NaN;
            if (!(interval >= INTERVAL_RANGE[0] && interval <= INTERVAL_RANGE[1])) {
              form.errors.interval_s = `a whole number of seconds from ${INTERVAL_RANGE[0]} to ${INTERVAL_RANGE[1]}, or empty`;
            }
          }
          const offset = (name: "temperature_offset" | "humidity_offset"): number => {
            // A decimal comma is fine too (0,5): half of the homes write it that way.
            const n =
              v[name] === "" ? 0 : /^[+-]?(\d+([.,]\d*)?|[.,]\d+)$/.test(v[name]) ? Number(v[name].replace(",", ".")) : NaN;
            if (!(n >= OFFSET_RANGE[0] && n <= OFFSET_RANGE[1])) {
              form.errors[name] = `a number from ${OFFSET_RANGE[0]} to ${OFFSET_RANGE[1]}`;
            }
            return n;
          };
          const temperatureOffset = offset("temperature_offset");
          const humidityOffset = offset("humidity_offset");
          if (Object.keys(form.errors).length > 0) return page(request, devicePage(d, { settings: form }), 422);

          // The config publisher (lib/server/mqtt/config-publisher.ts) carries new settings to the sensor.
          const device = store.updateDevice(d.uid, {
            label: v.label || null,
            config_interval_s: interval,
            temperature_offset: temperatureOffset,
            humidity_offset: humidityOffset,
          });
          if (!isHtmx(request)) return redirect(`/devices/${encodeURIComponent(d.uid)}?saved=settings#settings`);
          return page(request, devicePage(device, { saved: "settings" }));
        }),
      )
  );
}
