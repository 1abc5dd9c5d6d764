// Managing rooms: the list with a form to create one, and per room a form to
// rename it (floor, side) and one to delete it. A plain form post is
// redirected to the list with a notice; an htmx post gets the page, of which
// htmx takes the form that was sent (a room's forms: its section; a new room:
// the form, and the list out of band); a bad form gets the page with the
// message next to the field (422).

import { Elysia, t } from "elysia";
import type { Store } from "../../store/store.ts";
import { RoomsPage } from "../../../../views/rooms.tsx";
import { aboutInput, deleteRoomForm, roomForm } from "./forms.ts";
import type { Models } from "./models.ts";
import { isHtmx, redirect, withStatus, type Respond } from "./page.ts";
import type { Shell } from "../../../../views/parts.tsx";

/** Saved-state notices of the rooms page (after a redirect). */
const ROOM_NOTICES: Record<string, string> = { created: "Room created.", saved: "Room saved.", deleted: "Room deleted." };

/** Creates `/rooms` and the rooms' forms. */
export function createRoomsPages({ store, models, respond }: { store: Store; models: Models; respond: Respond }) {
  const done = (request: Request, shell: Shell, what: "created" | "saved" | "deleted", uid: string) =>
    isHtmx(request)
      ? RoomsPage(
          models.rooms(shell, {
            notice: ROOM_NOTICES[what],
            noticeAt: what === "saved" ? { uid } : "create",
            oob: what === "created",
          }),
        )
      : redirect(`/rooms?done=${what}`);

  return new Elysia()
    .get(
      "/rooms",
      ({ request, query }) =>
        respond(request, (shell) => RoomsPage(models.rooms(shell, { notice: ROOM_NOTICES[query.done ?? ""] }))),
      {
        query: t.Object({ done: t.Optional(t.String()) }),
      },
    )
    .post("/rooms", ({ request, body }) =>
      respond(request, (shell) => {
        const { form, ...checked } = roomForm.read(body);
        if (checked.ok) {
          const { name, floor, side } = checked.data;
          try {
            const room = store.createRoom({ name, floor: floor || null, side: side || null });
            return done(request, shell, "created", room.uid);
          } catch (err) {
            if (!aboutInput(err)) throw err;
            // "room_name: must contain a letter" or "room "x" already exists": both are about the name.
            form.errors.name = err.problem;
          }
        }
        return withStatus(RoomsPage(models.rooms(shell, { create: form })), 422);
      }),
    )
    .post("/rooms/:uid", ({ request, params, body }) =>
      respond(request, (shell) => {
        store.getRoom(params.uid);
        const { form, ...checked } = roomForm.read(body);
        if (!checked.ok) return withStatus(RoomsPage(models.rooms(shell, { edit: { uid: params.uid, form } })), 422);
        const { name, floor, side } = checked.data;
        store.updateRoom(params.uid, { name, floor: floor || null, side: side || null });
        return done(request, shell, "saved", params.uid);
      }),
    )
    .post("/rooms/:uid/delete", ({ request, params, body }) =>
      respond(request, (shell) => {
        store.getRoom(params.uid);
        const { form, ok } = deleteRoomForm.read(body);
        let message = form.errors.confirm ?? "";
        if (ok) {
          try {
            store.deleteRoom(params.uid);
            return done(request, shell, "deleted", params.uid);
          } catch (err) {
            if (!aboutInput(err)) throw err;
            message = err.message;
          }
        }
        return withStatus(RoomsPage(models.rooms(shell, { deleteError: { uid: params.uid, message } })), 422);
      }),
    );
}
