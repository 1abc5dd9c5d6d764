// What each page shows, built from the store, the live summaries and the
// statistics: the views (views/*.tsx) are pure functions of these models.

import type { Period, Stats } from "../../history/stats.ts";
import type { DeviceLive, Live } from "../../live/live.ts";
import type { Device, IncidentRow, Room, Store } from "../../store/store.ts";
import type { DashboardData, RoomCard, UnplacedDevice } from "../../../../views/dashboard.tsx";
import { deviceName, type DevicePageData, type DevicesPageData } from "../../../../views/devices.tsx";
import type { ChartWindow, ComparePageData, RoomPageData } from "../../../../views/history.tsx";
import { freshForm, type Shell } from "../../../../views/parts.tsx";
import type { RoomsPageData } from "../../../../views/rooms.tsx";
import type { OutdoorNow, Weather } from "../../weather/weather.ts";
import { lastDay } from "./window.ts";

const DAY = 86_400_000;

/** Room cards of the dashboard: every room with the devices in it now, each summarised by `summary`. */
function toRoomCards(rooms: Room[], devices: Device[], summary: (d: Device) => DeviceLive, alerts?: IncidentRow[]): RoomCard[] {
  const inRoom = new Map<string, Device[]>();
  for (const d of devices) if (d.room_uid !== null) inRoom.set(d.room_uid, [...(inRoom.get(d.room_uid) ?? []), d]);
  return rooms.map((r) => ({
    uid: r.uid,
    name: r.name,
    floor: r.floor,
    side: r.side,
    sensors: (inRoom.get(r.uid) ?? []).map((d) => ({ uid: d.uid, name: deviceName(d), live: summary(d) })),
    ...(alerts ? { alerts: alerts.filter((i) => i.room_uid === r.uid) } : {}),
  }));
}

/** Devices in no room, for the banner. */
const unplacedOf = (devices: Device[]): UnplacedDevice[] =>
  devices.filter((d) => d.room_uid === null).map((d) => ({ uid: d.uid, name: deviceName(d), lastSeenAt: d.last_seen_at }));

/** Device uid → name, for chart legends and placement tables. */
const labelsOf = (devices: Device[]) => Object.fromEntries(devices.map((d) => [d.uid, deviceName(d)]));

/**
 * The dashboard: every room's card and the unplaced banner. `summary` gives
 * each device's card data (the live summaries; bench/pages.ts also passes a
 * naive one).
 */
export function dashboardData(
  store: Pick<Store, "listDevices" | "listRooms">,
  summary: (d: Device) => DeviceLive,
  shell: Shell,
  version: number,
  outdoor: OutdoorNow | null = null,
  alerts?: IncidentRow[],
): DashboardData {
  const devices = store.listDevices();
  const rooms = toRoomCards(store.listRooms(), devices, summary, alerts);
  return { shell, rooms, unplaced: unplacedOf(devices), outdoor, version, ...(alerts ? { alerts } : {}) };
}

/** The rooms a comparison asked for: which exist (in the order asked), and which do not. */
export interface RoomChoice {
  rooms: Room[];
  selected: { uid: string; name: string }[];
  unknown: string[];
}

/** What the models read. */
export interface ModelDeps {
  store: Store;
  live: Pick<Live, "summary" | "version">;
  stats: Pick<Stats, "room">;
  now: () => number;
  /** Incidents not resolved, for the banner and the cards' marks (lib/server/alerts). */
  alerts?: { active(): IncidentRow[] };
  /** The outdoor weather, null when it is off. */
  weather: Pick<Weather, "now"> | null;
}

/**
 * Creates the page models. Each takes the request's shell (who is looking,
 * the banners: web.ts makes it), so a model is the same for everyone but
 * what the shell says.
 */
