// The dashboard (`GET /`) and the event stream that keeps every page that
// shows something live current (`GET /events?view=…`): each change of the
// live summaries is pushed as the fragments it touched, per view:
//
//   dashboard        the changed room cards, the unplaced banner, every card
//                    when rooms come and go (`cards`), the outdoor weather
//   room:<uid>       that room's card, and `changes` for its chart
//   devices          the devices table (a status never ages into "offline"
//                    on a page the server does not keep current)
//   device:<uid>     that device's summary, and `changes` for its chart
//   compare          `changes` for the charts
//
// `changes` is a small JSON list of the rooms and devices with news; the
// chart script fetches their new points itself.

import { Elysia, t } from "elysia";
import type { Live, LiveChange } from "../../live/live.ts";
import type { Device, Store } from "../../store/store.ts";
import { DashboardPage, Outdoor, RoomCardBody, RoomCards, UnplacedBanner } from "../../../../views/dashboard.tsx";
import { DeviceSummary, DevicesTable } from "../../../../views/devices.tsx";
import { AlertBanner } from "../../../../views/alerts.tsx";
import { withAlertChanges } from "./alerts.ts";
import type { Alerts } from "../../alerts/alerts.ts";
import type { Shell } from "../../../../views/parts.tsx";
import type { DeviceLive } from "../../live/live.ts";
import type { Weather } from "../../weather/weather.ts";
import { dashboardData, type Models } from "./models.ts";
import type { Respond } from "./page.ts";
import { createEventHub, type Fragment } from "./sse.ts";

/**
 * The dashboard's HTML: what `GET /` renders. `summary` gives each device's
 * card data (the live summaries; bench/pages.ts also passes a naive one).
 */
export function renderDashboard(
  store: Pick<Store, "listDevices" | "listRooms">,
  summary: (d: Device) => DeviceLive,
  shell: Shell,
  version: number,
): string {
  return DashboardPage(dashboardData(store, summary, shell, version)) as string;
}

/** A stream's view: which page it keeps current. */
const VIEW = /^(?:dashboard|devices|compare|(?:room|device):[A-Za-z0-9_-]{1,50})$/;

/** Creates `/` and `/events`. */
export function createDashboardPages({
  live,
  models,
  respond,
  stillAllowed,
  alerts,
  mayRead,
  store,
  shellAt,
  weather,
}: {
  live: Pick<Live, "version" | "onChange">;
  /** Incident changes push the banner and their rooms' cards too. */
  alerts?: Pick<Alerts, "onChange">;
  models: Models;
  respond: Respond;
  /** Whether a stream's reader may still read the dashboard (asked while the stream is open). */
  stillAllowed: (request: Request) => boolean;
  /** Whether a request may read the other pages (the kiosk link may not). */
  mayRead: (request: Request) => boolean;
  store: Pick<Store, "findDevice">;
  /** A shell for fragments rendered once for every reader (no viewer: fragments hold no form). */
  shellAt: (now: number) => Shell;
  weather: Pick<Weather, "onChange"> | null;
}) {
  /** The dashboard's fragments of a change (the unplaced banner last), or every one (the banner first). */
  function dashboard(change: LiveChange | null): Fragment[] {
    const layout = change === null || change.layout;
    const { rooms, unplaced, now, alerts: active } = models.cards(layout ? undefined : change.rooms);
    const shell = shellAt(now);
    const banner = (): Fragment => ({ event: "unplaced", html: UnplacedBanner({ devices: unplaced, shell }) as string });
    const out: Fragment[] = layout
      ? [{ event: "cards", html: RoomCards({ rooms, shell }) as string }]
      : rooms.map((room) => ({ event: `room-${room.uid}`, html: RoomCardBody({ room, shell }) as string }));
    // The alerts banner goes with every push: an incident's "since" and a reconnecting page stay right.
    if (active) out.push({ event: "alerts", html: AlertBanner({ alerts: active, shell }) as string });
    if (change === null) return [banner(), ...out, outdoor()];
    return change.unplaced ? [...out, banner()] : out;
  }

  const outdoor = (): Fragment => ({
    event: "outdoor",
    html: Outdoor({ outdoor: models.outdoor(), shell: shellAt(Date.now()) }) as string,
  });

  /** `changes`: the rooms and devices with news, as JSON (uids are [A-Za-z0-9_-]: nothing to escape). */
  const changes = (change: LiveChange): Fragment => ({
    event: "changes",
    html: JSON.stringify({ rooms: [...change.rooms], devices: [...change.devices], version: change.version }),
  });

  function fragments(change: LiveChange | null, view: string): Fragment[] {
    if (view === "dashboard") return dashboard(change);
    if (view === "devices") {
      if (change !== null && change.devices.size === 0) return [];
      const shell = shellAt(Date.now());
      return [{ event: "devices", html: DevicesTable({ devices: models.deviceRows(), shell }) as string }];
    }
    const [kind, uid] = view.split(":") as [string, string | undefined];
    const out: Fragment[] = [];
    if (kind === "room" && uid && (change === null || change.rooms.has(uid))) {
      const { rooms, now } = models.cards(new Set([uid]));
      if (rooms[0]) out.push({ event: `room-${uid}`, html: RoomCardBody({ room: rooms[0], shell: shellAt(now) }) as string });
    }
    if (kind === "device" && uid && (change === null || change.devices.has(uid))) {
      const device = store.findDevice(uid);
      const row = device ? models.deviceRows().find((r) => r.device.uid === uid) : undefined;
      if (row) out.push({ event: "summary", html: DeviceSummary({ row, shell: shellAt(Date.now()) }) as string });
    }
    if (change !== null && (change.rooms.size > 0 || change.devices.size > 0)) out.push(changes(change));
    return out;
  }

  const hub = createEventHub({ live: withAlertChanges(live, alerts), fragments });
  const unsubscribe = weather?.onChange(() => hub.push((view) => (view === "dashboard" ? [outdoor()] : [])));

  return new Elysia()
    .onStop(() => {
      unsubscribe?.();
      hub.close();
    })
    .get("/", ({ request }) => respond(request, (shell) => DashboardPage(models.dashboard(shell))))
    .get(
      "/events",
      ({ request, query, server, set }) => {
        const view = query.view ?? "dashboard";
        if (!VIEW.test(view)) {
          set.status = 400;
          return "view: not a page that has live updates (dashboard, devices, compare, room:UID, device:UID)\n";
        }
        // The kiosk link shows the dashboard only.
        if (view !== "dashboard" && !mayRead(request)) {
          set.status = 403;
          return "the kiosk link shows the dashboard only\n";
        }
        // An event stream is idle between readings: no idle timeout for it.
        server?.timeout(request, 0);
        const allowed = view === "dashboard" ? () => stillAllowed(request) : () => mayRead(request);
        return hub.open(request, Number(request.headers.get("last-event-id") ?? query.since), allowed, view);
      },
      { query: t.Object({ since: t.Optional(t.String()), view: t.Optional(t.String()) }) },
    );
}
