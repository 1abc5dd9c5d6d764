// Domain errors to HTTP, in one place: each kind has its status.

import type { ErrorKind } from "../../shared/errors.ts";

/** The HTTP status of each domain error kind (a form's bad input is 422 on the pages, see pages/forms). */
export const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
};
