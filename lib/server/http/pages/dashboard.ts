// The dashboard (`GET /`) and the event stream that keeps open dashboards and
// room pages current (`GET /events`): each change of the live summaries is
// pushed as the fragments of the cards it touched.

import { Elysia, t } from "elysia";
import type { DeviceLive, Live, LiveChange } from "../../live/live.ts";
import type { Device, Store } from "../../store/store.ts";
import { DashboardPage, RoomCardBody, UnplacedBanner } from "../../../../views/dashboard.tsx";
import { AlertBanner } from "../../../../views/alerts.tsx";
import { withAlertChanges } from "./alerts.ts";
import type { Alerts } from "../../alerts/alerts.ts";
import type { Shell } from "../../../../views/parts.tsx";
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

/** Creates `/` and `/events`. */
export function createDashboardPages({
  live,
  models,
  respond,
  stillAllowed,
  alerts,
}: {
  live: Pick<Live, "version" | "onChange">;
  /** Incident changes push the banner and their rooms' cards too. */
  alerts?: Pick<Alerts, "onChange">;
  models: Models;
  respond: Respond;
  /** Whether a stream's reader may still read the dashboard (asked while the stream is open). */
  stillAllowed: (request: Request) => boolean;
}) {
  /** The fragments a change touched (the unplaced banner last), or every one (the banner first). */
  function fragments(change: LiveChange | null): Fragment[] {
    const { rooms, unplaced, now, alerts: active } = models.cards(change?.rooms);
    const banner = (): Fragment => ({ event: "unplaced", html: UnplacedBanner({ devices: unplaced, now }) as string });
    const cards = rooms.map((room): Fragment => ({ event: `room-${room.uid}`, html: RoomCardBody({ room, now }) as string }));
    // The alerts banner goes with every push: an incident's "since" and a reconnecting page stay right.
    if (active) cards.push({ event: "alerts", html: AlertBanner({ alerts: active, now }) as string });
    if (change === null) return [banner(), ...cards];
    return change.unplaced ? [...cards, banner()] : cards;
  }

  const hub = createEventHub({ live: withAlertChanges(live, alerts), fragments });

  return new Elysia()
    .onStop(() => hub.close())
    .get("/", ({ request }) => respond(request, (shell) => DashboardPage(models.dashboard(shell))))
    .get(
      "/events",
      ({ request, query, server }) => {
        // An event stream is idle between readings: no idle timeout for it.
        server?.timeout(request, 0);
        return hub.open(request, Number(request.headers.get("last-event-id") ?? query.since), () => stillAllowed(request));
      },
      { query: t.Object({ since: t.Optional(t.String()) }) },
    );
}
