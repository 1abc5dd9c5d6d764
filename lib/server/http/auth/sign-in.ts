// Signing in and out: the sign-in page (throttled per account and address,
// hashing bounded), the first-start setup of the owner and the password
// reset (both from one-time links), the kiosk link's entry, and signing out.
// A success sets the session cookie (cookies.ts) and redirects.

import { Elysia, t } from "elysia";
import { DomainError } from "../../../shared/errors.ts";
import type { Log } from "../../../shared/log.ts";
import type { Auth } from "../../auth/auth.ts";
import { freshForm, type FormState, type Shell } from "../../../../views/parts.tsx";
import { LoginPage, ResetPage, SetupPage } from "../../../../views/auth.tsx";
import { ErrorPage } from "../../../../views/layout.tsx";
import { hasErrors } from "../pages/forms.ts";
import { redirect, safeNext, withStatus, type PageAnswer, type Respond } from "../pages/page.ts";
import { clearSessionCookie, sessionSetCookie } from "./cookies.ts";
import { loginForm, resetForm, setupForm } from "./forms.ts";
import type { Caller } from "./guard.ts";

/** Notices of the sign-in page after a redirect. */
const LOGIN_NOTICES: Record<string, string> = {
  out: "You are signed out.",
  everywhere: "You are signed out everywhere.",
  password: "Your password was changed: sign in with the new one.",
};

/** A refused form's problem (a domain error about a field) put next to its field; anything else is thrown on. */
export function toField(form: FormState, err: unknown, fallback: string): void {
  if (!(err instanceof DomainError) || (err.kind !== "invalid" && err.kind !== "conflict")) throw err;
  form.errors[err.field ?? fallback] = err.problem;
}

/** The page for a form refused because hashing is busy (503) or the account is throttled (429), else null. */
export function busyOrThrottled(err: unknown, page: () => JSX.Element, form: FormState, field: string): PageAnswer | null {
  if (!(err instanceof DomainError) || (err.kind !== "unavailable" && err.kind !== "too_many")) return null;
  form.errors[field] = err.message;
  const headers: Record<string, string> = err.kind === "too_many" ? { "retry-after": String(err.extra.retry_after_s) } : {};
  return withStatus(page(), err.kind === "too_many" ? 429 : 503, headers);
}

/** Creates /login, /logout, /setup, /reset and /k/:token. */
export function createSignInPages(deps: { auth: Auth; respond: Respond; callerOf: (r: Request) => Caller; log: Log }) {
  const { auth, respond, callerOf, log } = deps;

  /** Signs `userId` in: a new session, its cookie, and on to `next`. */
  const signIn = (request: Request, userId: number, next: string): Response => {
    const { id } = auth.sessions.create(userId);
    return redirect(next, { "set-cookie": sessionSetCookie(request, id, auth.sessions.maxAgeS) });
  };

  const loginPage = (shell: Shell, form: FormState, notice?: string) =>
    LoginPage({ shell, form, ownerExists: auth.accounts.ownerExists(), notice });

  /** The two new passwords typed alike. */
  const sameTwice = (form: FormState) => {
    if (!form.errors.password && form.values.password !== form.values.password2)
      form.errors.password2 = "does not match the password";
  };

  return new Elysia()
    .get(
      "/login",
      ({ request, query }) =>
        respond(request, (shell) => {
          if (callerOf(request).kind === "session") return redirect(safeNext(query.next));
          return loginPage(shell, freshForm({ name: "", next: safeNext(query.next) }), LOGIN_NOTICES[query.done ?? ""]);
        }),
      { query: t.Object({ next: t.Optional(t.String()), done: t.Optional(t.String()) }) },
    )
    .post("/login", ({ request, body }) =>
      respond(request, async (shell) => {
        const { form, ...checked } = loginForm.read(body);
        form.values.next = safeNext(form.values.next);
        if (!checked.ok) return withStatus(loginPage(shell, form), 422);
        const { name, password } = checked.data;
        const attempt = { name, address: callerOf(request).address };
        try {
          // Refused before any hashing: a throttled account costs the server nothing.
          auth.throttle.check(attempt);
          const user = auth.users.byName(name) ?? null;
          if (await auth.passwords.verify(password, user?.password_hash ?? null, attempt)) {
            log.info("signed in", { name: user!.name, address: attempt.address });
            return signIn(request, user!.id, form.values.next);
          }
        } catch (err) {
          const refused = busyOrThrottled(err, () => loginPage(shell, form), form, "password");
          if (refused) return refused;
          throw err;
        }
        auth.throttle.fail(attempt);
        // Which of the two is wrong is not said: that would tell which names exist.
        form.errors.password = "the name or the password is wrong";
        return withStatus(loginPage(shell, form), 401);
      }),
    )
    .post("/logout", ({ request }) => {
      const session = callerOf(request).session;
      if (session) auth.sessions.destroy(session.id);
      return redirect("/login?done=out", { "set-cookie": clearSessionCookie(request) });
    })
    .get("/setup", ({ request }) =>
      respond(request, (shell) =>
        SetupPage({ shell, form: freshForm({ token: "", name: "" }), done: auth.accounts.ownerExists() }),
      ),
    )
    .post("/setup", ({ request, body }) =>
      respond(request, async (shell) => {
        const { form, ...checked } = setupForm.read(body);
        sameTwice(form);
        const page = () => SetupPage({ shell, form, done: auth.accounts.ownerExists() });
        if (checked.ok && !hasErrors(form)) {
          const { token, name, password } = checked.data;
          const client = { name, address: callerOf(request).address };
          try {
            const id = await auth.accounts.completeSetup(token, name, password, client);
            log.info("owner account created", client);
            return signIn(request, id, "/");
          } catch (err) {
            const refused = busyOrThrottled(err, page, form, "password");
            if (refused) return refused;
            toField(form, err, "token");
          }
        }
        return withStatus(page(), 422);
      }),
    )
    .get("/reset", ({ request }) => respond(request, (shell) => ResetPage({ shell, form: freshForm({ token: "" }) })))
    .post("/reset", ({ request, body }) =>
      respond(request, async (shell) => {
        const { form, ...checked } = resetForm.read(body);
        sameTwice(form);
        const page = () => ResetPage({ shell, form });
        if (checked.ok && !hasErrors(form)) {
          try {
            const user = await auth.accounts.completeReset(checked.data.token, checked.data.password, {
              address: callerOf(request).address,
            });
            // A reset is the way back in when an attacker keeps the account throttled.
            auth.throttle.clearAccount(user.name);
            log.info("password reset with a link from the server", { name: user.name, address: callerOf(request).address });
            return signIn(request, user.id, "/account");
          } catch (err) {
            const refused = busyOrThrottled(err, page, form, "password");
            if (refused) return refused;
            toField(form, err, "token");
          }
        }
        return withStatus(page(), 422);
      }),
    )
    .get("/k/:token", ({ request, params }) =>
      respond(request, (shell) => {
        const session = auth.kiosk.enter(params.token);
        if (session === null) {
          const message = "This kiosk link is not valid (any more): ask the owner for the new one.";
          return withStatus(ErrorPage({ shell, status: 404, message }), 404);
        }
        return redirect("/", { "set-cookie": sessionSetCookie(request, session.id, auth.sessions.maxAgeS) });
      }),
    );
}
