// The server's HTTP side as one Elysia app: errors mapped once (errors.ts),
// the guard in front of every route (auth/guard.ts: security headers, CORS,
// the Host check, who is calling, and whether they may), the JSON API (api/
// and auth/api.ts), the pages with their assets (pages/), and the sign-in,
// account and security pages (auth/).

import { hostname } from "node:os";
import { Elysia } from "elysia";
import type { Log } from "../../shared/log.ts";
import type { Auth } from "../auth/auth.ts";
import { createHostCheck } from "../auth/hosts.ts";
import { defaults, type Config } from "../config.ts";
import type { Live } from "../live/live.ts";
import type { Weather } from "../weather/weather.ts";
import { createApi, type ApiDeps } from "./api/api.ts";
import { createAssets } from "./assets.ts";
import { createAccountPages } from "./auth/accounts.ts";
import { createAuthApi } from "./auth/api.ts";
import { createGuard } from "./auth/guard.ts";
import { createSecurityPages } from "./auth/security.ts";
import { createShells, type TlsInfo } from "./auth/shell.ts";
import { createSignInPages } from "./auth/sign-in.ts";
import { errorHandling } from "./errors.ts";
import { createResponder } from "./pages/page.ts";
import { createWeb } from "./pages/web.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { createMetricsApi } from "./api/metrics.ts";
import { createOpenApi, type RouteInfo } from "./openapi.ts";
import type { Backups } from "../backup/backups.ts";
import { createBackupPages } from "./pages/backups.ts";
import { createMqttWebSocket, createMqttWsBridge, type MqttWsBridge } from "./mqtt-ws.ts";
import type { Broker } from "../mqtt/broker.ts";

/** What the HTTP side needs from the rest of the server. */
export interface HttpDeps extends ApiDeps {
  /** The broker: its counters for the API, and MQTT over WebSockets on /mqtt (mqtt-ws.ts). */
  broker: ApiDeps["broker"] & Pick<Broker, "handleStream">;
  /** The WebSocket bridge to the broker, when the caller serves it on another listener too (server.ts); else one is made. */
  mqttWs?: MqttWsBridge;
  live: Pick<Live, "latest" | "summary" | "version" | "onChange">;
  log: Log;
  /** Who may do what (lib/server/auth/auth.ts). */
  auth: Auth;
  /** The Host names the pages answer to beside IP addresses and this machine's names, and the origins that may write. */
  settings: Pick<Config, "http_allowed_hosts" | "cors_origins" | "home_timezone">;
  /** The outdoor weather (lib/server/weather), null when no place is set. */
  weather?: Weather | null;
  /** This machine's hostname (tests pin it); default os.hostname(). */
  hostname?: string;
  /** The HTTPS certificate, when TLS is on (its expiry is shown on the pages; its CA goes to enrolling sensors). */
  tls?: TlsInfo | null;
  /** The pages' clock (tests inject one); defaults to the store's. */
  now?: () => number;
  /** /metrics (lib/server/metrics); without it, no such route (tests that build the app alone). */
  metrics?: Pick<Metrics, "text">;
  /** The backups page and API (lib/server/backup); without it, no such routes. */
  backups?: Backups;
}

const list = (value: string): string[] => value.split(",").filter(Boolean);

/** Creates the HTTP app; `listen` is the caller's. */
export function createHttp(deps: HttpDeps) {
  const now = deps.now ?? deps.store.now;
  const { auth } = deps;
  const hosts = createHostCheck({ hostname: deps.hostname ?? hostname(), extra: list(deps.settings.http_allowed_hosts) });
  const guard = createGuard({ auth, hosts, corsOrigins: list(deps.settings.cors_origins), log: deps.log });
  const assets = createAssets();
  const backupWarning = deps.backups ? () => deps.backups!.warning() : undefined;
  const shellFor = createShells({
    assets: assets.urls,
    now,
    auth,
    callerOf: guard.callerOf,
    tls: deps.tls,
    timeZone: deps.settings.home_timezone,
    backupWarning,
  });
  const pages = createResponder(shellFor, { clearStale: guard.clearStale });
  const { respond } = pages;
  const callerOf = guard.callerOf;
  // The finished app's routes, for the OpenAPI document (set once the app is built).
  let routesOf: () => RouteInfo[] = () => [];
  const app = new Elysia()
    .use(errorHandling(deps.log, { refusal: pages.refusal }))
    .use(guard.plugin)
    .use(createApi({ ...deps, callerName: (request) => callerOf(request).name }))
    .use(deps.metrics ? createMetricsApi({ metrics: deps.metrics }) : new Elysia())
    .use(createAuthApi({ auth, callerOf, tls: deps.tls }))
    .use(
      createWeb({
        ...deps,
        assets,
        respond,
        enrollment: auth.enrollment,
        stillAllowed: (request) => guard.stillAllowed(request, "kiosk"),
        mayRead: (request) => guard.stillAllowed(request, "read"),
        weather: deps.weather ?? null,
        timeZone: deps.settings.home_timezone,
        now,
      }),
    )
    .use(createSignInPages({ auth, respond, callerOf, log: deps.log }))
    .use(createAccountPages({ auth, respond, callerOf }))
    .use(createSecurityPages({ auth, respond, callerOf }))
    .use(deps.backups ? createBackupPages({ backups: deps.backups, records: deps.store.backups, respond }) : new Elysia())
    .use(
      createMqttWebSocket(
        deps.mqttWs ??
          createMqttWsBridge(deps.broker, {
            maxPacketBytes: defaults.mqtt_max_packet_bytes,
            maxOutgoingBytes: defaults.mqtt_max_outgoing_bytes,
            log: deps.log,
          }),
      ),
    )
    // Last: it documents the routes of the whole app, asked at each request.
    .use(createOpenApi({ routes: () => routesOf(), respond }));
  routesOf = () => app.routes as unknown as RouteInfo[];
  return app;
}
