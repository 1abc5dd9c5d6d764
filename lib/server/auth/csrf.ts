// Cross-site request forgery: a browser sends the session cookie with any
// request to this server, including one a foreign page makes it send. A
// state-changing request that a session authenticates must therefore carry
// the session's CSRF token (htmx sends it as the X-CSRF-Token header, set
// once with hx-headers on <body>; a plain form as the hidden `_csrf` field),
// and when the browser says where it comes from (Origin, else Referer) that
// must be this server itself. A request with an API token (Authorization:
// Bearer) carries no ambient credential and needs neither.

import { timingSafeEqual } from "node:crypto";

/** The header htmx sends the token in. */
export const CSRF_HEADER = "x-csrf-token";
/** The form field plain forms send the token in. */
export const CSRF_FIELD = "_csrf";

/** Whether the token sent matches the session's, in constant time. */
export function csrfMatches(sent: unknown, expected: string): boolean {
  if (typeof sent !== "string") return false;
  const a = Buffer.from(sent);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The origin a request was addressed to, as its browser would write it: `http://192.168.1.10:3000`. */
export function ownOrigin(request: Request): string {
  return new URL(request.url).origin;
}

/**
 * Where a request says it comes from, when that is not this server: the
 * Origin header (or, without one, the Referer's origin), including the
 * opaque "null" of a sandboxed frame or a redirect chain. Null when the
 * request says nothing (curl, some old browsers) or comes from this server.
 */
export function foreignOrigin(request: Request): string | null {
  const origin = request.headers.get("origin");
  const own = ownOrigin(request);
  if (origin !== null) return origin === own ? null : origin;
  const referer = request.headers.get("referer");
  if (referer === null) return null;
  let from: string;
  try {
    from = new URL(referer).origin;
  } catch {
    return referer;
  }
  return from === own ? null : from;
}
