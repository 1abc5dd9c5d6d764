// Who may call what: the API is open to other origins (dashboards and Grafana
// call it from elsewhere), and every write passes one gate.

import { Elysia } from "elysia";

/**
 * The one place every write (POST, PUT, PATCH, DELETE) passes, for the API
 * and the pages alike: authentication will be checked here. Today a home LAN
 * is trusted, as it was with the earlier server.
 */
function authorizeWrite(_request: Request): void {}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** CORS on every answer (a preflight OPTIONS is answered 204 here) and the write gate, before any route. */
export function access() {
  return new Elysia({ name: "access" })
    .onRequest(({ request, set }) => {
      set.headers["access-control-allow-origin"] = "*";
      if (request.method === "OPTIONS") {
        set.headers["access-control-allow-methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
        set.headers["access-control-allow-headers"] = "Content-Type, Authorization";
        return new Response(null, { status: 204, headers: set.headers as Record<string, string> });
      }
      if (WRITES.has(request.method)) authorizeWrite(request);
    })
    .as("global");
}
