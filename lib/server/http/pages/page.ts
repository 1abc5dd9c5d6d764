// How a page is answered: HTML, never cached, gzipped when the client accepts
// it (the security headers, CSP included, are the guard's: every answer has
// them); a domain error (an unknown room…) as an error page with its status;
// after a plain form post, a redirect (htmx posts get the page itself, whose
// #content htmx swaps in). The guard's refusals on a page's path become a
// sign-in redirect or an error page here (`refusal`).

import { DomainError } from "../../../shared/errors.ts";
import { compressed } from "../assets.ts";
import { HTTP_STATUS } from "../errors.ts";
import { ErrorPage } from "../../../../views/layout.tsx";
import type { Shell } from "../../../../views/parts.tsx";

/** What a page route gives back: the page (200), the page with another status, or a response of its own (a redirect). */
export type PageAnswer = JSX.Element | { html: JSX.Element; status: number; headers?: Record<string, string> } | Response;

/** The page with a status other than 200 (400 for a bad chart window, 422 for a bad form), and headers of its own. */
export const withStatus = (html: JSX.Element, status: number, headers?: Record<string, string>) => ({ html, status, headers });

/** Whether htmx sent the request (it swaps the answer in; a plain form post is redirected). */
export const isHtmx = (request: Request): boolean => request.headers.get("hx-request") === "true";

/** "See other": where a plain form post lands after a change; `headers` may set a cookie. */
export const redirect = (location: string, headers: Record<string, string> = {}): Response =>
  new Response(null, { status: 303, headers: { location, ...headers } });

/** Runs a page route's handler (given the request's shell) and answers with its page, its own response, or an error page. */
export interface Respond {
  (request: Request, handler: (shell: Shell) => PageAnswer): Response;
  (request: Request, handler: (shell: Shell) => Promise<PageAnswer>): Promise<Response>;
}

/** A local path to go back to after signing in (never another site: `//evil` and `/\evil` are refused). */
export function safeNext(next: string | undefined | null): string {
  return typeof next === "string" && /^\/(?![/\\])[^\s]*$/.test(next) ? next : "/";
}

/** Creates the page answers; `shellFor` gives each request's shell (who is looking, the banners). */
export function createResponder(
  shellFor: (request: Request) => Shell,
  options: { clearStale?: (request: Request) => Record<string, string> } = {},
) {
  const clearStale = options.clearStale ?? ((): Record<string, string> => ({}));
  function html(request: Request, body: JSX.Element, status: number, headers: Record<string, string> = {}): Response {
    return compressed(
      request,
      body as string,
      { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...headers },
      status,
    );
  }

  function errorPage(request: Request, err: DomainError): Response {
    const status = HTTP_STATUS[err.kind];
    const headers: Record<string, string> = err.kind === "too_many" ? { "retry-after": String(err.extra.retry_after_s) } : {};
    return html(request, ErrorPage({ shell: shellFor(request), status, message: err.message }), status, headers);
  }

  function answer(request: Request, result: PageAnswer): Response {
    if (result instanceof Response) return result;
    const page = typeof result === "object" && "status" in result ? result : { html: result, status: 200, headers: undefined };
    return html(request, page.html, page.status, page.headers);
  }

  function failed(request: Request, err: unknown): Response {
    // A domain error a person can act on (unknown room, bad link) is a page; a fault goes to the error log.
    if (err instanceof DomainError && HTTP_STATUS[err.kind] < 500) return errorPage(request, err);
    throw err;
  }

  const respond = ((request: Request, handler: (shell: Shell) => PageAnswer | Promise<PageAnswer>) => {
    try {
      const result = handler(shellFor(request));
      if (result instanceof Promise) return result.then((r) => answer(request, r)).catch((err) => failed(request, err));
      return answer(request, result);
    } catch (err) {
      return failed(request, err);
    }
  }) as Respond;

  /**
   * The guard's refusal of a page: not signed in, a page is redirected to
   * the sign-in page and back (htmx is told to go there itself); anything
   * else is an error page with the status and what to do.
   */
  function refusal(request: Request, err: DomainError): Response {
    const url = new URL(request.url);
    if (err.kind === "unauthorized" && (request.method === "GET" || request.method === "HEAD") && url.pathname !== "/events") {
      const next = `/login?next=${encodeURIComponent(safeNext(url.pathname + url.search))}`;
      if (isHtmx(request)) return new Response(null, { status: 401, headers: { "hx-redirect": next, ...clearStale(request) } });
      return redirect(next, clearStale(request));
    }
    if (err.kind === "unauthorized" && isHtmx(request)) {
      const from = new URL(request.headers.get("hx-current-url") ?? "/", url);
      const next = `/login?next=${encodeURIComponent(safeNext(from.pathname))}`;
      return new Response(null, { status: 401, headers: { "hx-redirect": next, ...clearStale(request) } });
    }
    const answer = errorPage(request, err);
    // A dead session cookie goes with a refusal that asks to sign in.
    if (err.kind === "unauthorized") for (const [k, v] of Object.entries(clearStale(request))) answer.headers.append(k, v);
    return answer;
  }

  return { respond, refusal, html };
}
