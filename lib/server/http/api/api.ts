// The JSON API v1, compatible with the earlier server: `{"data": …}` on
// success, `{"error": "message"}` with a 4xx/5xx status otherwise
// (lib/server/http/errors.ts), times as ISO-8601 UTC strings, open to other
// origins for reads (lib/server/http/auth/headers.ts), behind the guard
// (lib/server/http/auth/guard.ts). One Elysia instance per area, chained
// here; each route checks its input with its schema, calls the store and
// shapes the JSON (json.ts).

import { Elysia } from "elysia";
import type { Alerts } from "../../alerts/alerts.ts";
import type { Exporter } from "../../history/export.ts";
import type { History } from "../../history/history.ts";
import type { Stats } from "../../history/stats.ts";
import type { Live } from "../../live/live.ts";
import type { Store } from "../../store/store.ts";
import { createAlertsApi } from "./alerts.ts";
import { createDevicesApi } from "./devices.ts";
import { createHealthApi, type HealthDeps } from "./health.ts";
import { createHistoryApi } from "./history.ts";
import { createReadingsApi } from "./readings.ts";
import { createRoomsApi } from "./rooms.ts";

/** What the API needs from the rest of the server. */
export interface ApiDeps {
  store: Store;
  history: Pick<History, "chart" | "series">;
  stats: Pick<Stats, "device" | "room">;
  exporter: Exporter;
  /** The live summaries, which hold every device's latest reading. */
  live: Pick<Live, "latest">;
  broker: HealthDeps["broker"];
  ingest: HealthDeps["ingest"];
  /** Alert rules, incidents, channels (without it, no alert routes: an app built for one test). */
  alerts?: Alerts;
  /** The name of who made a request (an acknowledgement records it). */
  callerName?: (request: Request) => string | null;
}

/** Creates the `/health` and `/api/v1` routes. */
export function createApi({ store, history, stats, exporter, live, broker, ingest, alerts, callerName }: ApiDeps) {
  return new Elysia({ name: "api" }).use(createHealthApi({ store, broker, ingest })).group("/api/v1", (app) =>
    app
      .use(createDevicesApi({ store }))
      .use(createRoomsApi({ store }))
      .use(createReadingsApi({ store, history, live }))
      .use(createHistoryApi({ store, stats, exporter }))
      .use(alerts ? createAlertsApi({ alerts, callerName: callerName ?? (() => null) }) : new Elysia()),
  );
}
