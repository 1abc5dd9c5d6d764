// The pages' forms, as TypeBox schemas (Elysia's `t`) like the API's input:
// each field a schema whose message says what to fix, without the field's
// name (the page shows it next to the field). A form is read from the posted
// body as trimmed text and checked field by field, so the page can show every
// problem at once and keep what was typed; the routes answer it with 422.
// What a schema cannot know (a room that must exist, a move to where the
// device already is) the route checks against the store and adds.

import { getSchemaValidator, t, type Static, type TSchema } from "elysia";
import { INTERVAL_RANGE, OFFSET_RANGE } from "../../../shared/contract.ts";
import { DomainError, invalid } from "../../../shared/errors.ts";
import { decodedText, parseTime } from "../params.ts";
import type { FormState } from "../../../../views/parts.tsx";
import type { Zone } from "../../history/zone.ts";

/** A form's fields by name. */
export type Fields = Record<string, TSchema>;

/** Every field of a form, decoded. */
export type FormData<F extends Fields> = { [K in keyof F]: Static<F[K]> };

/** A form as checked: what was typed with a problem per field, and the decoded values (every one once `ok`). */
export type CheckedForm<F extends Fields> = { form: FormState } & (
  { ok: true; data: FormData<F> } | { ok: false; data: Partial<FormData<F>> }
);

/** Whether a form has a problem in any field. */
export const hasErrors = (form: FormState): boolean => Object.keys(form.errors).length > 0;

/** Whether an error the store threw is about the input (the form shows it) rather than a fault. */
export const aboutInput = (err: unknown): err is DomainError =>
  err instanceof DomainError && (err.kind === "invalid" || err.kind === "not_found" || err.kind === "conflict");

/** A value of the posted body as text ("" when absent), trimmed unless told (a password is taken as typed). */
function textOf(body: unknown, name: string, trim = true): string {
  const v = body !== null && typeof body === "object" ? (body as Record<string, unknown>)[name] : undefined;
  if (typeof v === "string") return trim ? v.trim() : v;
  if (typeof v === "number") return String(v);
  return "";
}

/** What a field's decoder threw, as the problem to show; anything but bad input is a fault. */
function problemOf(err: unknown): string {
  // Elysia's validators wrap what a decoder throws (TypeBox's TransformDecodeError keeps it as `error`).
  const cause = err instanceof DomainError ? err : (err as { error?: unknown }).error;
  if (cause instanceof DomainError && cause.kind === "invalid") return cause.problem;
  throw err;
}

/** A form: its fields compiled once, to check what a page sends. `untrimmed` fields are read as typed (passwords). */
export function defineForm<F extends Fields>(fields: F, options: { untrimmed?: (keyof F & string)[] } = {}) {
  const untrimmed = new Set<string>(options.untrimmed ?? []);
  const checks = Object.entries(fields).map(([name, schema]) => [name, getSchemaValidator(schema)] as const);

  /** Checks text values (a missing one is ""). */
  function check(values: Record<string, string>): CheckedForm<F> {
    const form: FormState = { values, errors: {} };
    const data: Record<string, unknown> = {};
    for (const [name, validator] of checks) {
      const value = values[name] ?? "";
      if (!validator.Check(value)) {
        const first = validator.Errors(value).First() as { message: string; schema: { error?: string } } | undefined;
        form.errors[name] = first?.schema.error ?? first?.message ?? "is not valid";
        continue;
      }
      try {
        data[name] = validator.Decode(value);
      } catch (err) {
        form.errors[name] = problemOf(err);
      }
    }
    return { form, ok: !hasErrors(form), data } as CheckedForm<F>;
  }

  return {
    check,
    /** Reads and checks a posted body (form-encoded, or anything else: then every field is empty). */
    read: (body: unknown): CheckedForm<F> =>
      check(Object.fromEntries(checks.map(([name]) => [name, textOf(body, name, !untrimmed.has(name))]))),
  };
}

/** Text of at most `max` characters; `required` is what to say when it is empty. */
export function textField(field: string, max: number, required?: string) {
  const text = t.String({ maxLength: max, error: `at most ${max} characters` });
  if (required === undefined) return text;
  return t
    .Transform(text)
    .Decode((value) => {
      if (value === "") throw invalid(field, required);
      return value;
    })
    .Encode((value) => value);
}

