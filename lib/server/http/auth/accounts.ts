// Accounts on the pages: one's own (change the password, sign out
// everywhere) and the owner's list of the household's accounts (add a viewer,
// set an account's password, delete one). Who may open each is the guard's
// (policy.ts: /account for any signed-in account, /users for the owner).

import { Elysia, t } from "elysia";
import { forbidden, unauthorized } from "../../../shared/errors.ts";
import type { Auth } from "../../auth/auth.ts";
import type { User } from "../../store/auth.ts";
import { AccountPage, UsersPage, type AccountRow, type UsersPageData } from "../../../../views/account.tsx";
import { freshForm, type FormState, type Shell } from "../../../../views/parts.tsx";
import { hasErrors } from "../pages/forms.ts";
import { isHtmx, redirect, withStatus, type Respond } from "../pages/page.ts";
import { integerParam } from "../params.ts";
import { clearSessionCookie, sessionSetCookie } from "./cookies.ts";
import { confirmForm, ownPasswordForm, setPasswordForm, viewerForm } from "./forms.ts";
import type { Caller } from "./guard.ts";
import { busyOrThrottled, toField } from "./sign-in.ts";

const USER_NOTICES: Record<string, string> = {
  added: "Viewer added.",
  password: "Password set; the account is signed out everywhere.",
  deleted: "Account deleted.",
};

/** An `:id` of a route. */
const idParams = t.Object({ id: integerParam("id", 1, 2 ** 31) });

/** Creates /account and /users with their forms. */
export function createAccountPages(deps: { auth: Auth; respond: Respond; callerOf: (r: Request) => Caller }) {
  const { auth, respond, callerOf } = deps;

  const row = (u: User): AccountRow => ({
    id: u.id,
    name: u.name,
    role: u.role,
    created_at: u.created_at,
    sessions: auth.sessions.countOf(u.id),
  });

  /** The signed-in account (the guard let only a session through). */
  function self(request: Request): User {
    const user = auth.users.byId(callerOf(request).userId ?? -1);
    if (!user) throw unauthorized("sign in first");
    return user;
  }

  const accountPage = (shell: Shell, user: User, password: FormState, notice?: string) =>
    AccountPage({ shell, account: row(user), password, notice });

  const usersPage = (shell: Shell, request: Request, extra: Partial<UsersPageData> = {}) =>
    UsersPage({ shell, accounts: auth.users.list().map(row), self: self(request).id, add: freshForm({ name: "" }), ...extra });

  /** After a change to the list: the list for htmx, a redirect with a notice for a plain post. */
  const done = (request: Request, shell: Shell, what: keyof typeof USER_NOTICES) =>
    isHtmx(request) ? usersPage(shell, request, { notice: USER_NOTICES[what] }) : redirect(`/users?done=${what}`);

  return new Elysia()
    .get(
      "/account",
      ({ request, query }) =>
        respond(request, (shell) => {
          const notice = query.done === "password" ? "Password changed; your other sessions are signed out." : undefined;
          return accountPage(shell, self(request), freshForm(), notice);
        }),
      { query: t.Object({ done: t.Optional(t.String()) }) },
    )
    .post("/account/password", ({ request, body }) =>
      respond(request, async (shell) => {
        const user = self(request);
        const { form, ...checked } = ownPasswordForm.read(body);
        if (!form.errors.password && form.values.password !== form.values.password2) form.errors.password2 = "does not match";
        const page = () => accountPage(shell, user, form);
        if (checked.ok && !hasErrors(form)) {
          const attempt = { name: user.name, address: callerOf(request).address };
          try {
            // Checking the current password is a guess like a sign-in: throttled the same way.
            auth.throttle.check(attempt);
            if (await auth.passwords.verify(checked.data.current, user.password_hash, attempt)) {
              await auth.accounts.setPassword(user.id, checked.data.password, "password", attempt);
              // Every session ended with the change; this browser gets a new one.
              const { id } = auth.sessions.create(user.id);
              return redirect("/account?done=password", { "set-cookie": sessionSetCookie(request, id, auth.sessions.maxAgeS) });
            }
            auth.throttle.fail(attempt);
            form.errors.current = "is not the current password";
          } catch (err) {
            const refused = busyOrThrottled(err, page, form, "current");
            if (refused) return refused;
            toField(form, err, "password");
          }
        }
        return withStatus(page(), 422);
      }),
    )
    .post("/account/sign-out-everywhere", ({ request }) => {
      auth.sessions.destroyAllOf(self(request).id);
      return redirect("/login?done=everywhere", { "set-cookie": clearSessionCookie(request) });
    })
    .get(
      "/users",
      ({ request, query }) => respond(request, (shell) => usersPage(shell, request, { notice: USER_NOTICES[query.done ?? ""] })),
      { query: t.Object({ done: t.Optional(t.String()) }) },
    )
    .post("/users", ({ request, body }) =>
      respond(request, async (shell) => {
        const { form, ...checked } = viewerForm.read(body);
        const page = () => withStatus(usersPage(shell, request, { add: form }), 422);
        if (!checked.ok) return page();
        try {
          await auth.accounts.addViewer(checked.data.name, checked.data.password, { address: callerOf(request).address });
          return done(request, shell, "added");
        } catch (err) {
          const refused = busyOrThrottled(err, () => usersPage(shell, request, { add: form }), form, "password");
          if (refused) return refused;
          toField(form, err, "name");
          return page();
        }
      }),
    )
    .post(
      "/users/:id/password",
      ({ request, params, body }) =>
        respond(request, async (shell) => {
          const user = auth.users.byId(params.id);
          if (!user) return withStatus(usersPage(shell, request, { notice: "No such account." }), 404);
          if (user.id === self(request).id) throw forbidden("change your own password on your account page");
          const { form, ...checked } = setPasswordForm.read(body);
          const edit = { id: user.id, form, which: "password" as const };
          if (!checked.ok) return withStatus(usersPage(shell, request, { edit }), 422);
          try {
            await auth.accounts.setPassword(user.id, checked.data.password, "password", { address: callerOf(request).address });
          } catch (err) {
            const refused = busyOrThrottled(err, () => usersPage(shell, request, { edit }), form, "password");
            if (refused) return refused;
            toField(form, err, "password");
            return withStatus(usersPage(shell, request, { edit }), 422);
          }
          return done(request, shell, "password");
        }),
      { params: idParams },
    )
    .post(
      "/users/:id/delete",
      ({ request, params, body }) =>
        respond(request, (shell) => {
          const user = auth.users.byId(params.id);
          if (!user) return withStatus(usersPage(shell, request, { notice: "No such account." }), 404);
          const { form, ok } = confirmForm.read(body);
          if (!ok) return withStatus(usersPage(shell, request, { edit: { id: user.id, form, which: "delete" } }), 422);
          auth.accounts.delete(user.id, self(request).id);
          return done(request, shell, "deleted");
        }),
      { params: idParams },
    );
}
