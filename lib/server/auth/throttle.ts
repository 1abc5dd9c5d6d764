// Login throttling (ASVS 2.2.1: at most 100 failed attempts per hour on one
// account): failures are counted per account name (known or not, so the
// answer says nothing about which names exist) and per client address, in
// 10-minute slots. A sign-in is refused with 429 and Retry-After while the
// slots of the last hour (the current one and the six before it) hold the
// limit. That is a true sliding hour: any 60 minutes lie within the seven
// slots counted at their last attempt, so no hour ever sees more than the
// limit. Nothing locks an account for good: the slots age out, and
// `techtemp-server reset-password NAME` on the server signs its owner in
// through a link that does not pass here. A success does not clear the
// count (that would give an attacker who shares the owner's network 100
// more guesses each time the owner signs in).

import { tooMany } from "../../shared/errors.ts";
import type { Log } from "../../shared/log.ts";
import type { AuthStore } from "../store/auth.ts";

/** The counting slot. */
export const SLOT_MS = 10 * 60_000;
/** The window the limits are per. */
export const WINDOW_MS = 60 * 60_000;
const SLOTS_BACK = WINDOW_MS / SLOT_MS;

/** Who is signing in. */
export interface Attempt {
  name: string;
  address: string;
}

/** Creates the throttle over the store's `login_failures` table. */
export function createLoginThrottle(deps: {
  store: AuthStore;
  perAccount: number;
  perAddress: number;
  log: Log;
  now: () => number;
}) {
  const { store, perAccount, perAddress, log, now } = deps;
  /** When each key's refusal was last logged (once per key per window). */
  const logged = new Map<string, number>();
  let prunedAt = -Infinity;

  const slotOf = (t: number) => Math.floor(t / SLOT_MS);
  const accountKey = (name: string) => `user:${name.toLowerCase()}@`;
  const addressKey = (address: string) => `addr:${address}@`;

  /** Seconds until the failures under `prefix` drop below `limit`, or 0 when they are below it now. */
  function waitS(prefix: string, limit: number, t: number): number {
    const rows = store.failures.slots(prefix, (slotOf(t) - SLOTS_BACK) * SLOT_MS);
    let total = rows.reduce((n, r) => n + r.count, 0);
    if (total < limit) return 0;
    for (const row of rows) {
      total -= row.count;
      // A slot stops counting once the current slot is more than six slots after it.
      if (total < limit) return Math.max(1, Math.ceil(((slotOf(row.window_start) + SLOTS_BACK + 1) * SLOT_MS - t) / 1000));
    }
    return Math.ceil(WINDOW_MS / 1000);
  }

  function refuse(key: string, what: string, retryAfterS: number, attempt: Attempt): never {
    const t = now();
    if (t - (logged.get(key) ?? -Infinity) >= WINDOW_MS) {
      logged.set(key, t);
      log.warn(`sign-in throttled: too many failures for this ${what} in the last hour`, {
        name: attempt.name,
        address: attempt.address,
        retry_after_s: retryAfterS,
      });
    }
    const minutes = Math.ceil(retryAfterS / 60);
    throw tooMany(
      `too many failed sign-ins for this ${what} in the last hour; try again in ${minutes} minute${minutes === 1 ? "" : "s"}`,
      retryAfterS,
    );
  }

  return {
    /** Throws a 429 (`too_many` with its Retry-After) when the account or the address is at its limit. */
    check(attempt: Attempt): void {
      const t = now();
      const account = waitS(accountKey(attempt.name), perAccount, t);
      if (account > 0) refuse(accountKey(attempt.name), "account", account, attempt);
      const address = waitS(addressKey(attempt.address), perAddress, t);
      if (address > 0) refuse(addressKey(attempt.address), "address", address, attempt);
    },

    /** Counts one failed attempt against the account and the address. */
    fail(attempt: Attempt): void {
      const t = now();
      const slot = slotOf(t);
      for (const prefix of [accountKey(attempt.name), addressKey(attempt.address)]) {
        store.failures.add(`${prefix}${slot}`, slot * SLOT_MS);
      }
      if (t - prunedAt >= SLOT_MS) {
        prunedAt = t;
        store.failures.prune((slot - SLOTS_BACK - 1) * SLOT_MS);
        for (const [key, at] of logged) if (t - at >= WINDOW_MS) logged.delete(key);
      }
    },

    /** Forgets an account's failures (a password reset from the server's command line). */
    clearAccount: (name: string): void => store.failures.clearPrefix(accountKey(name)),
  };
}

/** The login throttle's interface. */
export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
