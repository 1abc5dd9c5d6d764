// `POST /api/v1/enroll`: a sensor's installer (install.sh sensor --enroll
// TOKEN) trades a short-lived enrollment token for the sensor's own MQTT
// credentials. The enrollment token is the credential here (no session, no
// API token); each call counts one use of it. The device is registered
// (placed when a room is named) and given a new secret, shown this once and
// stored only as its SHA-256; the answer carries the local CA the sensor
// should trust for MQTT over TLS, when the server has one.
//
// A minimal version of the endpoint (issue 11's split gives it to
// issue11-http); the two are merged into one.

import { Elysia, t } from "elysia";
import { DEFAULT_HOME_ID } from "../../../shared/contract.ts";
import { hashSecret, newSecret } from "../../auth/secrets.ts";
import type { Store } from "../../store/store.ts";
import type { TlsInfo } from "../../tls/certificates.ts";
import { idString, optionalText, text } from "../params.ts";
import { deviceJson } from "./json.ts";

const enrollment = t.Object({
  token: t.String({ minLength: 1, maxLength: 200, error: "token must be the enrollment token (techtemp-server enroll-token)" }),
  device_uid: idString("device_uid"),
  room_name: t.Optional(text("room_name", 100)),
  label: optionalText("label", 100),
});

/** Creates `POST /enroll` (under /api/v1). */
export function createEnrollApi({ store, tls }: { store: Store; tls: Pick<TlsInfo, "caPem"> | null }) {
  return new Elysia().post(
    "/enroll",
    ({ body, set }) => {
      if (!store.auth.enrollment.use(hashSecret(body.token))) {
        set.status = 401;
        return {
          error: "token: unknown, expired, used up or revoked enrollment token; make a new one (techtemp-server enroll-token)",
        };
      }
      const secret = newSecret();
      store.setDeviceSecret(body.device_uid, hashSecret(secret));
      let device = store.getDevice(body.device_uid);
      if (body.room_name !== undefined && device.room_name !== body.room_name) {
        device =
          device.room_uid === null
            ? store.createDevice({ uid: body.device_uid, roomName: body.room_name, label: body.label ?? undefined })
            : store.updateDevice(body.device_uid, { roomName: body.room_name });
      }
      if (body.label !== undefined && device.label !== body.label)
        device = store.updateDevice(body.device_uid, { label: body.label });
      set.status = 201;
      return {
        data: {
          mqtt_username: device.uid,
          mqtt_password: secret,
          home_id: device.home_id ?? DEFAULT_HOME_ID,
          device: deviceJson(device),
          ca_certificate: tls?.caPem ?? null,
        },
      };
    },
    { body: enrollment },
  );
}
