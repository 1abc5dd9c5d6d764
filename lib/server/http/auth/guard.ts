// The guard in front of every route, the one place HTTP access is decided:
//
// 1. before routing (onRequest): the security headers and CORS
//    (headers.ts), the Host check against DNS rebinding (421), and who is
//    calling: an API token (Authorization: Bearer tt_…, 401 when it is not a
//    live one) or else the session cookie (sessions.ts);
// 2. after the body is parsed and before it is validated (onTransform), so
//    a refusal never depends on what was sent: the route's level
//    (policy.ts) against the caller, with the CSRF token and Origin check on
//    every state change a session makes.
//
// Refusals are domain errors (401 unauthorized, 403 forbidden), answered as
// JSON on the API and by the pages' own refusal (a sign-in redirect, an
// error page) elsewhere (lib/server/http/errors.ts).

import { Elysia } from "elysia";
import { forbidden, unauthorized } from "../../../shared/errors.ts";
import type { Log } from "../../../shared/log.ts";
import type { Auth } from "../../auth/auth.ts";
import { CSRF_FIELD, CSRF_HEADER, csrfMatches, foreignOrigin } from "../../auth/csrf.ts";
import type { HostCheck } from "../../auth/hosts.ts";
import type { Session } from "../../auth/sessions.ts";
import type { ApiTokenRow } from "../../store/auth.ts";
import { clearSessionCookie, sessionCookie } from "./cookies.ts";
import { corsHeaders, SECURITY_HEADERS } from "./headers.ts";
import { accessOf, type Access } from "./policy.ts";

/** Who is calling. */
export interface Caller {
  kind: "session" | "kiosk" | "token" | "anonymous";
  /** The account's role (a session), or what the token may do as a role (write = owner, read = viewer). */
  role: "owner" | "viewer" | null;
  userId: number | null;
  /** The account's name, or the token's. */
  name: string | null;
  session: Session | null;
  token: ApiTokenRow | null;
  /** The client's address. */
  address: string;
}

/** What a 403 says before the owner exists (the design's wording). */
export const NO_OWNER =
  "no owner account yet: open the setup link printed in the server log (journalctl -u techtemp-server | grep setup)";
/** What a 401 says. */
export const SIGN_IN = "sign in, or send an API token (Authorization: Bearer tt_…)";

/** Paths anyone may fetch under any Host name (nothing there depends on who asks). */
const HOST_FREE = /^\/(?:health$|static\/|manifest\.webmanifest$|favicon\.ico$)/;

/** The client's address as a person reads it (an IPv4 client of a dual-stack socket without its ::ffff: prefix). */
const addressOf = (ip: string | undefined): string => (ip ?? "unknown").replace(/^::ffff:(?=\d+\.)/, "");

