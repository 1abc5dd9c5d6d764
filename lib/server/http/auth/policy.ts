// Who may call each route, in one table: every route of the app has a level
// (test/auth-matrix.test.ts walks the app's routes against it). A route not
// named here is a read when it is a GET and a write otherwise, so a new write
// route is the owner's until someone decides otherwise.

/**
 * - `public`: anyone (static files, /health, the enrollment endpoint whose token is its credential).
 * - `sign-in`: anyone, but a POST from a foreign origin is refused (login CSRF).
 * - `kiosk`: a read the kiosk link's session may do too (the dashboard and its live updates).
 * - `read`: a signed-in account or an API token; anyone before the owner exists or while `public_read` is on.
 * - `account`: a signed-in account, whatever its role (its own account page).
 * - `self`: a write on one's own session or account (sign out, own password): a signed-in account, with CSRF.
 * - `owner`: a read of the owner's (accounts, tokens, security): the owner's session or a write token.
 * - `write`: the owner's session with CSRF, or a write token.
 */
export type Access = "public" | "sign-in" | "kiosk" | "read" | "account" | "self" | "owner" | "write";

/** The levels a request changes state at (CSRF applies to their sessions). */
export const STATE_CHANGING: ReadonlySet<Access> = new Set(["self", "write"]);

const TABLE: Record<string, Access> = {
  "GET /health": "public",
  "GET /static/*": "public",
  "GET /manifest.webmanifest": "public",
  "GET /favicon.ico": "public",
  "POST /api/v1/enroll": "public",
  "GET /api/v1/me": "public",
  // MQTT over WebSockets: the CONNECT's login is the credential (lib/server/http/mqtt-ws.ts).
  "GET /mqtt": "public",

  "GET /login": "sign-in",
  "POST /login": "sign-in",
  "GET /setup": "sign-in",
  "POST /setup": "sign-in",
  "GET /reset": "sign-in",
  "POST /reset": "sign-in",
  "GET /k/:token": "sign-in",

  "GET /": "kiosk",
  "GET /events": "kiosk",

  "GET /account": "account",
  "POST /logout": "self",
  "POST /account/password": "self",
  "POST /account/sign-out-everywhere": "self",

  "GET /users": "owner",
  "GET /tokens": "owner",
  "GET /security": "owner",
  "GET /api/v1/tokens": "owner",
  "GET /api/v1/enrollment-tokens": "owner",
  // Where alerts go (ntfy topics, webhook and mail addresses) is the owner's to see (issue 12).
  "GET /alerts/channels": "owner",
  "GET /api/v1/alerts/channels": "owner",
  "GET /api/v1/alerts/channels/:id": "owner",
  // A backup is the whole database (accounts, token hashes): the owner's (issue 13).
  "GET /backups": "owner",
  "GET /backups/files/:name": "owner",
  "GET /api/v1/backups": "owner",
  // Withdrawing a sensor's MQTT secret (install.sh uninstall --unregister): a write token's or the owner's, as a new one is.
  "DELETE /api/v1/devices/:uid/mqtt-password": "write",
};

/** The level of a route (Elysia's route pattern, e.g. `/api/v1/devices/:uid`). */
export function accessOf(method: string, route: string): Access {
  const m = method === "HEAD" ? "GET" : method;
  // Elysia writes a prefixed instance's root route with a final slash (`/api/v1/devices/`).
  const path = route.length > 1 ? route.replace(/\/$/, "") : route;
  return TABLE[`${m} ${path}`] ?? (m === "GET" ? "read" : "write");
}
