// API routes of readings: the latest per device (from the live cache), a
// device's or a room's readings as the earlier `/readings` gave them (newest
// first, raw or hourly/daily buckets), and chart series (oldest first, the
// tier chosen from a point budget). Mounted under /api/v1 (api.ts).

import { Elysia, t, type Static } from "elysia";
import type { History, Target } from "../../history/history.ts";
import type { Live } from "../../live/live.ts";
import type { Store } from "../../store/store.ts";
import { BUCKETS, choiceParam, integerParam, iso, range, rangeParams } from "../params.ts";
import { historyJson, pointJson } from "./json.ts";

const DAY = 86_400_000;

/** `?from&to&limit&bucket` of `/readings` (the earlier server's). */
const seriesQuery = t.Object({
  limit: t.Optional(integerParam("limit", 1, 10000)),
  ...rangeParams(),
  bucket: t.Optional(choiceParam("bucket", BUCKETS)),
});

/** `?from&to&points&bucket` of `/history`: `auto` picks the tier that fits the points. */
const chartQuery = t.Object({
  ...rangeParams(),
  points: t.Optional(integerParam("points", 10, 10000)),
  bucket: t.Optional(choiceParam("bucket", ["auto", ...BUCKETS], BUCKETS)),
});

/** What the readings routes read. */
export interface ReadingsApiDeps {
  store: Store;
  history: Pick<History, "chart" | "series">;
  /** The live summaries, which hold every device's latest reading. */
  live: Pick<Live, "latest">;
}

/** Creates the readings and chart routes of devices and rooms, and `/readings/latest`. */
export function createReadingsApi({ store, history, live }: ReadingsApiDeps) {
  /** A chart series: the last 24 h and 800 points unless asked otherwise. */
  function chart(target: Target, query: Static<typeof chartQuery>) {
    const now = store.now();
    const { from, to } = range(query, { from: now - DAY, to: now });
    const { bucket, points } = history.chart(target, { from, to, points: query.points ?? 800, bucket: query.bucket ?? "auto" });
    return { data: historyJson(points, bucket, from, to) };
  }

  /** The earlier `/readings`: every time unless bounded, newest first. */
  function series(target: Target, query: Static<typeof seriesQuery>, limit: number, withDevice: boolean) {
    const { from, to } = range(query, { from: 0, to: Number.MAX_SAFE_INTEGER });
    const points = history.series(target, { from, to, limit: query.limit ?? limit, bucket: query.bucket ?? "raw" });
    return { data: points.map((p) => pointJson(p, withDevice)) };
  }

  // The target is looked up before the query is checked (`derive` runs first):
  // an unknown device or room is a 404 whatever else is wrong with the request.
  const devices = new Elysia({ prefix: "/devices/:uid" })
    .derive(({ params }) => {
      const d = store.getDevice(params.uid);
      return { target: { kind: "device", id: d.id, uid: d.uid } as Target };
    })
    .get("/history", ({ target, query }) => chart(target, query), { query: chartQuery })
    .get("/readings", ({ target, query }) => series(target, query, 10, false), { query: seriesQuery });

  const rooms = new Elysia({ prefix: "/rooms/:uid" })
    .derive(({ params }) => ({ target: { kind: "room", id: store.getRoom(params.uid).id } as Target }))
    .get("/history", ({ target, query }) => chart(target, query), { query: chartQuery })
    .get("/readings", ({ target, query }) => series(target, query, 1000, true), { query: seriesQuery });

  return new Elysia()
    .use(devices)
    .use(rooms)
    .get(
      "/readings/latest",
      ({ query }) => {
        let list = store.listDevices();
        if (query.deviceId !== undefined) list = list.filter((d) => d.uid === query.deviceId);
        const out = list
          .map((d) => live.latest(d))
          .filter((r) => r !== null)
          .filter((r) => query.roomId === undefined || r.room_uid === query.roomId)
          .map((r) => ({
            device_id: r.device_uid,
            room_id: r.room_uid,
            ts: iso(r.ts),
            temperature: r.temperature,
            humidity: r.humidity,
          }));
        return { data: out };
      },
      { query: t.Object({ deviceId: t.Optional(t.String()), roomId: t.Optional(t.String()) }) },
    );
}
