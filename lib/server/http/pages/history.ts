// A room's page (its live card, history charts over a window, statistics,
// exports and placements) and the comparison of several rooms. The charts are
// drawn in the browser from the API; a bad window shows its problem in the
// range form and answers 400.

import { Elysia, t } from "elysia";
import type { Store } from "../../store/store.ts";
import { ComparePage, RoomPage } from "../../../../views/history.tsx";
import type { Models } from "./models.ts";
import { withStatus, type Respond } from "./page.ts";
import { chartWindow, windowHasErrors, windowQuery } from "./window.ts";
import type { Zone } from "../../history/zone.ts";

/** Creates `/rooms/:uid` and `/compare`. */
export function createHistoryPages({
  store,
  models,
  respond,
  now,
  zone,
}: {
  store: Store;
  models: Models;
  respond: Respond;
  now: () => number;
  zone: Zone;
}) {
  return new Elysia()
    .get(
      "/rooms/:uid",
      ({ request, params, query }) =>
        respond(request, (shell) => {
          const room = store.getRoom(params.uid);
          const at = now();
          const window = chartWindow(query, `/rooms/${encodeURIComponent(room.uid)}`, {}, at, zone);
          return withStatus(RoomPage(models.room(shell, room, window, at)), windowHasErrors(window) ? 400 : 200);
        }),
      { query: t.Object(windowQuery) },
    )
    .get(
      "/compare",
      ({ request, query }) =>
        respond(request, (shell) => {
          const choice = models.roomChoice(query.rooms ?? []);
          const at = now();
          const window = chartWindow(query, "/compare", { rooms: choice.selected.map((r) => r.uid).join(",") }, at, zone);
          const bad = choice.unknown.length > 0 || windowHasErrors(window);
          return withStatus(ComparePage(models.compare(shell, choice, window)), bad ? 400 : 200);
        }),
      // `rooms` may come several times (checkboxes) or as one comma-separated list (links).
      { query: t.Object({ rooms: t.Optional(t.Array(t.String())), ...windowQuery }) },
    );
}
