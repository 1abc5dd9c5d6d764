// API routes of rooms: list, one with the devices in it now, create, rename,
// delete, and which devices each has held. Mounted under /api/v1 (api.ts).

import { Elysia, t } from "elysia";
import type { Store } from "../../store/store.ts";
import { idString, optionalText, text } from "../params.ts";
import { placementJson, roomJson } from "./json.ts";

/** `POST /rooms`: its uid comes from its name unless given. */
const newRoom = t.Object({
  name: text("name", 100),
  uid: t.Optional(idString("uid")),
  floor: optionalText("floor", 50),
  side: optionalText("side", 50),
});

/** `PUT /rooms/:uid`: a new name, floor or side (null clears them). */
const roomPatch = t.Object({
  name: t.Optional(text("name", 100)),
  floor: optionalText("floor", 50),
  side: optionalText("side", 50),
});

/** Creates the `/rooms` routes. */
export function createRoomsApi({ store }: { store: Store }) {
  return new Elysia({ prefix: "/rooms" })
    .get("/", () => ({ data: store.listRooms().map(roomJson) }))
    .get("/:uid", ({ params }) => {
      const room = store.getRoom(params.uid);
      const inRoom = store.listDevices().filter((d) => d.room_uid === room.uid);
      return { data: { ...roomJson(room), devices: inRoom.map((d) => ({ uid: d.uid, label: d.label })) } };
    })
    .post(
      "/",
      ({ body, set }) => {
        const room = store.createRoom({ name: body.name, uid: body.uid, floor: body.floor, side: body.side });
        set.status = 201;
        return { data: roomJson(room), message: "Room created" };
      },
      { body: newRoom },
    )
    .put("/:uid", ({ params, body }) => ({ data: roomJson(store.updateRoom(params.uid, body)), message: "Room updated" }), {
      body: roomPatch,
    })
    .delete("/:uid", ({ params }) => {
      store.deleteRoom(params.uid);
      return { message: "Room deleted", uid: params.uid };
    })
    .get("/:uid/placements", ({ params }) => ({ data: store.roomPlacements(params.uid).map(placementJson) }));
}
