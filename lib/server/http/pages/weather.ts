// GET /api/v1/weather: the outdoor weather's cached hours for the charts
// (static/chart.js draws them beside the rooms), and what the dashboard says
// about it. Times in ISO-8601 UTC like the rest of the API.

import { Elysia, t } from "elysia";
import type { Weather } from "../../weather/weather.ts";
import { decodedText, iso, parseTime, range } from "../params.ts";

const DAY = 86_400_000;
/** Most days one request may ask for (hourly points: ~9 600). */
const MAX_DAYS = 400;

const timeParam = (field: string) => decodedText((value) => parseTime(field, value));

/** Creates GET /api/v1/weather. */
export function createWeatherApi({ weather, now }: { weather: Pick<Weather, "hours" | "now"> | null; now: () => number }) {
  return new Elysia().get(
    "/api/v1/weather",
    ({ query }) => {
      const at = now();
      const { from, to } = range(query, { from: at - DAY, to: at });
      if (weather === null) return { data: { enabled: false, current: null, problem: null, points: [] } };
      const clipped = Math.max(from, to - MAX_DAYS * DAY);
      const state = weather.now();
      return {
        data: {
          enabled: true,
          from: iso(clipped),
          to: iso(to),
          current: state.current && { ...state.current, ts: iso(state.current.ts) },
          problem: state.problem && { message: state.problem.message, since: iso(state.problem.since) },
          points: weather.hours(clipped, to).map((p) => ({ ...p, ts: iso(p.ts) })),
        },
      };
    },
    {
      query: t.Object({
        from: t.Optional(timeParam("from")),
        to: t.Optional(timeParam("to")),
      }),
    },
  );
}
