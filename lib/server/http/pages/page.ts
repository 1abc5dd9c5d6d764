// How a page is answered: HTML with a content security policy, never cached,
// gzipped when the client accepts it; a domain error (an unknown room…) as an
// error page with its status; after a plain form post, a redirect (htmx posts
// get the page itself, whose #content htmx swaps in).

import { DomainError } from "../../../shared/errors.ts";
import { compressed } from "../assets.ts";
import { HTTP_STATUS } from "../errors.ts";
import { ErrorPage } from "../../../../views/layout.tsx";
import type { Shell } from "../../../../views/parts.tsx";

// Scripts and styles only from this server: a label that slipped through
// escaping still could not run. Inline styles stay allowed for uPlot.
const CSP =
  "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** What a page route gives back: the page (200), the page with another status, or a response of its own (a redirect). */
export type PageAnswer = JSX.Element | { html: JSX.Element; status: number } | Response;

/** The page with a status other than 200 (400 for a bad chart window, 422 for a bad form). */
export const withStatus = (html: JSX.Element, status: number) => ({ html, status });

/** Whether htmx sent the request (it swaps the answer in; a plain form post is redirected). */
export const isHtmx = (request: Request): boolean => request.headers.get("hx-request") === "true";

/** "See other": where a plain form post lands after a change. */
export const redirect = (location: string): Response => new Response(null, { status: 303, headers: { location } });

/** Runs a page route's handler and answers with its page, its own response, or an error page. */
export type Respond = (request: Request, handler: () => PageAnswer) => Response;

/** Creates the page answers; `shell` gives the error page what every page has. */
export function createResponder(shell: () => Shell): Respond {
  function html(request: Request, body: JSX.Element, status: number): Response {
    return compressed(
      request,
      body as string,
      { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-security-policy": CSP },
      status,
    );
  }

  return (request, handler) => {
    try {
      const answer = handler();
      if (answer instanceof Response) return answer;
      const page = typeof answer === "object" && "status" in answer ? answer : { html: answer, status: 200 };
      return html(request, page.html, page.status);
    } catch (err) {
      // A domain error a person can act on (unknown room, bad link) is a page; a fault goes to the error log.
      if (err instanceof DomainError && HTTP_STATUS[err.kind] < 500) {
        const status = HTTP_STATUS[err.kind];
        return html(request, ErrorPage({ shell: shell(), status, message: err.message }), status);
      }
      throw err;
    }
  };
}