export function createModels({ store, live, stats, now, weather, alerts }: ModelDeps) {
  const roomCards = (rooms: Room[], devices: Device[], at: number) =>
    toRoomCards(rooms, devices, (d) => live.summary(d, at), alerts?.active());

  return {
    /** The dashboard now. */
    dashboard(shell: Shell): DashboardData {
      const at = now();
      return dashboardData(store, (d) => live.summary(d, at), shell, live.version, weather?.now() ?? null, alerts?.active());
    },

    /** The outdoor weather line now (null when it is off). */
    outdoor: (): OutdoorNow | null => weather?.now() ?? null,

    /** The devices with their live summaries, now. */
    deviceRows(): DevicesPageData["devices"] {
      const at = now();
      return store.listDevices().map((device) => ({ device, live: live.summary(device, at) }));
    },

    /** The cards the event stream pushes: of `only` these rooms (every room when omitted), and the banner's devices. */
    cards(only?: Set<string>): { rooms: RoomCard[]; unplaced: UnplacedDevice[]; now: number; alerts?: IncidentRow[] } {
      const at = now();
      const devices = store.listDevices();
      const rooms = store.listRooms().filter((r) => only === undefined || only.has(r.uid));
      return { rooms: roomCards(rooms, devices, at), unplaced: unplacedOf(devices), now: at, alerts: alerts?.active() };
    },

    /** The rooms page; `extra` holds a form as posted, a refused delete or a notice. */
    rooms(shell: Shell, extra: Partial<RoomsPageData> = {}): RoomsPageData {
      const count = new Map<string, number>();
      for (const d of store.listDevices()) if (d.room_uid !== null) count.set(d.room_uid, (count.get(d.room_uid) ?? 0) + 1);
      return {
        shell,
        rooms: store.listRooms().map((room) => ({ room, devices: count.get(room.uid) ?? 0 })),
        create: freshForm({ name: "", floor: "", side: "" }),
        ...extra,
      };
    },

    /** The devices list with each device's live summary. */
    devices(shell: Shell): DevicesPageData {
      const at = now();
      return {
        shell,
        devices: store.listDevices().map((device) => ({ device, live: live.summary(device, at) })),
        version: live.version,
      };
    },

    /** A device's page; its forms show the stored values unless given as posted. */
    device(
      shell: Shell,
      d: Device,
      forms: Partial<Pick<DevicePageData, "place" | "settings" | "saved" | "newSecret" | "oob">> = {},
    ): DevicePageData {
      const at = now();
      return {
        shell,
        window: lastDay(at),
        labels: labelsOf(store.listDevices()),
        weather: weather !== null,
        version: live.version,
        oob: forms.oob,
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
        newSecret: forms.newSecret,
      };
    },

    /** A room's page over `window`, at `at`, with its statistics. */
    room(shell: Shell, room: Room, window: ChartWindow, at: number): RoomPageData {
      const devices = store.listDevices();
      // Days for a week, weeks up to a season, months beyond: a table a person can read.
      const span = window.to - window.from;
      const period: Period = span <= 8 * DAY ? "day" : span <= 100 * DAY ? "week" : "month";
      const periods = stats.room(room.id, { from: window.from, to: window.to, period, now: at }).reverse();
      return {
        stats: { period, periods },
        shell,
        room: roomCards([room], devices, at)[0]!,
        version: live.version,
        window,
        placements: store.roomPlacements(room.uid),
        labels: labelsOf(devices),
        weather: weather !== null,
      };
    },

    /** The rooms a comparison asks for: `?rooms=a,b` or several `rooms`, trimmed, each once. */
    roomChoice(asked: string[]): RoomChoice {
      const rooms = store.listRooms();
      const wanted = [
        ...new Set(
          asked
            .flatMap((v) => v.split(","))
            .map((v) => v.trim())
            .filter(Boolean),
        ),
      ];
      return {
        rooms,
        selected: wanted.flatMap((uid) => rooms.filter((r) => r.uid === uid).map((r) => ({ uid: r.uid, name: r.name }))),
        unknown: wanted.filter((uid) => !rooms.some((r) => r.uid === uid)),
      };
    },

    /** The comparison page of `choice` over `window`. */
    compare(shell: Shell, choice: RoomChoice, window: ChartWindow): ComparePageData {
      const { rooms, selected, unknown } = choice;
      const roomsError = unknown.length
        ? `no room ${unknown.map((u) => JSON.stringify(u)).join(", ")}; choose from the list`
        : rooms.length === 0
          ? "there are no rooms yet"
          : selected.length === 0
            ? "choose one or more rooms"
            : undefined;
      return {
        shell,
        rooms,
        selected,
        window,
        labels: labelsOf(store.listDevices()),
        roomsError,
        version: live.version,
        weather: weather !== null,
      };
    },
  };
}

/** The page models' interface. */
export type Models = ReturnType<typeof createModels>;
