// Accounts: the first owner (there is no default password), the owner's
// viewers, passwords changed and reset.
//
// A fresh install has no account. At each start without an owner the server
// makes a one-time setup token (32 random bytes, stored hashed, valid 24 h)
// and logs the link `http://<address>:<port>/setup#<token>`;
// `techtemp-server setup-link` makes a new one (the older link stops
// working). The token is in the fragment so it never reaches a log, a proxy
// or a Referer. The setup page takes it with a name and a password, creates
// the owner and signs them in. `techtemp-server reset-password NAME` makes a
// one-time link of the same kind (valid 1 h) that sets a new password for
// that account, signs out its sessions and clears its failed sign-ins.

import { networkInterfaces, hostname } from "node:os";
import { conflict, DomainError, forbidden, invalid, notFound } from "../../shared/errors.ts";
import type { AuthStore, User } from "../store/auth.ts";
import { checkNewPassword, type HashClient, type Passwords } from "./passwords.ts";
import { hashSecret, newSecret, secretMatches } from "./secrets.ts";

/** How long a setup link works. */
export const SETUP_TTL_MS = 24 * 3_600_000;
/** How long a password reset link works. */
export const RESET_TTL_MS = 3_600_000;

/** An account name: 1-50 characters of letters, digits, `.`, `_`, `-` (no spaces: it is typed on phones). */
export const USER_NAME = /^[A-Za-z0-9._-]{1,50}$/;

/** Checks an account name; throws `invalid(field, …)`. */
export function checkUserName(field: string, name: string): void {
  if (!USER_NAME.test(name)) throw invalid(field, "must be 1-50 characters of A-Z a-z 0-9 . _ -");
}

/**
 * The address a person on the home network types to reach the server: the
 * bind address, or for 0.0.0.0 the machine's first LAN IPv4 address (a name
 * like pi.local needs mDNS, which not every phone resolves). Under the
 * service's sandbox (RestrictAddressFamilies: no netlink) the interfaces
 * cannot be listed: then <hostname>.local, which Raspberry Pi OS announces.
 */
export function reachableHost(bindHost: string): string {
  if (bindHost !== "0.0.0.0" && bindHost !== "::" && bindHost !== "") return bindHost.includes(":") ? `[${bindHost}]` : bindHost;
  try {
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
    }
  } catch {}
  const name = hostname();
  return name ? `${name.split(".")[0]}.local` : "localhost";
}

/** A link to a page of this server with a secret in its fragment. */
export const secretLink = (base: string, path: string, token: string): string => `${base}${path}#${token}`;

/** What a one-time link is for. */
export type LinkPurpose = { kind: "setup" } | { kind: "reset"; user: User };

