// The errors a request can end in, each with its HTTP status (ntfy's errors.go).
// Routes throw these; one onError handler in lib/api.ts turns them into
// `{"error": "message"}` with the status.

/** An error meant for the person who sent the request. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra fields of the error body, e.g. `{ device_uid }` on a 409. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** 400: the message names the field and says what is wrong with it. */
export const badRequest = (field: string, problem: string) => new AppError(400, `${field}: ${problem}`);
/** 404: `device "x" not found`. */
export const notFound = (what: string, id: string) => new AppError(404, `${what} ${JSON.stringify(id)} not found`);
/** 409: the thing exists already, or is still in use. */
export const conflict = (message: string) => new AppError(409, message);
/** 503: the server cannot do it now (database or broker down). */
export const unavailable = (message: string) => new AppError(503, message);

/** Wraps a low-level error with what was being done: `open database /x.db: disk I/O error`. */
export function wrap(doing: string, err: unknown): Error {
  const e = new Error(`${doing}: ${err instanceof Error ? err.message : String(err)}`);
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}
