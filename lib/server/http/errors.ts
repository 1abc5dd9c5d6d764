// Errors to HTTP, in one place: each domain error kind has its status, and
// every failure of an API request (a domain error, a query or body that fails
// its schema, JSON that does not parse, an unknown route, a bug) is answered
// here as `{"error": "message"}`. The pages answer domain errors with an
// error page instead (pages/page.ts) and a bad form with the form (422); a
// refusal of the guard (401, 403, 429) on a page's path is answered by the
// pages' own `refusal` (a sign-in redirect or an error page).

import { Elysia } from "elysia";
import { DomainError, type ErrorKind } from "../../shared/errors.ts";
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

/** Errors from Elysia and from routes, mapped once to `{"error": …}`. */
export function errorHandling(log: Log, pages?: { refusal: PageRefusal }) {
  return new Elysia({ name: "errors" })
    .error({ DomainError })
    .onError(({ code, error, set, request }) => {
      if (code === "DomainError") {
        if (pages && !isApiPath(new URL(request.url).pathname)) return pages.refusal(request, error);
        set.status = HTTP_STATUS[error.kind];
        // How to authenticate (RFC 6750), and when to try again (login throttling).
        if (error.kind === "unauthorized") set.headers["www-authenticate"] = 'Bearer realm="techtemp"';
        if (error.kind === "too_many") set.headers["retry-after"] = String(error.extra.retry_after_s);
        return { error: error.message, ...error.extra };
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
