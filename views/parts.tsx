/** @jsxImportSource @kitajs/html */
// Small pieces shared by the pages: number and time formats, the status
// badge, "… ago", the sparkline, form fields. Pure functions of their data.
//
// With @kitajs/html, text children are NOT escaped: every string that came
// from a sensor, a form or the database goes through `esc` (or `safe`).
// Attribute values are written in double quotes with `"` escaped by
// @kitajs/html itself. test/web-views.test.ts renders every view with
// hostile text to prove it.

import { escapeHtml } from "@kitajs/html";
import type { AssetUrls } from "../lib/server/http/assets.ts";
import type { Freshness } from "../lib/server/live/freshness.ts";
import type { Placement } from "../lib/server/store/store.ts";

/** Escapes text for HTML. */
export const esc = (value: string | number | null | undefined): string => (value == null ? "" : escapeHtml(String(value)));

/** Who is looking at a page. */
export interface Viewer {
  /** A signed-in account, the kiosk link's session, an API token (curl), or nobody. */
  kind: "session" | "kiosk" | "token" | "anonymous";
  /** The account's (or token's) name. */
  name: string | null;
  role: "owner" | "viewer" | null;
  /** The session's CSRF token, sent back with every form and htmx request; null without a session. */
  csrf: string | null;
}

/** A warning at the top of every page (to the owner: settings that open the door; to all: no owner yet). */
export interface Banner {
  /** Stable name, for tests and styles: `setup`, `public_read`, `accept_anonymous_sensors`, `certificate`. */
  id: string;
  text: string;
  /** A one-click form (e.g. "Turn off"): where it posts and what. */
  action?: { path: string; fields: Record<string, string>; label: string };
  /** A link to where it is explained or fixed. */
  link?: { href: string; label: string };
}

/** What every page needs besides its own data. */
export interface Shell {
  assets: AssetUrls;
  /** The server's clock when the page is rendered (epoch ms). */
  now: number;
  /** The home's time zone (IANA name): every time on the page is its wall clock, whatever the browser's zone. */
  timeZone: string;
  viewer: Viewer;
  /** Whether the forms that change things are shown (the owner signed in); viewers see the pages read-only. */
  canWrite: boolean;
  banners: Banner[];
}

/** A shell for nobody in particular (no session, no banner): bench/pages.ts and the view tests. */
export const plainShell = (assets: AssetUrls, now: number, timeZone = "UTC"): Shell => ({
  assets,
  now,
  timeZone,
  viewer: { kind: "anonymous", name: null, role: null, csrf: null },
  canWrite: true,
  banners: [],
});

/** The hidden CSRF field every form carries (the server refuses a post without it). */
export function Csrf({ shell }: { shell: Shell }): JSX.Element {
  return shell.viewer.csrf === null ? "" : <input type="hidden" name="_csrf" value={shell.viewer.csrf} />;
}

/** A form's state: what the person typed and a message per field. */
export interface FormState {
  values: Record<string, string>;
  errors: Record<string, string>;
}

/** An empty form with these starting values. */
export const freshForm = (values: Record<string, string> = {}): FormState => ({ values, errors: {} });

/** 21.4 */
export const fmtTemp = (v: number): string => v.toFixed(1);

/**
 * A temperature in °C (stored values stay °C). static/app.js shows it in °F
 * when this browser chose °F: the number carries its value (data-c, or
 * data-dc for a difference, which has no 32 to add) and the unit is its own
 * element (class tu).
 */
export function Temp(props: { c: number; unit?: boolean; delta?: boolean; digits?: number }): JSX.Element {
  const digits = props.digits ?? 1;
  const sign = props.delta && props.c > 0 ? "+" : "";
  return (
    <>
      <span
        data-c={props.delta ? undefined : String(props.c)}
        data-dc={props.delta ? String(props.c) : undefined}
        data-digits={digits === 1 ? undefined : String(digits)}
      >
        {sign + props.c.toFixed(digits)}
      </span>
      {props.unit === false ? "" : <span class="tu"> °C</span>}
    </>
  );
}
/** 48 */
export const fmtHum = (v: number): string => Math.round(v).toString();

/**
 * How a time is written: "dt" 28 Nov, 14:05 (with the year when it is not
 * this year's), "t" 14:05, "d" 28 Nov 2026, "m" November 2026. The server
 * writes them in British English, 24-hour, in the home's zone; the page's
 * script (static/app.js) writes them again in the browser's language and
 * clock (12-hour only where the language uses it), still in the home's zone.
 */
export type TimeStyle = "dt" | "t" | "d" | "m";

