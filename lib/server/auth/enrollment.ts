// Sensors get their own MQTT credentials when they are set up, like k3s's
// join token: the owner makes a short-lived enrollment token (on the pages,
// the API or `techtemp-server enroll-token`), `install.sh sensor --enroll
// TOKEN` posts it with the device's uid to POST /api/v1/enroll, and gets back
// the MQTT user name (the uid) and a password made for that device (32
// random bytes, stored as SHA-256, shown once). A token works until it
// expires, is revoked or has been used `max_uses` times. An earlier C agent
// gets its password from the device page or `techtemp-server device-password
// UID` and two lines of its device.conf.

import { DomainError, invalid, notFound, unauthorized } from "../../shared/errors.ts";
import type { EnrollmentRow } from "../store/auth.ts";
import { roomUidFromName, type Device, type Store } from "../store/store.ts";
import { hashSecret, newSecret, WITHDRAWN_SECRET_HASH } from "./secrets.ts";

/** Longest life of an enrollment token, in minutes (a week), and the default (an hour). */
export const ENROLL_TTL_MINUTES = { min: 1, max: 10_080, default: 60 } as const;
/** Most sensors one token may enroll, and the default (one). */
export const ENROLL_MAX_USES = { min: 1, max: 1000, default: 1 } as const;

/** What a device gets when it enrolls. */
export interface Enrolled {
  device: Device;
  /** The MQTT password, shown this once. */
  secret: string;
}

/** Creates enrollment over the store. */
export function createEnrollment(deps: {
  store: Pick<Store, "auth" | "findDevice" | "createDevice" | "updateDevice">;
  now: () => number;
}) {
  const { store, now } = deps;

  /** A new MQTT secret for a known device (the previous one stops working). */
  function setSecret(device: Device): string {
    const secret = newSecret();
    store.auth.credentials.set(device.id, hashSecret(secret));
    return secret;
  }

  return {
    /** Makes a token valid for `ttlMinutes`, for `maxUses` enrollments; the token is returned this once. */
    createToken(options: { ttlMinutes?: number; maxUses?: number } = {}): { token: string; row: EnrollmentRow } {
      const ttl = options.ttlMinutes ?? ENROLL_TTL_MINUTES.default;
      const uses = options.maxUses ?? ENROLL_MAX_USES.default;
      if (!Number.isInteger(ttl) || ttl < ENROLL_TTL_MINUTES.min || ttl > ENROLL_TTL_MINUTES.max) {
        throw invalid(
          "ttl_minutes",
          `must be a whole number of minutes from ${ENROLL_TTL_MINUTES.min} to ${ENROLL_TTL_MINUTES.max}`,
        );
      }
      if (!Number.isInteger(uses) || uses < ENROLL_MAX_USES.min || uses > ENROLL_MAX_USES.max) {
        throw invalid("max_uses", `must be a whole number from ${ENROLL_MAX_USES.min} to ${ENROLL_MAX_USES.max}`);
      }
      const token = newSecret();
      const id = store.auth.enrollment.create({ tokenHash: hashSecret(token), expiresAt: now() + ttl * 60_000, maxUses: uses });
      return { token, row: store.auth.enrollment.byId(id)! };
    },

    /** Tokens not expired nor revoked (used-up ones too, to show it). */
    list: (): EnrollmentRow[] => store.auth.enrollment.live(),

    /** Revokes a token at once. */
    revoke(id: number): void {
      if (!store.auth.enrollment.byId(id)) throw notFound("enrollment token", String(id));
      store.auth.enrollment.revoke(id);
    },

    /**
     * Enrolls a device with a token: registers it (in `roomName` when given:
     * placed, or moved there when it is elsewhere), counts one use of the
     * token and gives the device a new MQTT secret. 401 when the token is not
     * live. Nothing is counted when the input is refused.
     */
    enroll(input: { token: string; deviceUid: string; roomName?: string; label?: string | null }): Enrolled {
      if (input.roomName !== undefined && roomUidFromName(input.roomName) === "") {
        throw invalid("room_name", "must contain at least one letter or digit");
      }
      const tokenHash = hashSecret(input.token);
      if (!store.auth.enrollment.peek(tokenHash)) {
        throw unauthorized("token: this enrollment token is unknown, expired, used up or revoked; make a new one");
      }
      const existing = store.findDevice(input.deviceUid);
      let device: Device;
      if (existing === null || existing.room_uid === null) {
        device =
          input.roomName !== undefined || existing === null
            ? store.createDevice({ uid: input.deviceUid, roomName: input.roomName, label: input.label })
            : input.label !== undefined
              ? store.updateDevice(input.deviceUid, { label: input.label })
              : existing;
      } else {
        const move = input.roomName !== undefined && roomUidFromName(input.roomName) !== existing.room_uid;
        device =
          move || input.label !== undefined
            ? store.updateDevice(input.deviceUid, { ...(move ? { roomName: input.roomName } : {}), label: input.label })
            : existing;
      }
      // All of the above ran without yielding, so the token is still live here.
      if (!store.auth.enrollment.use(tokenHash)) throw new DomainError("unauthorized", "token: this enrollment token is used up");
      return { device, secret: setSecret(device) };
    },

    /**
     * Withdraws a device's MQTT secret (a stolen or retired Pi): nothing can log in as it any more,
     * and the broker's recheck closes its open connections; the device and its readings stay.
     * Returns whether a working secret was withdrawn (false: it had none, or it was already withdrawn).
     * not_found for an unknown uid.
     */
    withdrawDeviceSecret(uid: string): { device: Device; hadSecret: boolean } {
      const device = store.findDevice(uid);
      if (!device) throw notFound("device", uid);
      const before = store.auth.credentials.forDevice(uid);
      store.auth.credentials.set(device.id, WITHDRAWN_SECRET_HASH);
      return { device, hadSecret: before !== null && before.secret_hash !== WITHDRAWN_SECRET_HASH };
    },

    /** A new MQTT secret for a device (for an earlier agent's device.conf); not_found for an unknown uid. */
    newDeviceSecret(uid: string): Enrolled {
      const device = store.findDevice(uid);
      if (!device) throw notFound("device", uid);
      return { device, secret: setSecret(device) };
    },
  };
}

/** Enrollment's interface. */
export type Enrollment = ReturnType<typeof createEnrollment>;
