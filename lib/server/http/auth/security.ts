// The owner's security pages: API tokens (/tokens: make one, shown once;
// revoke), and /security: the switches an upgrade keeps on (each also a
// one-click "Turn off" in the banner of every page), enrollment tokens for
// new sensors (shown once with the install command), and the kiosk link.
// A page that shows a secret is the answer to the post itself, never a
// redirect: reloading it must not show the secret again.

import { Elysia, t } from "elysia";
import type { Auth } from "../../auth/auth.ts";
import { SecurityPage, TokensPage, type SecurityPageData, type TokensPageData } from "../../../../views/security.tsx";
import { freshForm, type Shell } from "../../../../views/parts.tsx";
import { isHtmx, redirect, withStatus, type Respond } from "../pages/page.ts";
import { integerParam } from "../params.ts";
import { enrollmentForm, switchForm, tokenForm } from "./forms.ts";
import type { Caller } from "./guard.ts";
import { toField } from "./sign-in.ts";

const NOTICES: Record<string, string> = {
  revoked: "Revoked: it stopped working at once.",
  switched: "Saved.",
  kiosk_revoked: "The kiosk link is revoked; tablets that used it are signed out.",
};

const idParams = t.Object({ id: integerParam("id", 1, 2 ** 31) });
const doneQuery = { query: t.Object({ done: t.Optional(t.String()) }) };

/** The address of this server as the request reached it, for links and commands shown to the owner. */
const hostOf = (request: Request): string => new URL(request.url).hostname.replace(/^\[|\]$/g, "");

/** Creates /tokens and /security with their forms. */
export function createSecurityPages(deps: { auth: Auth; respond: Respond; callerOf: (r: Request) => Caller }) {
  const { auth, respond } = deps;

  const tokensPage = (shell: Shell, extra: Partial<TokensPageData> = {}) =>
    TokensPage({ shell, tokens: auth.tokens.list(), form: freshForm({ name: "", scope: "read" }), ...extra });

  const securityPage = (shell: Shell, extra: Partial<SecurityPageData> = {}) =>
    SecurityPage({
      shell,
      switches: {
        public_read: auth.switches.get("public_read"),
        accept_anonymous_sensors: auth.switches.get("accept_anonymous_sensors"),
      },
      anonymousDevices: auth.devicesWithoutSecret(),
      enrollments: auth.enrollment.list(),
      enrollForm: freshForm({ ttl_minutes: "60", max_uses: "1" }),
      kioskActive: auth.kiosk.active(),
      ...extra,
    });

  /** After a change: the page for htmx, a redirect with a notice for a plain post. */
  const done = (request: Request, shell: Shell, path: "/tokens" | "/security", what: keyof typeof NOTICES) =>
    isHtmx(request)
      ? path === "/tokens"
        ? tokensPage(shell, { notice: NOTICES[what] })
        : securityPage(shell, { notice: NOTICES[what] })
      : redirect(`${path}?done=${what}`);

  return new Elysia()
    .get(
      "/tokens",
      ({ request, query }) => respond(request, (shell) => tokensPage(shell, { notice: NOTICES[query.done ?? ""] })),
      doneQuery,
    )
    .post("/tokens", ({ request, body }) =>
      respond(request, (shell) => {
        const { form, ...checked } = tokenForm.read(body);
        if (checked.ok) {
          try {
            const { token, row } = auth.tokens.create(checked.data.name, checked.data.scope);
            return tokensPage(shell, { created: { name: row.name, token } });
          } catch (err) {
            toField(form, err, "name");
          }
        }
        return withStatus(tokensPage(shell, { form }), 422);
      }),
    )
    .post(
      "/tokens/:id/revoke",
      ({ request, params }) =>
        respond(request, (shell) => {
          auth.tokens.revoke(params.id);
          return done(request, shell, "/tokens", "revoked");
        }),
      { params: idParams },
    )
    .get(
      "/security",
      ({ request, query }) => respond(request, (shell) => securityPage(shell, { notice: NOTICES[query.done ?? ""] })),
      doneQuery,
    )
    .post("/security/switch", ({ request, body }) =>
      respond(request, (shell) => {
        const { form, ...checked } = switchForm.read(body);
        if (!checked.ok) {
          const problem = Object.entries(form.errors).map(([field, message]) => `${field}: ${message}`);
          return withStatus(securityPage(shell, { notice: problem.join("; ") }), 422);
        }
        auth.switches.set(checked.data.switch, checked.data.value === "on");
        return done(request, shell, "/security", "switched");
      }),
    )
    .post("/security/enrollment", ({ request, body }) =>
      respond(request, (shell) => {
        const { form, ...checked } = enrollmentForm.read(body);
        if (!checked.ok) return withStatus(securityPage(shell, { enrollForm: form }), 422);
        const { token } = auth.enrollment.createToken({ ttlMinutes: checked.data.ttl_minutes, maxUses: checked.data.max_uses });
        const command = `sudo ./install.sh sensor --server ${hostOf(request)} --enroll ${token} --room "Living room"`;
        return securityPage(shell, { enrolled: { token, command } });
      }),
    )
    .post(
      "/security/enrollment/:id/revoke",
      ({ request, params }) =>
        respond(request, (shell) => {
          auth.enrollment.revoke(params.id);
          return done(request, shell, "/security", "revoked");
        }),
      { params: idParams },
    )
    .post("/security/kiosk", ({ request }) =>
      respond(request, (shell) => {
        const token = auth.kiosk.create();
        return securityPage(shell, { kioskLink: `${new URL(request.url).origin}/k/${token}` });
      }),
    )
    .post("/security/kiosk/revoke", ({ request }) =>
      respond(request, (shell) => {
        auth.kiosk.revoke();
        return done(request, shell, "/security", "kiosk_revoked");
      }),
    );
}
