// API routes of devices: list, register in a room, move and configure,
// delete, and where each has been. Mounted under /api/v1 (api.ts).

import { Elysia, t } from "elysia";
import { INTERVAL_RANGE, OFFSET_RANGE } from "../../../shared/contract.ts";
import { invalid } from "../../../shared/errors.ts";
import type { Store } from "../../store/store.ts";
import { idString, optionalText, parseTime, text } from "../params.ts";
import { deviceJson, placementJson } from "./json.ts";

const offset = (field: string) =>
  t.Optional(
    t.Number({
      minimum: OFFSET_RANGE[0],
      maximum: OFFSET_RANGE[1],
      error: `${field} must be a number from ${OFFSET_RANGE[0]} to ${OFFSET_RANGE[1]}`,
    }),
  );

/** `POST /devices`: a device put in a room (created from its name when missing). */
const newDevice = t.Object({
  device_uid: idString("device_uid"),
  room_name: text("room_name", 100),
  room_uid: t.Optional(idString("room_uid")),
  label: optionalText("label", 100),
});

/** `PUT /devices/:uid`: a move (optionally back-dated), a label, settings for the sensor. */
const devicePatch = t.Object({
  room_name: t.Optional(text("room_name", 100)),
  // null takes the device out of its room (unplaced).
  room_uid: t.Optional(t.Nullable(idString("room_uid"))),
  label: optionalText("label", 100),
  // Read once the move is known to name a room (see the route).
  moved_at: t.Optional(t.Union([t.String(), t.Number()], { error: "moved_at must be an ISO-8601 time or epoch milliseconds" })),
  interval_s: t.Optional(
    t.Nullable(
      t.Integer({
        minimum: INTERVAL_RANGE[0],
        maximum: INTERVAL_RANGE[1],
        error: "interval_s must be a whole number of seconds 1-3600, or null",
      }),
    ),
  ),
  temperature_offset: offset("temperature_offset"),
  humidity_offset: offset("humidity_offset"),
});

/** Creates the `/devices` routes. */
export function createDevicesApi({ store }: { store: Store }) {
  return new Elysia({ prefix: "/devices" })
    .get("/", () => ({ data: store.listDevices().map(deviceJson) }))
    .get("/:uid", ({ params }) => ({ data: deviceJson(store.getDevice(params.uid)) }))
    .post(
      "/",
      ({ body, set }) => {
        const device = store.createDevice({
          uid: body.device_uid,
          roomName: body.room_name,
          roomUid: body.room_uid,
          label: body.label ?? undefined,
        });
        set.status = 201;
        return {
          data: { device: deviceJson(device), room: { uid: device.room_uid, name: device.room_name } },
          message: "Device provisioned successfully",
        };
      },
      { body: newDevice },
    )
    .put(
      "/:uid",
      ({ params, body }) => {
        // A date without a move means nothing: said before the date itself is read.
        const hasRoom = body.room_name !== undefined || body.room_uid !== undefined;
        if (body.moved_at !== undefined && !hasRoom) throw invalid("moved_at", "needs room_name or room_uid (it dates a move)");
        const movedAt = body.moved_at === undefined ? undefined : parseTime("moved_at", String(body.moved_at));
        // A settings change reaches the sensor through the config publisher (lib/server/mqtt/config-publisher.ts).
        const device = store.updateDevice(params.uid, {
          label: body.label,
          roomUid: body.room_uid,
          roomName: body.room_name,
          movedAt,
          config_interval_s: body.interval_s,
          temperature_offset: body.temperature_offset,
          humidity_offset: body.humidity_offset,
        });
        return {
          data: { device: deviceJson(device), room: device.room_uid ? { uid: device.room_uid, name: device.room_name } : null },
          message: "Device updated successfully",
        };
      },
      { body: devicePatch },
    )
    .delete("/:uid", ({ params }) => {
      store.deleteDevice(params.uid);
      return { message: "Device deleted successfully", uid: params.uid };
    })
    .get("/:uid/placements", ({ params }) => ({ data: store.devicePlacements(params.uid).map(placementJson) }));
}
