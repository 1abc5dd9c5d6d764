// Headers every answer carries, and who may read the API from another
// origin.
//
// Security headers (on every response, pages and API alike): a Content
// Security Policy without inline script or style (a label that slipped
// through escaping could not run, and no page may frame ours), nosniff,
// Referrer-Policy same-origin (a page's URL never leaves for another site),
// X-Frame-Options for browsers without frame-ancestors.
//
// CORS: reads of the API (GET /api/…, /health) answer
// `Access-Control-Allow-Origin: *` without credentials, so a dashboard
// elsewhere reads with its own API token and no page elsewhere can use a
// visitor's session. Writes are open only to the origins of `cors_origins`
// (with an API token, never a cookie: no Allow-Credentials).

import { isApiPath } from "../errors.ts";

/** The pages' Content Security Policy: everything from this server only, no inline script or style, no framing. */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/** The headers of every answer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

const READS = new Set(["GET", "HEAD"]);
const WRITES = "POST, PUT, PATCH, DELETE";

/**
 * The CORS headers of an answer to `request`, and for a preflight (OPTIONS)
 * whether to answer it at once. Only the API and /health take part.
 */
export function corsHeaders(request: Request, path: string, origins: ReadonlySet<string>): Record<string, string> {
  if (!isApiPath(path)) return {};
  const origin = request.headers.get("origin");
  const trusted = origin !== null && origins.has(origin);
  if (request.method === "OPTIONS") {
    // Which method the browser wants to send decides what it is told.
    const wanted = (request.headers.get("access-control-request-method") ?? "GET").toUpperCase();
    if (!READS.has(wanted) && !trusted) return { "access-control-allow-methods": "GET, HEAD, OPTIONS" };
    return {
      "access-control-allow-origin": trusted ? origin : "*",
      "access-control-allow-methods": trusted ? `GET, HEAD, OPTIONS, ${WRITES}` : "GET, HEAD, OPTIONS",
      "access-control-allow-headers": "Authorization, Content-Type",
      "access-control-max-age": "600",
      ...(trusted ? { vary: "Origin" } : {}),
    };
  }
  if (READS.has(request.method)) return { "access-control-allow-origin": "*" };
  return trusted ? { "access-control-allow-origin": origin, vary: "Origin" } : {};
}
