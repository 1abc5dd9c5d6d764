// The time window of a chart page (a room's, the comparison), from its query
// string: a preset (`range`, ending at `end` or now) or a custom `from`/`to`
// as typed in the page's range form. A bad value falls back to the preset
// window (the last 24 h unless `range` chose another) and says what is wrong
// next to the field; the page then answers 400.

import { t } from "elysia";
import type { ChartWindow } from "../../../../views/history.tsx";
import type { FormState } from "../../../../views/parts.tsx";
import type { Zone } from "../../history/zone.ts";
import { choiceParam, iso } from "../params.ts";
import { defineForm, hasErrors, perZone, timeField } from "./forms.ts";

const DAY = 86_400_000;
/** The chart windows offered, as [query value, label, length]. */
const RANGES: [string, string, number][] = [
  ["24h", "24 h", DAY],
  ["7d", "7 d", 7 * DAY],
  ["30d", "30 d", 30 * DAY],
  ["90d", "90 d", 90 * DAY],
  ["1y", "1 y", 365 * DAY],
];
/** Points a chart asks for: 24 h of 1-minute readings still come raw, longer windows as hourly/daily buckets. */
const CHART_POINTS = 1500;

/** The last 24 hours up to `at` (a device's page). */
export const lastDay = (at: number): ChartWindow => ({
  from: at - DAY,
  to: at,
  presets: [],
  back: "",
  forward: null,
  custom: { values: {}, errors: {} },
  points: CHART_POINTS,
});

/**
 * The window's part of a chart page's query schema: text that Elysia passes
 * on as it is, so that `chartWindow` can show a problem next to its field
 * instead of refusing the page.
 */
export const windowQuery = {
  range: t.Optional(t.String()),
  from: t.Optional(t.String()),
  to: t.Optional(t.String()),
  end: t.Optional(t.String()),
};

/** The window's fields, checked like a form's; a time without a zone is the home's wall clock. */
const windowForm = perZone((zone) =>
  defineForm({
    range: choiceParam(
      "range",
      RANGES.map(([key]) => key),
    ),
    from: timeField("from", zone),
    to: timeField("to", zone),
    end: timeField("end", zone),
  }),
);

/** Whether the window's query had a problem (the page answers 400). */
export const windowHasErrors = (window: ChartWindow): boolean => hasErrors(window.custom);

/**
 * The chart window from the query, at `at` (now): links to the presets and
 * one window back and forward keep `keep` (the comparison's rooms) and point
 * at `base`.
 */
export function chartWindow(
  query: { range?: string; from?: string; to?: string; end?: string },
  base: string,
  keep: Record<string, string>,
  at: number,
  zone: Zone,
): ChartWindow {
  const link = (q: Record<string, string>) => `${base}?${new URLSearchParams({ ...keep, ...q })}`;
  const typed = windowForm(zone).check({
    range: query.range ?? "24h",
    from: query.from ?? "",
    to: query.to ?? "",
    end: query.end ?? "",
  });
  const custom: FormState = { values: { from: query.from ?? "", to: query.to ?? "" }, errors: {} };
  let key: string | null = typed.data.range ?? "24h";
  if (typed.form.errors.range !== undefined) custom.errors.from = `range ${typed.form.errors.range}`;
  let span = RANGES.find(([k]) => k === key)![2];
  let to = at;
  let from = at - span;
  if (custom.values.from || custom.values.to) {
    // An empty From is missing; an empty To is now.
    const pick = (name: "from" | "to", fallback: number | null): number | null => {
      if (custom.values[name] === "") {
        if (fallback === null) custom.errors[name] = "choose a date and time";
        return fallback;
      }
      const problem = typed.form.errors[name];
      if (problem !== undefined) custom.errors[name] = problem;
      return typed.data[name] ?? null;
    };
    const fromMs = pick("from", null);
    const toMs = pick("to", at);
    if (fromMs !== null && toMs !== null && fromMs >= toMs) custom.errors.to = "must be after From";
    if (!hasErrors(custom)) {
      from = fromMs!;
      to = toMs!;
      span = to - from;
      key = null;
    }
  } else if (query.end) {
    if (typed.form.errors.end !== undefined) custom.errors.to = typed.form.errors.end;
    else {
      to = Math.min(typed.data.end!, at);
      from = to - span;
    }
  }
  if (!hasErrors(custom)) custom.values = { from: zone.inputValue(from), to: zone.inputValue(to) };
  const shifted = (by: number) =>
    key === null
      ? link({ from: iso(from + by)!, to: iso(to + by)! })
      : to + by >= at
        ? link({ range: key })
        : link({ range: key, end: iso(to + by)! });
  return {
    from,
    to,
    presets: RANGES.map(([k, label]) => ({ label, href: link({ range: k }), current: k === key })),
    back: shifted(-span),
    forward: to >= at ? null : shifted(span),
    custom,
    points: CHART_POINTS,
  };
}
