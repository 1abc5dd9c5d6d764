// Errors to HTTP, in one place: each domain error kind has its status, and
// every failure of an API request (a domain error, a query or body that fails
// its schema, JSON that does not parse, an unknown route, a bug) is answered
// here as `{"error": "message"}`. The pages answer domain errors with an
// error page instead (pages/page.ts) and a bad form with the form (422); a
// refusal of the guard (401, 403, 429) on a page's path is answered by the
// pages' own `refusal` (a sign-in redirect or an error page).

import { Elysia } from "elysia";
import { DomainError, unavailable, type ErrorKind } from "../../shared/errors.ts";
import type { Log } from "../../shared/log.ts";

/** The HTTP status of each domain error kind. */
export const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  too_many: 429,
  unavailable: 503,
};

/** A page's answer to a domain error the guard or a route threw on a page's path (not /api, not /health). */
export type PageRefusal = (request: Request, error: DomainError) => Response;

/** Whether a path is the JSON API's (errors as JSON) rather than a page's. */
export const isApiPath = (path: string): boolean =>
  path.startsWith("/api/") || path === "/health" || path === "/metrics" || path === "/openapi.json";

/** One failed check of a schema, as Elysia lists them. */
interface SchemaError {
  path?: string;
  message?: string;
  schema?: { error?: string };
}

/**
 * A database that cannot write (disk full, I/O error) as a 503 a person can
 * act on, or null for any other error. SQLite's errors carry their code
 * (`SQLITE_FULL`, `SQLITE_IOERR_WRITE`…); nothing was changed by the request.
 */
export function storageFailure(err: unknown): DomainError | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return null;
  if (code.startsWith("SQLITE_FULL"))
    return unavailable(
      "the server's disk is full, so nothing was saved: free space on the server (its data directory) and try again",
    );
  if (code.startsWith("SQLITE_IOERR"))
    return unavailable("the server's database could not write (I/O error), so nothing was saved: check its disk, then try again");
  return null;
}

/** Errors from Elysia and from routes, mapped once to `{"error": …}`. */
export function errorHandling(log: Log, pages?: { refusal: PageRefusal }) {
  return new Elysia({ name: "errors" })
    .error({ DomainError })
    .onError(({ code, error, set, request }) => {
      // A full disk is said as such (503), not as a fault (500); it is logged once per request like a fault.
      const storage = storageFailure(error);
      if (storage)
        log.error("request failed: the database cannot write", {
          method: request.method,
          url: request.url,
          error: error as Error,
        });
      if (code === "DomainError" || storage) {
        const domain = storage ?? (error as DomainError);
        if (pages && !isApiPath(new URL(request.url).pathname)) return pages.refusal(request, domain);
        set.status = HTTP_STATUS[domain.kind];
        // How to authenticate (RFC 6750), and when to try again (login throttling).
        if (domain.kind === "unauthorized") set.headers["www-authenticate"] = 'Bearer realm="techtemp"';
        if (domain.kind === "too_many") set.headers["retry-after"] = String(domain.extra.retry_after_s);
        return { error: domain.message, ...domain.extra };
      }
      if (code === "VALIDATION") {
        // The schema's own message names the field; without one, the path does.
        set.status = 400;
        const first = error.all[0] as SchemaError | undefined;
        const field = first?.path?.replace(/^\//, "").replace(/\//g, ".") || "body";
        return { error: first?.schema?.error ?? `${field}: ${first?.message ?? "is not valid"}` };
      }
      if (code === "PARSE") {
        set.status = 400;
        return { error: "body: is not valid JSON" };
      }
      if (code === "NOT_FOUND") {
        set.status = 404;
        return { error: `no route ${request.method} ${new URL(request.url).pathname}` };
      }
      log.error("request failed", { method: request.method, url: request.url, error: error as Error });
      set.status = 500;
      return { error: "internal error; the server log has the details" };
    })
    .as("global");
}
