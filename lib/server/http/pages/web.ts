// The web pages: dashboard, room history, comparison, devices and rooms with
// their forms, and the event stream that pushes each change to open pages.
// One Elysia instance per area, chained here; each route checks its input,
// calls the store, and renders a view (views/*.tsx) of a model (models.ts).
// Writes pass the same gate as the API's (lib/server/http/access.ts).

import { Elysia } from "elysia";
import type { Stats } from "../../history/stats.ts";
import type { Live } from "../../live/live.ts";
import type { Store } from "../../store/store.ts";
import { createAssets } from "../assets.ts";
import { createDashboardPages } from "./dashboard.ts";
import { createDevicesPages } from "./devices.ts";
import { createHistoryPages } from "./history.ts";
import { createModels } from "./models.ts";
import { createResponder } from "./page.ts";
import { createRoomsPages } from "./rooms.ts";

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

/** Creates the page routes and the static assets they use. */
export function createWeb({ store, live, stats, now = store.now }: WebDeps) {
  const assets = createAssets();
  const models = createModels({ store, live, stats, now, assets: assets.urls });
  const respond = createResponder(models.shell);
  return new Elysia({ name: "web" })
    .use(assets.routes)
    .use(createDashboardPages({ live, models, respond }))
    .use(createRoomsPages({ store, models, respond }))
    .use(createHistoryPages({ store, models, respond, now }))
    .use(createDevicesPages({ store, models, respond }));
}
