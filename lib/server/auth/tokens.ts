// Named API tokens for curl, scripts, Grafana and Home Assistant: `tt_` and
// 32 random bytes in base64url, shown once when made, stored as SHA-256
// (secrets.ts), read (GET) or write (everything the owner may do),
// revoked at once. A token's name is also its MQTT user name (sec-mqtt's
// broker checks `store.auth.tokens.byHash`), so names are plain words.

import { DomainError, invalid, notFound } from "../../shared/errors.ts";
import type { ApiTokenRow, AuthStore } from "../store/auth.ts";
import { hashSecret, newSecret } from "./secrets.ts";

/** What a token may do. */
export type TokenScope = ApiTokenRow["scope"];

/** The scopes, for forms and checks. */
export const TOKEN_SCOPES: readonly TokenScope[] = ["read", "write"];

/** A token's name: 1-50 characters of A-Z a-z 0-9 . _ - (it is an MQTT user name too). */
export const TOKEN_NAME = /^[A-Za-z0-9._-]{1,50}$/;

/** Every token starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const TOKEN_PREFIX = "tt_";

/** How often a token's last use is written (a script may call every second). */
const TOUCH_EVERY_MS = 60_000;

/** Checks a token name; throws `invalid(field, …)`. */
export function checkTokenName(field: string, name: string): void {
  if (!TOKEN_NAME.test(name)) throw invalid(field, "must be 1-50 characters of A-Z a-z 0-9 . _ -");
}

/** Creates the API tokens over the store. */
export function createApiTokens(deps: { store: AuthStore; now: () => number }) {
  const { store, now } = deps;
  return {
    /** Makes a token; the secret is returned this once. A taken name is a conflict naming `name`. */
    create(name: string, scope: TokenScope): { token: string; row: ApiTokenRow } {
      checkTokenName("name", name);
      if (!TOKEN_SCOPES.includes(scope)) throw invalid("scope", `${JSON.stringify(scope)} is not one of read, write`);
      if (store.tokens.byName(name)) {
        const message = `name: a token named ${JSON.stringify(name)} exists already (a revoked one keeps its name)`;
        throw new DomainError("conflict", message, "name");
      }
      const token = newSecret(TOKEN_PREFIX);
      const id = store.tokens.create({ name, scope, tokenHash: hashSecret(token), prefix: token.slice(0, 8) });
      return { token, row: store.tokens.byId(id)! };
    },

    /** The live token a request presented, or null (unknown or revoked). */
    authenticate(token: string): ApiTokenRow | null {
      if (!token.startsWith(TOKEN_PREFIX) || token.length > 100) return null;
      const row = store.tokens.byHash(hashSecret(token));
      if (!row || row.revoked_at !== null) return null;
      if (row.last_used_at === null || now() - row.last_used_at >= TOUCH_EVERY_MS) store.tokens.touch(row.id);
      return row;
    },

    /** Every token, live ones first. */
    list: (): ApiTokenRow[] => store.tokens.list(),

    /** Revokes a token at once (a revoked one stays listed); not_found for an unknown id. */
    revoke(id: number): ApiTokenRow {
      const row = store.tokens.byId(id);
      if (!row) throw notFound("token", String(id));
      store.tokens.revoke(id);
      return store.tokens.byId(id)!;
    },
  };
}

/** The API tokens' interface. */
export type ApiTokens = ReturnType<typeof createApiTokens>;