/** Creates the guard: its Elysia plugin, and `callerOf` for the routes. */
export function createGuard(deps: { auth: Auth; hosts: HostCheck; corsOrigins: readonly string[]; log: Log }) {
  const { auth, hosts, log } = deps;
  const origins = new Set(deps.corsOrigins);
  const callers = new WeakMap<Request, Caller>();
  /** Requests whose session cookie belongs to no live session (the refusal removes it). */
  const stale = new WeakSet<Request>();
  const loggedAt = new Map<string, number>();

  /** Logs a refusal once per cause and address per 10 minutes. */
  function logRefusal(cause: string, fields: Record<string, unknown>): void {
    const key = `${cause} ${fields.address}`;
    const t = auth.now();
    if (t - (loggedAt.get(key) ?? -Infinity) < 600_000) return;
    if (loggedAt.size > 1000) loggedAt.clear();
    loggedAt.set(key, t);
    log.warn(cause, fields);
  }

  /** Who a request comes from; throws 401 for an API token that is not live. */
  function identify(request: Request, address: string): Caller {
    const anonymous: Caller = { kind: "anonymous", role: null, userId: null, name: null, session: null, token: null, address };
    const authorization = request.headers.get("authorization");
    if (authorization !== null) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!m) throw unauthorized("Authorization: use the form `Bearer tt_…`");
      const token = auth.tokens.authenticate(m[1]!);
      if (token === null) throw unauthorized("Authorization: this API token is not valid or has been revoked");
      const role = token.scope === "write" ? "owner" : "viewer";
      return { ...anonymous, kind: "token", role, name: token.name, token };
    }
    const id = sessionCookie(request);
    if (id === null) return anonymous;
    const session = auth.sessions.resolve(id);
    if (session === null) {
      // Not removed here: an answer that signs in sets the cookie itself, and both would reach the browser.
      stale.add(request);
      return anonymous;
    }
    if (session.kiosk) return { ...anonymous, kind: "kiosk", session };
    return { ...anonymous, kind: "session", role: session.role, userId: session.user_id, name: session.name, session };
  }

  /** The refusal of a caller who is not signed in (403 before any owner exists: nobody could sign in). */
  const notSignedIn = () => (auth.accounts.ownerExists() ? unauthorized(SIGN_IN) : forbidden(NO_OWNER));

  /** A state change by a session: the CSRF token, and the Origin (or Referer) when the browser names one. */
  function checkCsrf(request: Request, caller: Caller, body: unknown): void {
    const from = foreignOrigin(request);
    if (from !== null) {
      logRefusal("cross-origin write refused", { address: caller.address, name: caller.name, origin: from });
      throw forbidden(`cross-origin request refused (from ${from})`);
    }
    const sent =
      request.headers.get(CSRF_HEADER) ??
      (body !== null && typeof body === "object" ? (body as Record<string, unknown>)[CSRF_FIELD] : undefined);
    if (!csrfMatches(sent, caller.session!.csrf)) {
      logRefusal("write without its CSRF token refused", { address: caller.address, name: caller.name });
      throw forbidden("CSRF token missing or wrong: reload the page and try again");
    }
  }

  /** Throws when `caller` may not call a route of level `access`. */
  function enforce(access: Access, caller: Caller, request: Request, body: unknown): void {
    const signedIn = caller.kind === "session";
    switch (access) {
      case "public":
        return;
      case "sign-in": {
        const from = request.method === "GET" ? null : foreignOrigin(request);
        if (from !== null) throw forbidden(`cross-origin sign-in refused (from ${from})`);
        return;
      }
      case "kiosk":
      case "read":
        if (signedIn || caller.kind === "token") return;
        if (caller.kind === "kiosk" && access === "kiosk") return;
        if (!auth.accounts.ownerExists() || auth.switches.get("public_read")) return;
        if (caller.kind === "kiosk") throw forbidden("the kiosk link shows the dashboard only");
        throw unauthorized(SIGN_IN);
      case "account":
        if (signedIn) return;
        throw caller.kind === "anonymous" ? notSignedIn() : forbidden("sign in with an account to see this page");
      case "self":
        if (!signedIn) throw caller.kind === "anonymous" ? notSignedIn() : forbidden("only a signed-in account can do this");
        return checkCsrf(request, caller, body);
      case "owner":
      case "write":
        if (caller.kind === "token") {
          if (caller.token!.scope === "write") return;
          throw forbidden("this API token is read-only (scope read)");
        }
        if (caller.kind === "anonymous") throw notSignedIn();
        if (caller.kind === "kiosk") throw forbidden("the kiosk link can only read the dashboard");
        if (caller.role !== "owner")
          throw forbidden(access === "owner" ? "only the owner may see this" : "viewers can only read");
        if (access === "write") checkCsrf(request, caller, body);
        return;
    }
  }

  const plugin = new Elysia({ name: "guard" })
    .onRequest(({ request, set, server }) => {
      Object.assign(set.headers, SECURITY_HEADERS);
      const url = new URL(request.url);
      const address = addressOf(server?.requestIP(request)?.address);
      // A Bearer token cannot come from a rebinding page (it has none): only cookie and open reads need the name check.
      if (!HOST_FREE.test(url.pathname) && !request.headers.has("authorization")) {
        const host = request.headers.get("host") ?? url.host;
        if (!hosts.allowed(host)) {
          logRefusal("request for a host name not allowed refused (421)", { address, host });
          return new Response(
            `This server does not answer to the name ${JSON.stringify(host)}. Use its address, or add the name to ` +
              `http_allowed_hosts in /etc/techtemp/server.conf (accepted now: IP addresses, ${hosts.names.join(", ")}).\n`,
            { status: 421, headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" } },
          );
        }
      }
      const cors = corsHeaders(request, url.pathname, origins);
      Object.assign(set.headers, cors);
      if (request.method === "OPTIONS")
        return new Response(null, { status: 204, headers: set.headers as Record<string, string> });
      callers.set(request, identify(request, address));
    })
    .onTransform(({ request, route, body }) => {
      enforce(accessOf(request.method, route), callerOf(request), request, body);
    })
    .as("global");

  /** Who made a request (anonymous when the guard has not seen it). */
  function callerOf(request: Request): Caller {
    return (
      callers.get(request) ?? {
        kind: "anonymous",
        role: null,
        userId: null,
        name: null,
        session: null,
        token: null,
        address: "unknown",
      }
    );
  }

  /**
   * Whether the caller of a long request (an event stream) may still call a
   * route of level `access`: asked again while it is open, so signing out
   * everywhere or revoking the kiosk link or a token ends it too.
   */
  function stillAllowed(request: Request, access: Access): boolean {
    try {
      enforce(access, identify(request, callerOf(request).address), request, undefined);
      return true;
    } catch {
      return false;
    }
  }

  /** Headers that remove a request's dead session cookie (for a refusal that sends to the sign-in page). */
  const clearStale = (request: Request): Record<string, string> =>
    stale.has(request) ? { "set-cookie": clearSessionCookie(request) } : {};

  return { plugin, callerOf, clearStale, stillAllowed };
}

/** The guard's interface. */
export type Guard = ReturnType<typeof createGuard>;
