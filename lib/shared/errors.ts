// Domain errors: what went wrong, as a kind and (for bad input) the field,
// with a message a person can act on (ntfy's errors.go). The store and the
// request parsers throw these; they know nothing of HTTP. The server's HTTP
// layer turns each kind into a status in one place (lib/server/http/errors.ts).

/** What kind of failure: decides the HTTP status, never the wording. */
export type ErrorKind = "invalid" | "not_found" | "conflict" | "unauthorized" | "forbidden" | "too_many" | "unavailable";

/** An error meant for the person who sent the input. */
export class DomainError extends Error {
  constructor(
    /** Not `code`: Elysia takes an error's `code` property as its own error code. */
    readonly kind: ErrorKind,
    message: string,
    /** The input field at fault (`room_name`, `moved_at`…), for forms that show the message beside it. */
    readonly field: string | null = null,
    /** Extra fields of the error body, e.g. `{ device_uid }` on a conflict. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
  /** The message without its `field: ` prefix, for display next to the field. */
  get problem(): string {
    return this.field !== null && this.message.startsWith(`${this.field}: `)
      ? this.message.slice(this.field.length + 2)
      : this.message;
  }
}

/** Bad input: the message names the field and says what is wrong with it (`moved_at: must not be in the future`). */
export const invalid = (field: string, problem: string) => new DomainError("invalid", `${field}: ${problem}`, field);
/** `device "x" not found`. */
export const notFound = (what: string, id: string) => new DomainError("not_found", `${what} ${JSON.stringify(id)} not found`);
/** The thing exists already, or is still in use. */
export const conflict = (message: string, extra: Record<string, unknown> = {}) =>
  new DomainError("conflict", message, null, extra);
/** Who is asking is not known: no session, no token, or one that is not valid (any more). */
export const unauthorized = (message: string) => new DomainError("unauthorized", message);
/** Who is asking is known but may not do this (a viewer writing, a write without its CSRF token). */
export const forbidden = (message: string) => new DomainError("forbidden", message);
/** Too many attempts: try again in `retryAfterS` seconds (login throttling). */
export const tooMany = (message: string, retryAfterS: number) =>
  new DomainError("too_many", message, null, { retry_after_s: retryAfterS });
/** It cannot be done now (database or broker down). */
export const unavailable = (message: string) => new DomainError("unavailable", message);

/** Wraps a low-level error with what was being done: `open database /x.db: disk I/O error`. */
export function wrap(doing: string, err: unknown): Error {
  const e = new Error(`${doing}: ${err instanceof Error ? err.message : String(err)}`);
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}
