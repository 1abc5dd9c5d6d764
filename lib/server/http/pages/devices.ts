// The devices list and a device's page with its forms: place or move it
// (optionally back-dated), its label and sensor settings, and a new MQTT
// password (shown once, never redirected to: a page that could be
// reloaded or cached must not hold it). A plain form post is redirected to
// the device's page; an htmx post gets the page itself, of which htmx takes
// the form that was sent (and, after a change, the summary and placement
// history, marked out of band); a bad form gets the page with the message
// next to the field (422).

import { Elysia, t } from "elysia";
import type { Enrollment } from "../../auth/enrollment.ts";
import type { Store } from "../../store/store.ts";
import { DevicePage, DevicesPage } from "../../../../views/devices.tsx";
import { aboutInput, hasErrors, placeForm, settingsForm } from "./forms.ts";
import type { Models } from "./models.ts";
import { isHtmx, redirect, withStatus, type Respond } from "./page.ts";
import type { Shell } from "../../../../views/parts.tsx";
import type { Zone } from "../../history/zone.ts";

/** Creates `/devices`, `/devices/:uid` and its forms. */
export function createDevicesPages({
  store,
  models,
  respond,
  enrollment,
  zone,
}: {
  store: Store;
  models: Models;
  respond: Respond;
  enrollment: Pick<Enrollment, "newDeviceSecret">;
  zone: Zone;
}) {
  /** After a change: the page itself for htmx, a redirect to the saved form for a plain post. */
  const saved = (request: Request, shell: Shell, uid: string, form: "place" | "settings") =>
    isHtmx(request)
      ? DevicePage(models.device(shell, store.getDevice(uid), { saved: form, oob: true }))
      : redirect(`/devices/${encodeURIComponent(uid)}?saved=${form}#${form}`);

  return (
    new Elysia()
      .get("/devices", ({ request }) => respond(request, (shell) => DevicesPage(models.devices(shell))))
      .get(
        "/devices/:uid",
        ({ request, params, query }) =>
          respond(request, (shell) => {
            const saved = query.saved === "place" || query.saved === "settings" ? query.saved : undefined;
            return DevicePage(models.device(shell, store.getDevice(params.uid), { saved }));
          }),
        { query: t.Object({ saved: t.Optional(t.String()) }) },
      )
      .post("/devices/:uid/place", ({ request, params, body }) =>
        respond(request, (shell) => {
          const d = store.getDevice(params.uid);
          const { form, ...checked } = placeForm(zone).read(body);
          const { room, new_room: newRoom } = form.values as { room: string; new_room: string };
          // What the form cannot know alone: the room must exist, and differ from where the device is.
          if (!newRoom && room && !store.listRooms().some((r) => r.uid === room))
            form.errors.room = "choose a room from the list";
          if (!newRoom && (room || null) === d.room_uid) {
            form.errors.room =
              d.room_uid === null ? "it is in no room already; choose a room" : `it is in ${d.room_name} already`;
          }
          if (checked.ok && !hasErrors(form)) {
            try {
              const movedAt = checked.data.moved_at ?? undefined;
              store.updateDevice(d.uid, { ...(newRoom ? { roomName: newRoom } : { roomUid: room || null }), movedAt });
              return saved(request, shell, d.uid, "place");
            } catch (err) {
              if (!aboutInput(err)) throw err;
              form.errors[err.field === "moved_at" ? "moved_at" : newRoom ? "new_room" : "room"] = err.problem;
            }
          }
          return withStatus(DevicePage(models.device(shell, d, { place: form })), 422);
        }),
      )
      .post("/devices/:uid/settings", ({ request, params, body }) =>
        respond(request, (shell) => {
          const d = store.getDevice(params.uid);
          const { form, ...checked } = settingsForm.read(body);
          if (!checked.ok) return withStatus(DevicePage(models.device(shell, d, { settings: form })), 422);
          const { label, interval_s, temperature_offset, humidity_offset } = checked.data;
          // The config publisher (lib/server/mqtt/config-publisher.ts) carries new settings to the sensor.
          store.updateDevice(d.uid, { label: label || null, config_interval_s: interval_s, temperature_offset, humidity_offset });
          return saved(request, shell, d.uid, "settings");
        }),
      )
      // A new MQTT password for the device, shown once on its page (an earlier agent puts it in its device.conf).
      .post("/devices/:uid/mqtt-password", ({ request, params }) =>
        respond(request, (shell) => {
          const { device, secret } = enrollment.newDeviceSecret(params.uid);
          return DevicePage(models.device(shell, device, { newSecret: { username: device.uid, password: secret } }));
        }),
      )
  );
}
