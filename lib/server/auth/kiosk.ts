// The optional read-only kiosk link for a wall tablet: `/k/<token>` (32
// random bytes, stored hashed) starts a session limited to the dashboard and
// its live updates. One link at a time; making a new one or revoking it ends
// every kiosk session at once.

import type { AuthStore } from "../store/auth.ts";
import { hashSecret, newSecret, secretMatches } from "./secrets.ts";
import type { Sessions } from "./sessions.ts";

/** Creates the kiosk link over the store and the sessions. */
export function createKiosk(deps: { store: AuthStore; sessions: Sessions }) {
  const { store, sessions } = deps;
  return {
    /** Whether a kiosk link exists. */
    active: (): boolean => store.settings.get("kiosk_token_hash") !== null,
    /** Makes a new link (the previous one and its sessions end); returns its token, shown once. */
    create(): string {
      const token = newSecret();
      store.sessions.deleteKiosk();
      store.settings.set("kiosk_token_hash", hashSecret(token));
      return token;
    },
    /** Revokes the link and ends every kiosk session. */
    revoke(): void {
      store.settings.delete("kiosk_token_hash");
      store.sessions.deleteKiosk();
    },
    /** A kiosk session for the link's token, or null when it is not the current link. */
    enter(token: string): { id: string; csrf: string } | null {
      const hash = store.settings.get("kiosk_token_hash");
      if (hash === null || !secretMatches(token, hash)) return null;
      return sessions.create(null, { kiosk: true });
    },
  };
}

/** The kiosk link's interface. */
export type Kiosk = ReturnType<typeof createKiosk>;
