// Sign-in sessions: the cookie holds a random 32-byte id, the database only
// its SHA-256 (a copy of the database signs nobody in). Each session has its
// own CSRF token. A session ends when it has been idle for `idleMs` or is
// older than `maxMs`, whichever comes first; "sign out everywhere" deletes
// every session of an account. Kiosk sessions (a wall tablet's read-only
// link) have no account and are revoked together.

import type { AuthStore, SessionRow } from "../store/auth.ts";
import { hashSecret, newSecret } from "./secrets.ts";

/** A session a request carries: its row and the cookie value it came with. */
export interface Session extends SessionRow {
  /** The cookie's value (the id itself). */
  id: string;
}

/** How often a session's last use is written: every request would be a commit with an fsync. */
const TOUCH_EVERY_MS = 60_000;

/** Creates the sessions over the store. */
export function createSessions(deps: { store: AuthStore; idleMs: number; maxMs: number; now: () => number }) {
  const { store, idleMs, maxMs, now } = deps;
  let prunedAt = -Infinity;

  /** Drops expired sessions now and then (they are refused anyway when used). */
  function prune(): void {
    const t = now();
    if (t - prunedAt < 3_600_000) return;
    prunedAt = t;
    store.sessions.deleteStale(t - idleMs, t - maxMs);
  }

  return {
    /** How long the cookie may live (the absolute expiry), in seconds. */
    maxAgeS: Math.floor(maxMs / 1000),

    /** Starts a session for an account (or a kiosk); returns the cookie value and the CSRF token. */
    create(userId: number | null, options: { kiosk?: boolean } = {}): { id: string; csrf: string } {
      prune();
      const id = newSecret();
      const csrf = newSecret();
      store.sessions.create({ idHash: hashSecret(id), userId, csrf, kiosk: options.kiosk });
      return { id, csrf };
    },

    /** The live session with this cookie value, or null (unknown, idle too long, too old: then deleted). */
    resolve(id: string): Session | null {
      if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
      const idHash = hashSecret(id);
      const row = store.sessions.get(idHash);
      if (!row) return null;
      const t = now();
      // An account session whose account is gone has no role: it ends too.
      const orphan = !row.kiosk && row.role === null;
      if (t - row.last_seen_at >= idleMs || t - row.created_at >= maxMs || orphan) {
        store.sessions.delete(idHash);
        return null;
      }
      if (t - row.last_seen_at >= TOUCH_EVERY_MS) store.sessions.touch(idHash);
      return { ...row, id };
    },

    /** Signs one session out. */
    destroy: (id: string): void => store.sessions.delete(hashSecret(id)),
    /** Signs an account out everywhere. */
    destroyAllOf: (userId: number): void => store.sessions.deleteForUser(userId),
    /** How many sessions an account has. */
    countOf: (userId: number): number => store.sessions.countForUser(userId),
  };
}

/** The sessions' interface. */
export type Sessions = ReturnType<typeof createSessions>;
