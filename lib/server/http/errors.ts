// Errors to HTTP, in one place: each domain error kind has its status, and
// every failure of an API request (a domain error, a query or body that fails
// its schema, JSON that does not parse, an unknown route, a bug) is answered
// here as `{"error": "message"}`. The pages answer domain errors with an
// error page instead (pages/page.ts) and a bad form with the form (422).

import { Elysia } from "elysia";
import { DomainError, type ErrorKind } from "../../shared/errors.ts";
import type { Log } from "../../shared/log.ts";

/** The HTTP status of each domain error kind. */
export const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
};

/** One failed check of a schema, as Elysia lists them. */
interface SchemaError {
  path?: string;
  message?: string;
  schema?: { error?: string };
}

/** Errors from Elysia and from routes, mapped once to `{"error": …}`. */
export function errorHandling(log: Log) {
  return new Elysia({ name: "errors" })
    .error({ DomainError })
    .onError(({ code, error, set, request }) => {
      // Error answers are read from other origins too (lib/server/http/access.ts).
      set.headers["access-control-allow-origin"] = "*";
      if (code === "DomainError") {
        set.status = HTTP_STATUS[error.kind];
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