/** Creates the account operations over the store. */
export function createAccounts(deps: { store: AuthStore; passwords: Passwords; now: () => number }) {
  const { store, passwords, now } = deps;
  const settings = store.settings;

  /** What a link's token opens, or null when it is unknown or expired. */
  function purposeOf(token: string): LinkPurpose | null {
    const t = now();
    const setupHash = settings.get("setup_token_hash");
    if (setupHash && secretMatches(token, setupHash) && t < Number(settings.get("setup_expires_at"))) {
      return store.users.ownerExists() ? null : { kind: "setup" };
    }
    const resetHash = settings.get("reset_token_hash");
    if (resetHash && secretMatches(token, resetHash) && t < Number(settings.get("reset_expires_at"))) {
      const user = store.users.byId(Number(settings.get("reset_user_id")));
      return user ? { kind: "reset", user } : null;
    }
    return null;
  }

  function requireLink(token: string, kind: LinkPurpose["kind"]): LinkPurpose {
    const purpose = purposeOf(token);
    if (purpose === null || purpose.kind !== kind) {
      const how = kind === "setup" ? "techtemp-server setup-link" : "techtemp-server reset-password NAME";
      throw invalid("token", `this link is not valid or has expired; run \`${how}\` on the server for a new one`);
    }
    return purpose;
  }

  const clearSetup = () => {
    settings.delete("setup_token_hash");
    settings.delete("setup_expires_at");
  };

  return {
    /** Whether an owner exists (until then every write is refused). */
    ownerExists: (): boolean => store.users.ownerExists(),

    /** A new setup token (the previous one stops working); a conflict once an owner exists. */
    newSetupToken(): string {
      if (store.users.ownerExists()) {
        throw conflict("an owner account exists already; to set a new password run `techtemp-server reset-password NAME`");
      }
      const token = newSecret();
      settings.set("setup_token_hash", hashSecret(token));
      settings.set("setup_expires_at", String(now() + SETUP_TTL_MS));
      return token;
    },

    /** A new password reset token for an account (the previous reset link stops working). */
    newResetToken(name: string): { token: string; user: User } {
      const user = store.users.byName(name);
      if (!user) throw notFound("account", name);
      const token = newSecret();
      settings.set("reset_token_hash", hashSecret(token));
      settings.set("reset_user_id", String(user.id));
      settings.set("reset_expires_at", String(now() + RESET_TTL_MS));
      return { token, user };
    },

    purposeOf,

    /** Creates the first owner with a setup token; returns the new account's id. */
    async completeSetup(token: string, name: string, password: string, client: HashClient = {}): Promise<number> {
      checkUserName("name", name);
      checkNewPassword("password", password);
      requireLink(token, "setup");
      const hash = await passwords.hash(password, client);
      // Checked again after the wait for a hashing slot: two tabs may race.
      requireLink(token, "setup");
      const id = store.users.create({ name, role: "owner", passwordHash: hash });
      clearSetup();
      return id;
    },

    /** Sets a new password with a reset token; signs the account out everywhere. Returns its id. */
    async completeReset(token: string, password: string, client: HashClient = {}): Promise<User> {
      checkNewPassword("password", password);
      requireLink(token, "reset");
      const hash = await passwords.hash(password, client);
      const { user } = requireLink(token, "reset") as { kind: "reset"; user: User };
      store.users.setPassword(user.id, hash);
      store.sessions.deleteForUser(user.id);
      for (const key of ["reset_token_hash", "reset_user_id", "reset_expires_at"] as const) settings.delete(key);
      return user;
    },

    /** Adds a viewer (read-only household member). */
    async addViewer(name: string, password: string, client: HashClient = {}): Promise<number> {
      checkUserName("name", name);
      checkNewPassword("password", password);
      if (store.users.byName(name))
        throw new DomainError("conflict", `name: an account named ${JSON.stringify(name)} exists already`, "name");
      const hash = await passwords.hash(password, client);
      if (store.users.byName(name))
        throw new DomainError("conflict", `name: an account named ${JSON.stringify(name)} exists already`, "name");
      return store.users.create({ name, role: "viewer", passwordHash: hash });
    },

    /** Sets an account's password and signs it out everywhere (the owner resetting a viewer's, or one's own). */
    async setPassword(userId: number, password: string, field = "password", client: HashClient = {}): Promise<void> {
      checkNewPassword(field, password);
      if (!store.users.byId(userId)) throw notFound("account", String(userId));
      const hash = await passwords.hash(password, client);
      store.users.setPassword(userId, hash);
      store.sessions.deleteForUser(userId);
    },

    /** Deletes an account (and its sessions); not oneself, not the last owner. */
    delete(userId: number, by: number): void {
      const user = store.users.byId(userId);
      if (!user) throw notFound("account", String(userId));
      if (userId === by) throw forbidden("you cannot delete your own account");
      if (user.role === "owner" && store.users.owners() <= 1) throw forbidden("the last owner cannot be deleted");
      store.users.delete(userId);
    },
  };
}

/** The account operations' interface. */
export type Accounts = ReturnType<typeof createAccounts>;
