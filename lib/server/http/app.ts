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
import type { Config } from "../config.ts";
import type { Live } from "../live/live.ts";
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
  settings: Pick<Config, "http_allowed_hosts" | "cors_origins">;
  /** This machine's hostname (tests pin it); default os.hostname(). */
  hostname?: string;
  /** The HTTPS certificate, when TLS is on (its expiry is shown on the pages; its CA goes to enrolling sensors). */
  tls?: TlsInfo | null;
  /** The pages' clock (tests inject one); defaults to the store's. */
  now?: () => number;
}

const list = (value: string): string[] => value.split(",").filter(Boolean);

/** Creates the HTTP app; `listen` is the caller's. */
export function createHttp(deps: HttpDeps) {
  const now = deps.now ?? deps.store.now;
  const { auth } = deps;
  const hosts = createHostCheck({ hostname: deps.hostname ?? hostname(), extra: list(deps.settings.http_allowed_hosts) });
  const guard = createGuard({ auth, hosts, corsOrigins: list(deps.settings.cors_origins), log: deps.log });
  const assets = createAssets();
  const shellFor = createShells({ assets: assets.urls, now, auth, callerOf: guard.callerOf, tls: deps.tls });
  const pages = createResponder(shellFor, { clearStale: guard.clearStale });
  const { respond } = pages;
  const callerOf = guard.callerOf;
  return new Elysia()
    .use(errorHandling(deps.log, { refusal: pages.refusal }))
    .use(guard.plugin)
    .use(createApi(deps))
    .use(createAuthApi({ auth, callerOf, tls: deps.tls }))
    .use(
      createWeb({
        ...deps,
        assets,
        respond,
        enrollment: auth.enrollment,
        stillAllowed: (request) => guard.stillAllowed(request, "kiosk"),
        now,
      }),
    )
    .use(createSignInPages({ auth, respond, callerOf, log: deps.log }))
    .use(createAccountPages({ auth, respond, callerOf }))
    .use(createSecurityPages({ auth, respond, callerOf }))
    .use(createMqttWebSocket(deps.mqttWs ?? createMqttWsBridge(deps.broker)));
}
