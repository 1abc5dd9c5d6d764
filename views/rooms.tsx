/** @jsxImportSource @kitajs/html */
// Managing rooms: create one, rename it (with floor and side), delete one
// that has no device in it.

import type { Room } from "../lib/server/store/store.ts";
import { ownFormAttrs } from "./devices.tsx";
import { Layout } from "./layout.tsx";
import { Csrf, esc, Field, Input, type FormState, type Shell } from "./parts.tsx";

/** A room with the number of devices in it now. */
export interface RoomRow {
  room: Room;
  devices: number;
}

/** What the rooms page shows. */
export interface RoomsPageData {
  shell: Shell;
  rooms: RoomRow[];
  create: FormState;
  /** The edit form of one room, when it was just posted (others show the stored values). */
  edit?: { uid: string; form: FormState };
  /** A delete that was refused, with why. */
  deleteError?: { uid: string; message: string };
  /** What was just done ("Room created", …), and where it is said: at the top, in the new-room form, or in a room's section. */
  notice?: string;
  noticeAt?: "top" | "create" | { uid: string };
  /** After a room was created through htmx: the list is swapped out of band (the form that was sent is swapped itself). */
  oob?: boolean;
}

function RoomFields({ form, prefix }: { form: FormState; prefix: string }): JSX.Element {
  return (
    <div class="row">
      <Field label="Name" id={`${prefix}name`} error={form.errors.name} hint="At most 100 characters">
        <Input form={form} name="name" id={`${prefix}name`} />
      </Field>
      <Field label="Floor" id={`${prefix}floor`} error={form.errors.floor} hint="Optional">
        <Input form={form} name="floor" id={`${prefix}floor`} />
      </Field>
      <Field label="Side" id={`${prefix}side`} error={form.errors.side} hint="Optional">
        <Input form={form} name="side" id={`${prefix}side`} />
      </Field>
    </div>
  );
}

function RoomItem({ row, data }: { row: RoomRow; data: RoomsPageData }): JSX.Element {
  const { room } = row;
  const path = `/rooms/${encodeURIComponent(room.uid)}`;
  const editing = data.edit?.uid === room.uid ? data.edit.form : null;
  const form = editing ?? { values: { name: room.name, floor: room.floor ?? "", side: room.side ?? "" }, errors: {} };
  const deleteError = data.deleteError?.uid === room.uid ? data.deleteError.message : null;
  const at = data.noticeAt;
  const notice = data.notice && typeof at === "object" && at.uid === room.uid ? data.notice : null;
  const section = `#manage-${room.uid}`;
  return (
    <section class="panel" id={`manage-${room.uid}`}>
      <h2>
        <a href={path} title={room.name}>
          {esc(room.name)}
        </a>{" "}
        <small>{row.devices === 1 ? "1 device" : `${row.devices} devices`}</small>
      </h2>
      {notice ? (
        <p class="notice" role="status">
          {esc(notice)}
        </p>
      ) : (
        ""
      )}
      {data.shell.canWrite ? (
        <details open={editing || deleteError ? true : undefined}>
          <summary>Rename or delete</summary>
          <form {...ownFormAttrs(path, `rename-${room.uid}`, section)}>
            <Csrf shell={data.shell} />
            <RoomFields form={form} prefix={`${room.uid}-`} />
            <button type="submit">Save</button>
          </form>
          <form {...ownFormAttrs(`${path}/delete`, `delete-${room.uid}`, section)}>
            <Csrf shell={data.shell} />
            <h3>Delete</h3>
            {row.devices > 0 ? (
              <p class="muted">Move its devices to another room first.</p>
            ) : (
              <>
                <p class="muted">Its placement history goes with it; the readings stay with their devices.</p>
                <label class="check">
                  <input type="checkbox" name="confirm" value="yes" /> Yes, delete {esc(room.name)}
                </label>{" "}
              </>
            )}
            <button type="submit" class="danger" disabled={row.devices > 0}>
              Delete
            </button>
            {deleteError ? (
              <div class="error" role="alert">
                {esc(deleteError)}
              </div>
            ) : (
              ""
            )}
          </form>
        </details>
      ) : (
        ""
      )}
    </section>
  );
}

/** The rooms page. */
export function RoomsPage(data: RoomsPageData): JSX.Element {
  return (
    <Layout shell={data.shell} title="Manage rooms" section="rooms">
      <main id="content">
        <h1>Manage rooms</h1>
        {data.notice && (data.noticeAt ?? "top") === "top" ? (
          <p class="notice" role="status">
            {esc(data.notice)}
          </p>
        ) : (
          ""
        )}
        {data.shell.canWrite ? (
          <form {...ownFormAttrs("/rooms", "create-room")} class="panel">
            <Csrf shell={data.shell} />
            <h2>New room</h2>
            {data.notice && data.noticeAt === "create" ? (
              <p class="notice" role="status">
                {esc(data.notice)}
              </p>
            ) : (
              ""
            )}
            <RoomFields form={data.create} prefix="new-" />
            <button type="submit">Create</button>
          </form>
        ) : (
          <p class="muted" id="read-only">
            Only the owner can create, rename or delete rooms.
          </p>
        )}
        <div id="room-list" hx-swap-oob={data.oob ? "true" : undefined}>
          {data.rooms.map((row) => (
            <RoomItem row={row} data={data} />
          ))}
        </div>
      </main>
    </Layout>
  );
}