const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?$/;

/**
 * Parses a time from a form or a link: `2026-11-28T14:05` (what
 * <input type="datetime-local"> sends) is the home's wall clock (`zone`,
 * whatever the browser's zone); an ISO time with a zone or epoch milliseconds
 * are exact. A wall-clock time the DST change skipped is refused with the
 * time to use; one it repeated is the earlier of the two.
 */
function parseFormTime(name: string, value: string, zone: Zone): number {
  if (LOCAL_TIME.test(value)) {
    const [date, time] = value.split("T") as [string, string];
    const [y, mo, d] = date.split("-").map(Number) as [number, number, number];
    const [h, mi, s] = time.split(":").map(Number) as [number, number, number?];
    const valid = mo >= 1 && mo <= 12 && d >= 1 && d <= new Date(Date.UTC(y, mo, 0)).getUTCDate() && h < 24 && mi < 60;
    if (valid && (s ?? 0) < 60) {
      const at = zone.fromLocal(y, mo, d, h, mi, s ?? 0);
      if (at.kind !== "gap") return at.ms;
      throw invalid(
        name,
        `${JSON.stringify(value)} does not exist in ${zone.name} (the clocks went forward); use ${zone.inputValue(at.ms)}`,
      );
    }
  } else if (/\d{4}-\d{2}-\d{2}T.*(?:Z|[+-]\d{2}:?\d{2})$/.test(value) || /^\d{1,16}$/.test(value)) {
    try {
      return parseTime(name, value);
    } catch {}
  }
  throw invalid(name, `${JSON.stringify(value)} is not a date and time; use the form 2026-11-28T14:05`);
}

/** A time as `parseFormTime` reads it in `zone`; "" is none (null). */
export const timeField = (field: string, zone: Zone) =>
  decodedText((value) => (value === "" ? null : parseFormTime(field, value, zone)));

/** One form per zone, built once (its fields compiled once). */
export function perZone<T>(build: (zone: Zone) => T): (zone: Zone) => T {
  const built = new Map<string, T>();
  return (zone) => {
    let form = built.get(zone.name);
    if (form === undefined) built.set(zone.name, (form = build(zone)));
    return form;
  };
}

/** Seconds between readings, within the contract's range; "" leaves it to the device (null). */
const intervalField = (field: string) =>
  decodedText((value) => {
    if (value === "") return null;
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(n >= INTERVAL_RANGE[0] && n <= INTERVAL_RANGE[1])) {
      throw invalid(field, `a whole number of seconds from ${INTERVAL_RANGE[0]} to ${INTERVAL_RANGE[1]}, or empty`);
    }
    return n;
  });

/** A calibration offset within the contract's range; "" is 0. */
const offsetField = (field: string) =>
  decodedText((value) => {
    // A decimal comma is fine too (0,5): half of the homes write it that way.
    const n = value === "" ? 0 : /^[+-]?(\d+([.,]\d*)?|[.,]\d+)$/.test(value) ? Number(value.replace(",", ".")) : NaN;
    if (!(n >= OFFSET_RANGE[0] && n <= OFFSET_RANGE[1]))
      throw invalid(field, `a number from ${OFFSET_RANGE[0]} to ${OFFSET_RANGE[1]}`);
    return n;
  });

/** Creating or renaming a room: a name (at most 100 characters), floor and side optional (at most 50). */
export const roomForm = defineForm({
  name: textField("name", 100, "give the room a name"),
  floor: textField("floor", 50),
  side: textField("side", 50),
});

/** Deleting a room: the box must be ticked. */
export const deleteRoomForm = defineForm({ confirm: t.Literal("yes", { error: "tick the box to confirm" }) });

/** Placing or moving a device: a room of the list ("" = none) or a new room's name, and when (default now, in the home's zone). */
export const placeForm = perZone((zone) =>
  defineForm({
    room: t.String(),
    new_room: textField("new_room", 100),
    moved_at: timeField("moved_at", zone),
  }),
);

/** A device's label and the settings its sensor gets (interval, calibration). */
export const settingsForm = defineForm({
  label: textField("label", 100),
  interval_s: intervalField("interval_s"),
  temperature_offset: offsetField("temperature_offset"),
  humidity_offset: offsetField("humidity_offset"),
});
