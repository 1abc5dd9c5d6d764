// The web pages: dashboard, room history, comparison, devices and rooms with
// their forms, and the event stream that pushes each change to open pages.
// One Elysia instance per area, chained here; each route checks its input,
// calls the store, and renders a view (views/*.tsx) of a model (models.ts).
// Who may open or post each one is the guard's (lib/server/http/auth/).

import { Elysia } from "elysia";
import type { Stats } from "../../history/stats.ts";
import type { Live } from "../../live/live.ts";
import type { Store } from "../../store/store.ts";
import type { Enrollment } from "../../auth/enrollment.ts";
import type { Assets } from "../assets.ts";
import type { Alerts } from "../../alerts/alerts.ts";
import { createAlertsPages } from "./alerts.ts";
import { createDashboardPages } from "./dashboard.ts";
import { createDevicesPages } from "./devices.ts";
import { createHistoryPages } from "./history.ts";
import { createModels } from "./models.ts";
import type { Respond } from "./page.ts";
import { createRoomsPages } from "./rooms.ts";
import { createWeatherApi } from "./weather.ts";
import { createZone } from "../../history/zone.ts";
import type { Weather } from "../../weather/weather.ts";
import { plainShell } from "../../../../views/parts.tsx";

/** What the pages need from the rest of the server. */
export interface WebDeps {
  store: Store;
  /** The live summaries the cards show and whose changes the event stream pushes. */
  live: Pick<Live, "summary" | "version" | "onChange">;
  /** Statistics for the room page (lib/server/history/stats.ts). */
  stats: Pick<Stats, "room">;
  /** The embedded static files. */
  assets: Assets;
  /** Answers a page route with the request's shell (lib/server/http/pages/page.ts). */
  respond: Respond;
  /** A device's new MQTT password (the device page's button). */
  enrollment: Pick<Enrollment, "newDeviceSecret">;
  /** Whether an open event stream's reader may still read (lib/server/http/auth/guard.ts). */
  stillAllowed: (request: Request) => boolean;
  /** Whether a request may read pages beyond the dashboard (not the kiosk link). */
  mayRead: (request: Request) => boolean;
  /** The outdoor weather, null when it is off. */
  weather: Weather | null;
  /** The home's time zone. */
  timeZone: string;
  /** The clock (tests inject one). */
  now: () => number;
  /** Alert rules, incidents and channels (lib/server/alerts); without it no alert pages (an app built for one test). */
  alerts?: Alerts;
}

/** Creates the page routes and the static assets they use. */
export function createWeb(deps: WebDeps) {
  const { store, live, stats, assets, respond, enrollment, stillAllowed, mayRead, weather, now, alerts } = deps;
  const zone = createZone(deps.timeZone);
  const models = createModels({ store, live, stats, now, weather, alerts });
  const shellAt = (at: number) => plainShell(assets.urls, at, zone.name);
  return new Elysia({ name: "web" })
    .use(assets.routes)
    .use(createDashboardPages({ live, models, respond, stillAllowed, mayRead, store, shellAt, weather, alerts }))
    .use(createRoomsPages({ store, models, respond }))
    .use(createHistoryPages({ store, models, respond, now, zone }))
    .use(createDevicesPages({ store, models, respond, enrollment, zone }))
    .use(createWeatherApi({ weather, now }))
    .use(alerts ? createAlertsPages({ alerts, store, respond }) : new Elysia());
}
