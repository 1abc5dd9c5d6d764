/** @jsxImportSource @kitajs/html */
// Managing rooms: create one, rename it (with floor and side), delete one
// that has no device in it.

import type { Room } from "../lib/server/store/store.ts";
import { formAttrs } from "./devices.tsx";
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
  /** What was just done ("Room created", …). */
  notice?: string;
}

function RoomFields({ form, prefix }: { form: FormState; prefix: string }): JSX.Element {
  return (
    <div class="row">
      <Field label="Name" id={`${prefix}name`} error={form.errors.name}>
        <Input form={form} name="name" id={`${prefix}name`} maxlength={100} />
      </Field>
      <Field label="Floor" id={`${prefix}floor`} error={form.errors.floor} hint="Optional">
        <Input form={form} name="floor" id={`${prefix}floor`} maxlength={50} />
      </Field>
      <Field label="Side" id={`${prefix}side`} error={form.errors.side} hint="Optional">
        <Input form={form} name="side" id={`${prefix}side`} maxlength={50} />
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
  return (
    <section class="panel" id={`manage-${room.uid}`}>
      <h2>
        <a href={path}>{esc(room.name)}</a> <small>{row.devices === 1 ? "1 device" : `${row.devices} devices`}</small>
      </h2>
      {data.shell.canWrite ? (
        <details open={editing || deleteError ? true : undefined}>
          <summary>Rename or delete</summary>
          <form {...formAttrs(path)}>
            <Csrf shell={data.shell} />
            <RoomFields form={form} prefix={`${room.uid}-`} />
            <button type="submit">Save</button>
          </form>
          <form {...formAttrs(`${path}/delete`)}>
            <Csrf shell={data.shell} />
            <h3>Delete</h3>
            {row.devices > 0 ? (
              <p class="muted">Move its devices to another room first.</p>
            ) : (
              <>
                <p class="muted">Its placement history goes with it; the readings stay with their devices.</p>
                <label>
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
        {data.notice ? (
          <p class="notice" role="status">
            {esc(data.notice)}
          </p>
        ) : (
          ""
        )}
        {data.shell.canWrite ? (
          <form {...formAttrs("/rooms")} class="panel" id="create-room">
            <Csrf shell={data.shell} />
            <h2>New room</h2>
            <RoomFields form={data.create} prefix="new-" />
            <button type="submit">Create</button>
          </form>
        ) : (
          <p class="muted" id="read-only">
            Only the owner can create, rename or delete rooms.
          </p>
        )}
        {data.rooms.map((row) => (
          <RoomItem row={row} data={data} />
        ))}
      </main>
    </Layout>
  );
}
