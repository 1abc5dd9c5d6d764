// The server's HTTP side as one Elysia app: the write gate and CORS
// (access.ts), errors mapped once (errors.ts), the JSON API (api/) and the
// pages with their assets (pages/).

import { Elysia } from "elysia";
import type { Log } from "../../shared/log.ts";
import type { Live } from "../live/live.ts";
import { access } from "./access.ts";
import { createApi, type ApiDeps } from "./api/api.ts";
import { errorHandling } from "./errors.ts";
import { createWeb } from "./pages/web.ts";

/** What the HTTP side needs from the rest of the server. */
export interface HttpDeps extends ApiDeps {
  live: Pick<Live, "latest" | "summary" | "version" | "onChange">;
  log: Log;
  /** The pages' clock (tests inject one); defaults to the store's. */
  now?: () => number;
}

/** Creates the HTTP app; `listen` is the caller's. */
export function createHttp(deps: HttpDeps) {
  return new Elysia()
    .use(errorHandling(deps.log))
    .use(access())
    .use(createApi(deps))
    .use(createWeb({ store: deps.store, live: deps.live, stats: deps.stats, now: deps.now }));
}