const STYLES: Record<TimeStyle | "dty", Intl.DateTimeFormatOptions> = {
  dt: { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
  dty: { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
  t: { hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
  d: { day: "numeric", month: "short", year: "numeric" },
  m: { month: "long", year: "numeric" },
};
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(style: TimeStyle | "dty", timeZone: string): Intl.DateTimeFormat {
  const key = `${style} ${timeZone}`;
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.DateTimeFormat("en-GB", { ...STYLES[style], timeZone })));
  return f;
}

/** "28 Nov, 14:05" in the home's zone (`timeZone`); the year is shown when it is not this year's. */
export function fmtTime(ms: number, now: number, timeZone: string, style: TimeStyle = "dt"): string {
  if (style !== "dt") return formatter(style, timeZone).format(ms);
  const year = formatter("m", timeZone);
  const sameYear = year.format(ms).slice(-4) === year.format(now).slice(-4);
  return formatter(sameYear ? "dt" : "dty", timeZone).format(ms);
}

/** A time in the home's zone, rewritten by static/app.js in the browser's language (data-fmt). */
export function Time(props: { ts: number; now: number; tz: string; style?: TimeStyle }): JSX.Element {
  const style = props.style ?? "dt";
  return (
    <time datetime={new Date(props.ts).toISOString()} data-fmt={style}>
      {fmtTime(props.ts, props.now, props.tz, style)}
    </time>
  );
}

/**
 * How "… ago" is worded: the first step whose bound the age is below gives
 * the unit to divide by (0 = no number) and the words after it. The page's
 * script (static/app.js) reads this same table from the page to keep the
 * wording current without a reload.
 */
export const AGO_STEPS: readonly (readonly [below: number, unit: number, words: string])[] = [
  [10_000, 0, "just now"],
  [60_000, 1000, " s ago"],
  [3_600_000, 60_000, " min ago"],
  [48 * 3_600_000, 3_600_000, " h ago"],
  [Number.MAX_SAFE_INTEGER, 86_400_000, " days ago"],
];

/** "just now", "42 s ago", "2 min ago", "5 h ago", "3 days ago". A time in the future is "just now". */
export function formatAgo(ts: number, now: number): string {
  const age = Math.max(0, now - ts);
  const [, unit, words] = AGO_STEPS.find(([below]) => age < below) ?? AGO_STEPS[AGO_STEPS.length - 1]!;
  return unit === 0 ? words : `${Math.floor(age / unit)}${words}`;
}

/** "2 min ago", kept current by static/app.js (the exact time on hover). */
export function Ago({ ts, now, tz }: { ts: number; now: number; tz: string }): JSX.Element {
  return (
    <time datetime={new Date(ts).toISOString()} data-ago={String(ts)} title={fmtTime(ts, now, tz)}>
      {formatAgo(ts, now)}
    </time>
  );
}

/**
 * The status badge. It carries the instants it turns late and offline, so
 * static/app.js can change it as time passes without asking the server.
 */
export function StatusBadge({ f }: { f: Freshness }): JSX.Element {
  const text = f.status === "never" ? "no readings yet" : f.status;
  return (
    <span
      class={`status ${f.status}`}
      data-late-at={f.lateAt === null ? undefined : String(f.lateAt)}
      data-offline-at={f.offlineAt === null ? undefined : String(f.offlineAt)}
    >
      {text}
    </span>
  );
}

/**
 * A sparkline as inline SVG: one path through the non-null values, lifted
 * (a new "M") across nulls so missing data stays a gap.
 */
export function Sparkline({ values, label }: { values: (number | null)[]; label: string }): JSX.Element {
  const present = values.filter((v): v is number => v !== null);
  if (present.length === 0) return "";
  const min = Math.min(...present);
  const max = Math.max(...present);
  const span = max - min || 1;
  const height = 30;
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    const y = (height - 2 - ((v - min) / span) * (height - 4)).toFixed(1);
    d += `${pen ? "L" : "M"}${i} ${y}`;
    // A lone point between gaps still shows, as a short flat stroke.
    if (!pen && (values[i + 1] ?? null) === null) d += `h0.6`;
    pen = true;
  });
  return (
    <svg class="spark" viewBox={`0 0 ${values.length - 1} ${height}`} preserveAspectRatio="none" role="img" aria-label={label}>
      <path d={d} />
    </svg>
  );
}

/** A labelled form field with its error message (if any) right below the input. */
export function Field(props: { label: string; id: string; error?: string; hint?: string; children: JSX.Element }): JSX.Element {
  return (
    <div class="field">
      <label for={props.id}>{esc(props.label)}</label>
      {props.children}
      {props.hint ? <span class="hint">{esc(props.hint)}</span> : ""}
      {props.error ? (
        <span class="error" id={`${props.id}-error`} role="alert">
          {esc(props.error)}
        </span>
      ) : (
        ""
      )}
    </div>
  );
}

/** A text-like input bound to a form state: keeps what was typed and marks an error. */
export function Input(props: {
  form: FormState;
  name: string;
  /** Element id (default the name); distinct when a page has several forms with the same fields. */
  id?: string;
  type?: string;
  placeholder?: string;
  step?: string;
}): JSX.Element {
  const error = props.form.errors[props.name];
  const id = props.id ?? props.name;
  return (
    <input
      id={id}
      name={props.name}
      type={props.type ?? "text"}
      value={props.form.values[props.name] ?? ""}
      placeholder={props.placeholder}
      step={props.step}
      aria-invalid={error ? "true" : undefined}
      aria-describedby={error ? `${id}-error` : undefined}
    />
  );
}

/**
 * Placements, newest first, as a table: of a device (a column of rooms) or of
 * a room (a column of devices, named by `labels`).
 */
export function PlacementTable(props: {
  placements: Placement[];
  of: "device" | "room";
  labels?: Record<string, string>;
  now: number;
  tz: string;
}): JSX.Element {
  const head = props.of === "device" ? "Room" : "Device";
  return (
    <table class="stack" id="placements">
      <thead>
        <tr>
          <th>{head}</th>
          <th>From</th>
          <th>Until</th>
        </tr>
      </thead>
      <tbody>
        {props.placements
          .slice()
          .reverse()
          .map((p) => (
            <tr>
              <td data-label={head}>
                {props.of === "device" ? (
                  <a href={`/rooms/${encodeURIComponent(p.room_uid)}`}>{esc(p.room_name)}</a>
                ) : (
                  <a href={`/devices/${encodeURIComponent(p.device_uid)}`}>{esc(props.labels?.[p.device_uid] ?? p.device_uid)}</a>
                )}
              </td>
              <td data-label="From">
                <Time ts={p.from_ts} now={props.now} tz={props.tz} />
              </td>
              <td data-label="Until">{p.to_ts === null ? "now" : <Time ts={p.to_ts} now={props.now} tz={props.tz} />}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}
