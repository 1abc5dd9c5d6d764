// The JSON API v1, compatible with the earlier server: `{"data": …}` on
// success, `{"error": "message"}` with a 4xx/5xx status otherwise
// (lib/server/http/errors.ts), times as ISO-8601 UTC strings, open to other
// origins (lib/server/http/access.ts). One Elysia instance per area, chained
// here; each route checks its input with its schema, calls the store and
// shapes the JSON (json.ts).

import { Elysia } from "elysia";
import type { Exporter } from "../../history/export.ts";
import type { History } from "../../history/history.ts";
import type { Stats } from "../../history/stats.ts";
import type { Live } from "../../live/live.ts";
import type { Store } from "../../store/store.ts";
import type { TlsInfo } from "../../tls/certificates.ts";
import { createDevicesApi } from "./devices.ts";
import { createEnrollApi } from "./enroll.ts";
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
  /** The certificate served, with the local CA that enrollment hands to sensors; null without TLS. */
  tls?: TlsInfo | null;
}

/** Creates the `/health` and `/api/v1` routes. */
export function createApi({ store, history, stats, exporter, live, broker, ingest, tls }: ApiDeps) {
  return new Elysia({ name: "api" }).use(createHealthApi({ store, broker, ingest })).group("/api/v1", (app) =>
    app
      .use(createDevicesApi({ store }))
      .use(createEnrollApi({ store, tls: tls ?? null }))
      .use(createRoomsApi({ store }))
      .use(createReadingsApi({ store, history, live }))
      .use(createHistoryApi({ store, stats, exporter })),
  );
}
