// Everything that decides who may do what over HTTP, composed once from the
// store and the settings: passwords (bounded argon2id), sessions, API tokens,
// login throttling, accounts with the setup and reset links, the kiosk link,
// sensor enrollment, and the runtime settings the owner switches on the pages.
// lib/server/http/auth/ puts it in front of every route; the operator
// commands (lib/server/ops/auth-commands.ts) use the same pieces.

import type { Log } from "../../shared/log.ts";
import type { Config } from "../config.ts";
import type { Store } from "../store/store.ts";
import { createEnrollment } from "./enrollment.ts";
import { createKiosk } from "./kiosk.ts";
import { createPasswords, type HashParams } from "./passwords.ts";
import { createSessions } from "./sessions.ts";
import { createAccounts } from "./setup.ts";
import { createLoginThrottle } from "./throttle.ts";
import { createApiTokens } from "./tokens.ts";

const DAY = 86_400_000;

/** The settings the auth pieces read (lib/server/config.ts). */
export type AuthSettings = Pick<
  Config,
  | "session_idle_days"
  | "session_max_days"
  | "login_failures_per_hour"
  | "login_address_failures_per_hour"
  | "password_hash_concurrency"
  | "password_hash_queue"
>;

/** The runtime switches the owner turns on and off on the pages (the `settings` table). */
export type Switch = "accept_anonymous_sensors" | "public_read";

/** The switches, each with what it means when on. */
export const SWITCHES: readonly Switch[] = ["accept_anonymous_sensors", "public_read"];

/** Creates the auth pieces. `hashParams` is for tests and the benchmark (the default is argon2id at OWASP's cost). */
export function createAuth(deps: {
  store: Store;
  settings: AuthSettings;
  log: Log;
  now?: () => number;
  hashParams?: HashParams;
}) {
  const { store, settings, log } = deps;
  const now = deps.now ?? store.now;
  const passwords = createPasswords({
    concurrency: settings.password_hash_concurrency,
    queue: settings.password_hash_queue,
    log,
    now,
    params: deps.hashParams,
  });
  const sessions = createSessions({
    store: store.auth,
    idleMs: settings.session_idle_days * DAY,
    maxMs: settings.session_max_days * DAY,
    now,
  });
  return {
    now,
    passwords,
    sessions,
    tokens: createApiTokens({ store: store.auth, now }),
    throttle: createLoginThrottle({
      store: store.auth,
      perAccount: settings.login_failures_per_hour,
      perAddress: settings.login_address_failures_per_hour,
      log,
      now,
    }),
    accounts: createAccounts({ store: store.auth, passwords, now }),
    kiosk: createKiosk({ store: store.auth, sessions }),
    enrollment: createEnrollment({ store, now }),
    /** The owner's runtime switches. */
    switches: {
      get: (key: Switch): boolean => store.auth.settings.get(key) === "1",
      set: (key: Switch, on: boolean): void => store.auth.settings.set(key, on ? "1" : "0"),
    },
    /** The accounts, for the pages. */
    users: store.auth.users,
    /** How many devices have no MQTT secret yet (shown beside "accept anonymous sensors"). */
    devicesWithoutSecret: (): number => store.auth.credentials.devicesWithout(),
  };
}

/** The auth pieces' interface. */
export type Auth = ReturnType<typeof createAuth>;
