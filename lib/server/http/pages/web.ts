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
  /** The clock (tests inject one). */
  now: () => number;
  /** Alert rules, incidents and channels (lib/server/alerts); without it no alert pages (an app built for one test). */
  alerts?: Alerts;
}

/** Creates the page routes and the static assets they use. */
export function createWeb({ store, live, stats, assets, respond, enrollment, stillAllowed, now, alerts }: WebDeps) {
  const models = createModels({ store, live, stats, now, alerts });
  return new Elysia({ name: "web" })
    .use(assets.routes)
    .use(createDashboardPages({ live, models, respond, stillAllowed, alerts }))
    .use(createRoomsPages({ store, models, respond }))
    .use(createHistoryPages({ store, models, respond, now }))
    .use(createDevicesPages({ store, models, respond, enrollment }))
    .use(alerts ? createAlertsPages({ alerts, store, respond }) : new Elysia());
}
