// The API of who may do what, under /api/v1 (errors as everywhere in the API:
// `{"error": …}`, a 400 naming the field):
//   GET  /me                          who the request authenticates as
//   GET|POST /tokens, DELETE /tokens/:id
//                                     named API tokens (the owner's): made, shown once, revoked at once
//   GET|POST /enrollment-tokens, DELETE /enrollment-tokens/:id
//                                     short-lived tokens that enroll sensors
//   POST /enroll                      a sensor enrolls: its MQTT credentials (the token is the credential)
//   POST /devices/:uid/mqtt-password  a new MQTT secret for a device (earlier agents)
//   DELETE /devices/:uid/mqtt-password
//                                     withdraws a device's MQTT secret (a stolen or retired Pi); keeps it and its readings
//   GET|PUT /settings                 the owner's switches (public_read, accept_anonymous_sensors)

import { Elysia, t } from "elysia";
import { DEFAULT_HOME_ID } from "../../../shared/contract.ts";
import type { Auth } from "../../auth/auth.ts";
import { ENROLL_MAX_USES, ENROLL_TTL_MINUTES } from "../../auth/enrollment.ts";
import type { ApiTokenRow, EnrollmentRow } from "../../store/auth.ts";
import { deviceJson } from "../api/json.ts";
import { idString, integerParam, iso, optionalText, text } from "../params.ts";
import type { Caller } from "./guard.ts";
import type { TlsInfo } from "./shell.ts";

/** A token as the API lists it (never its secret nor its hash). */
const tokenJson = (r: ApiTokenRow) => ({
  id: r.id,
  name: r.name,
  scope: r.scope,
  prefix: r.prefix,
  created_at: iso(r.created_at),
  last_used_at: iso(r.last_used_at),
  revoked_at: iso(r.revoked_at),
});

/** An enrollment token as the API lists it. */
const enrollmentJson = (r: EnrollmentRow) => ({
  id: r.id,
  created_at: iso(r.created_at),
  expires_at: iso(r.expires_at),
  uses: r.uses,
  max_uses: r.max_uses,
});

const idParams = t.Object({ id: integerParam("id", 1, 2 ** 31) });

const whole = (field: string, range: { min: number; max: number }) =>
  t.Optional(
    t.Integer({
      minimum: range.min,
      maximum: range.max,
      error: `${field} must be a whole number from ${range.min} to ${range.max}`,
    }),
  );

const flag = (field: string) => t.Optional(t.Boolean({ error: `${field} must be true or false` }));

/** Creates the routes. */
export function createAuthApi(deps: { auth: Auth; callerOf: (r: Request) => Caller; tls?: TlsInfo | null }) {
  const { auth, callerOf } = deps;
  return new Elysia({ prefix: "/api/v1" })
    .get("/me", ({ request }) => {
      const c = callerOf(request);
      return {
        data: {
          kind: c.kind,
          role: c.role,
          name: c.name,
          scope: c.token?.scope ?? null,
          owner_exists: auth.accounts.ownerExists(),
        },
      };
    })
    .get("/tokens", () => ({ data: auth.tokens.list().map(tokenJson) }))
    .post(
      "/tokens",
      ({ body, set }) => {
        const { token, row } = auth.tokens.create(body.name, body.scope);
        set.status = 201;
        return { data: { ...tokenJson(row), token }, message: "Token created; it is shown only now" };
      },
      {
        body: t.Object({
          name: t.String({ error: "name must be 1-50 characters of A-Z a-z 0-9 . _ -" }),
          scope: t.Union([t.Literal("read"), t.Literal("write")], { error: "scope must be read or write" }),
        }),
      },
    )
    .delete("/tokens/:id", ({ params }) => ({ data: tokenJson(auth.tokens.revoke(params.id)), message: "Token revoked" }), {
      params: idParams,
    })
    .get("/enrollment-tokens", () => ({ data: auth.enrollment.list().map(enrollmentJson) }))
    .post(
      "/enrollment-tokens",
      ({ body, set }) => {
        const { token, row } = auth.enrollment.createToken({ ttlMinutes: body.ttl_minutes, maxUses: body.max_uses });
        set.status = 201;
        return { data: { ...enrollmentJson(row), token }, message: "Enrollment token created; it is shown only now" };
      },
      {
        body: t.Object({ ttl_minutes: whole("ttl_minutes", ENROLL_TTL_MINUTES), max_uses: whole("max_uses", ENROLL_MAX_USES) }),
      },
    )
    .delete(
      "/enrollment-tokens/:id",
      ({ params }) => {
        auth.enrollment.revoke(params.id);
        return { message: "Enrollment token revoked", id: params.id };
      },
      { params: idParams },
    )
    .post(
      "/enroll",
      ({ body, set }) => {
        const { device, secret } = auth.enrollment.enroll({
          token: body.token,
          deviceUid: body.device_uid,
          roomName: body.room_name,
          label: body.label,
        });
        set.status = 201;
        return {
          data: {
            mqtt_username: device.uid,
            mqtt_password: secret,
            home_id: device.home_id ?? DEFAULT_HOME_ID,
            device: deviceJson(device),
            ca_certificate: deps.tls?.caPem ?? null,
          },
        };
      },
      {
        body: t.Object({
          token: t.String({ minLength: 1, maxLength: 100, error: "token must be the enrollment token (text)" }),
          device_uid: idString("device_uid"),
          room_name: t.Optional(text("room_name", 100)),
          label: optionalText("label", 100),
        }),
      },
    )
    .post("/devices/:uid/mqtt-password", ({ params, set }) => {
      const { device, secret } = auth.enrollment.newDeviceSecret(params.uid);
      set.status = 201;
      return { data: { mqtt_username: device.uid, mqtt_password: secret }, message: "New MQTT password; it is shown only now" };
    })
    .delete("/devices/:uid/mqtt-password", ({ params }) => {
      const { device, hadSecret } = auth.enrollment.withdrawDeviceSecret(params.uid);
      return {
        data: { device_uid: device.uid, mqtt_credentials: "withdrawn" },
        message:
          `${hadSecret ? "MQTT credentials withdrawn" : "No working MQTT credentials to withdraw; the device stays locked"}: ` +
          `nothing can publish as ${device.uid} and its connections close within seconds; the device and its readings are kept. ` +
          "A new password (POST .../mqtt-password) or enrollment lets it publish again",
      };
    })
    .get("/settings", () => ({
      data: {
        public_read: auth.switches.get("public_read"),
        accept_anonymous_sensors: auth.switches.get("accept_anonymous_sensors"),
      },
    }))
    .put(
      "/settings",
      ({ body }) => {
        if (body.public_read !== undefined) auth.switches.set("public_read", body.public_read);
        if (body.accept_anonymous_sensors !== undefined)
          auth.switches.set("accept_anonymous_sensors", body.accept_anonymous_sensors);
        return {
          data: {
            public_read: auth.switches.get("public_read"),
            accept_anonymous_sensors: auth.switches.get("accept_anonymous_sensors"),
          },
          message: "Settings saved",
        };
      },
      { body: t.Object({ public_read: flag("public_read"), accept_anonymous_sensors: flag("accept_anonymous_sensors") }) },
    );
}
