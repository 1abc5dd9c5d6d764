// The session cookie: `techtemp_session` over plain HTTP, and
// `__Host-techtemp_session` with `Secure` when the request came over HTTPS
// (the prefix makes the browser refuse it unless it is Secure, for Path=/
// and from this very host, so a plain-HTTP page on the LAN cannot plant
// one). HttpOnly (no script reads it) and SameSite=Lax (no cross-site
// POST carries it); CSRF tokens and the Origin check do the rest.

/** The cookie's name over plain HTTP. */
export const SESSION_COOKIE = "techtemp_session";
/** The cookie's name over HTTPS. */
export const SECURE_SESSION_COOKIE = "__Host-techtemp_session";

/** Whether the request came over HTTPS (its listener is a TLS one). */
export const overHttps = (request: Request): boolean => new URL(request.url).protocol === "https:";

/** The session cookie's name for this request's scheme. */
export const cookieName = (request: Request): string => (overHttps(request) ? SECURE_SESSION_COOKIE : SESSION_COOKIE);

/** A cookie of the request by name, or null. */
export function readCookie(request: Request, name: string): string | null {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The session id the request carries (only the cookie of its own scheme counts). */
export const sessionCookie = (request: Request): string | null => readCookie(request, cookieName(request));

/** `Set-Cookie` for a new session living `maxAgeS` seconds (the absolute expiry; idle expiry is the server's). */
export function sessionSetCookie(request: Request, id: string, maxAgeS: number): string {
  const secure = overHttps(request) ? "; Secure" : "";
  return `${cookieName(request)}=${id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeS}${secure}`;
}

/** `Set-Cookie` that removes the session cookie. */
export function clearSessionCookie(request: Request): string {
  const secure = overHttps(request) ? "; Secure" : "";
  return `${cookieName(request)}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure}`;
}
