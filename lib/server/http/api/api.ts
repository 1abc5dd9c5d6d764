// The JSON API v1, compatible with the earlier server: `{"data": …}` on
// success, `{"error": "message"}` with a 4xx/5xx status otherwise, times as
// ISO-8601 UTC strings, CORS open (dashboards and Grafana call it from other
// origins). Routes are thin: validate, call the store, shape the JSON.

import { Elysia, t } from "elysia";
import { ID_PATTERN, INTERVAL_RANGE, OFFSET_RANGE } from "../../../shared/contract.ts";
import { DomainError, invalid } from "../../../shared/errors.ts";
import { HTTP_STATUS } from "../errors.ts";
import { iso, parseBucket, parseInteger, parseRange, parseTime } from "../params.ts";
import { createHistoryApi } from "./history.ts";
import type { Bucket, BucketPoint, History, RawPoint } from "../../history/history.ts";
import type { Exporter } from "../../history/export.ts";
import type { Stats } from "../../history/stats.ts";
import type { Live } from "../../live/live.ts";
import type { Device, Placement, Room, Store } from "../../store/store.ts";
import type { Broker } from "../../mqtt/broker.ts";
import type { Ingest } from "../../mqtt/ingest.ts";
import type { Log } from "../../../shared/log.ts";

/** What the API needs from the rest of the server. */
export interface ApiDeps {
  store: Store;
  history: Pick<History, "chart" | "series">;
  stats: Pick<Stats, "device" | "room">;
  exporter: Exporter;
  /** The live summaries, which hold every device's latest reading. */
  live: Pick<Live, "latest">;
  broker: Pick<Broker, "listening" | "stats" | "connectedClients" | "queuedMessages">;
  ingest: Pick<Ingest, "failing" | "stats" | "pending">;
}

const idString = (what: string) =>
  t.String({ pattern: ID_PATTERN.source, error: `${what} must be 1-50 characters of A-Z a-z 0-9 _ -` });
const text = (field: string, max: number) =>
  t.String({ minLength: 1, maxLength: max, error: `${field} must be a non-empty string of at most ${max} characters` });
const optionalText = (field: string, max: number) =>
  t.Optional(t.Nullable(t.String({ maxLength: max, error: `${field} must be a string of at most ${max} characters, or null` })));
const timeValue = t.Union([t.String(), t.Number()], { error: "moved_at must be an ISO-8601 time or epoch milliseconds" });

/** The API's JSON for a device (the earlier fields first, then ours). */
export function deviceJson(d: Device) {
  return {
    uid: d.uid,
    room: d.room_uid ? { uid: d.room_uid, name: d.room_name } : null,
    label: d.label,
    created_at: iso(d.created_at),
    last_seen_at: iso(d.last_seen_at),
    model: d.model,
    home_id: d.home_id,
    placed_at: iso(d.placed_at),
    state: d.state,
    state_at: iso(d.state_at),
    interval_s: d.interval_s,
    version: d.version,
    sensor_failures: d.sensor_failures,
    last_error: d.last_error,
    config: { interval_s: d.config_interval_s, temperature_offset: d.temperature_offset, humidity_offset: d.humidity_offset },
    refused_count: d.refused_count,
    last_refusal: d.last_refusal,
    last_refusal_at: iso(d.last_refusal_at),
  };
}

/** The API's JSON for a room. */
export const roomJson = (r: Room) => ({ uid: r.uid, name: r.name, floor: r.floor, side: r.side });

const placementJson = (p: Placement) => ({
  device_uid: p.device_uid,
  room: { uid: p.room_uid, name: p.room_name },
  from_ts: iso(p.from_ts),
  to_ts: iso(p.to_ts),
  state: p.to_ts === null ? "active" : "closed",
});

const pointJson = (p: RawPoint | BucketPoint, withDevice: boolean) =>
  "device_uid" in p
    ? withDevice
      ? { device_id: p.device_uid, ts: iso(p.ts), temperature: p.temperature, humidity: p.humidity, source: "mqtt" }
      : { ts: iso(p.ts), temperature: p.temperature, humidity: p.humidity, source: "mqtt" }
    : { ...p, ts: iso(p.ts) };

/** A chart series, oldest first: raw points (with their device) or buckets. */
function historyJson(points: (RawPoint | BucketPoint)[], bucket: Bucket, from: number, to: number) {
  return {
    bucket,
    from: iso(from),
    to: iso(to),
    points: points.map((p) =>
      "device_uid" in p
        ? { device_id: p.device_uid, ts: iso(p.ts), temperature: p.temperature, humidity: p.humidity }
        : { ...p, ts: iso(p.ts) },
    ),
  };
}

/** Parses the chart query: from/to (default the last 24 h), points (default 800), bucket (default auto: chosen from the budget). */
function historyQuery(query: Record<string, string | undefined>, now: number) {
  const range = parseRange(query, { from: now - 86_400_000, to: now });
  const points = parseInteger("points", query.points, 10, 10000, 800);
  const bucket = query.bucket === undefined || query.bucket === "auto" ? "auto" : parseBucket(query.bucket);
  return { ...range, points, bucket } as const;
}

/**
 * The one place every write (POST, PUT, PATCH, DELETE) passes, for the API
 * and the pages alike: authentication will be checked here. Today a home LAN
 * is trusted, as it was with the earlier server.
 */
export function authorizeWrite(_request: Request): void {}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Errors from Elysia and from routes, mapped once to `{"error": …}`. */
export function errorHandling(log: Log) {
  return new Elysia({ name: "errors" })
    .error({ DomainError })
    .onRequest(({ request, set }) => {
      set.headers["access-control-allow-origin"] = "*";
      if (request.method === "OPTIONS") {
        set.headers["access-control-allow-methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
        set.headers["access-control-allow-headers"] = "Content-Type, Authorization";
        return new Response(null, { status: 204, headers: set.headers as Record<string, string> });
      }
      if (WRITES.has(request.method)) authorizeWrite(request);
    })
    .onError(({ code, error, set, request }) => {
      set.headers["access-control-allow-origin"] = "*";
      if (code === "DomainError") {
        set.status = HTTP_STATUS[error.kind];
        return { error: error.message, ...error.extra };
      }
      if (code === "VALIDATION") {
        set.status = 400;
        const first = error.all[0] as { path?: string; message?: string; schema?: { error?: string } } | undefined;
        const field = first?.path?.replace(/^\//, "").replace(/\//g, ".") || "body";
        const custom = first?.schema?.error;
        return { error: custom ?? `${field}: ${first?.message ?? "is not valid"}` };
      }
      if (code === "PARSE") {
        set.status = 400;
        return { error: "body: is not valid JSON" };
      }
      if (code === "NOT_FOUND") {
        set.status = 404;
        return { error: `no route ${request.method} ${new URL(request.url).pathname}` };
      }
      log.error("request failed", { method: request.method, url: request.url, error: error as Error });
      set.status = 500;
      return { error: "internal error; the server log has the details" };
    })
    .as("global");
}

/** Creates the `/health` and `/api/v1` routes. */
export function createApi({ store, history, stats, exporter, live, broker, ingest }: ApiDeps) {
  const now = store.now;

  const devices = new Elysia({ prefix: "/devices" })
    .get("/", () => ({ data: store.listDevices().map(deviceJson) }))
    .get("/:uid", ({ params }) => ({ data: deviceJson(store.getDevice(params.uid)) }))
    .post(
      "/",
      async ({ body, set }) => {
        const device = store.createDevice({
          uid: body.device_uid,
          roomName: body.room_name,
          roomUid: body.room_uid,
          label: body.label ?? undefined,
        });
        set.status = 201;
        return {
          data: { device: deviceJson(device), room: { uid: device.room_uid, name: device.room_name } },
          message: "Device provisioned successfully",
        };
      },
      {
        body: t.Object({
          device_uid: idString("device_uid"),
          room_name: text("room_name", 100),
          room_uid: t.Optional(idString("room_uid")),
          label: optionalText("label", 100),
        }),
      },
    )
    .put(
      "/:uid",
      async ({ params, body }) => {
        const hasRoom = body.room_name !== undefined || body.room_uid !== undefined;
        if (body.moved_at !== undefined && !hasRoom) throw invalid("moved_at", "needs room_name or room_uid (it dates a move)");
        const movedAt =
          body.moved_at === undefined
            ? undefined
            : typeof body.moved_at === "number"
              ? body.moved_at
              : parseTime("moved_at", body.moved_at);
        // A settings change reaches the sensor through the config publisher (lib/server/mqtt/config-publisher.ts).
        const device = store.updateDevice(params.uid, {
          label: body.label,
          roomUid: body.room_uid,
          roomName: body.room_name,
          movedAt,
          config_interval_s: body.interval_s,
          temperature_offset: body.temperature_offset,
          humidity_offset: body.humidity_offset,
        });
        return {
          data: { device: deviceJson(device), room: device.room_uid ? { uid: device.room_uid, name: device.room_name } : null },
          message: "Device updated successfully",
        };
      },
      {
        body: t.Object({
          room_name: t.Optional(text("room_name", 100)),
          // null takes the device out of its room (unplaced).
          room_uid: t.Optional(t.Nullable(idString("room_uid"))),
          label: optionalText("label", 100),
          moved_at: t.Optional(timeValue),
          interval_s: t.Optional(
            t.Nullable(
              t.Integer({
                minimum: INTERVAL_RANGE[0],
                maximum: INTERVAL_RANGE[1],
                error: "interval_s must be a whole number of seconds 1-3600, or null",
              }),
            ),
          ),
          temperature_offset: t.Optional(
            t.Number({
              minimum: OFFSET_RANGE[0],
              maximum: OFFSET_RANGE[1],
              error: "temperature_offset must be a number from -20 to 20",
            }),
          ),
          humidity_offset: t.Optional(
            t.Number({
              minimum: OFFSET_RANGE[0],
              maximum: OFFSET_RANGE[1],
              error: "humidity_offset must be a number from -20 to 20",
            }),
          ),
        }),
      },
    )
    .delete("/:uid", ({ params }) => {
      store.deleteDevice(params.uid);
      return { message: "Device deleted successfully", uid: params.uid };
    })
    .get("/:uid/placements", ({ params }) => ({ data: store.devicePlacements(params.uid).map(placementJson) }))
    .get("/:uid/history", ({ params, query }) => {
      const device = store.getDevice(params.uid);
      const q = historyQuery(query, now());
      const { bucket, points } = history.chart({ kind: "device", id: device.id, uid: device.uid }, q);
      return { data: historyJson(points, bucket, q.from, q.to) };
    })
    .get("/:uid/readings", ({ params, query }) => {
      const device = store.getDevice(params.uid);
      const limit = parseInteger("limit", query.limit, 1, 10000, 10);
      const range = parseRange(query, { from: 0, to: Number.MAX_SAFE_INTEGER });
      const bucket = parseBucket(query.bucket);
      const target = { kind: "device", id: device.id, uid: device.uid } as const;
      return { data: history.series(target, { ...range, limit, bucket }).map((p) => pointJson(p, false)) };
    });

  const rooms = new Elysia({ prefix: "/rooms" })
    .get("/", () => ({ data: store.listRooms().map(roomJson) }))
    .get("/:uid", ({ params }) => {
      const room = store.getRoom(params.uid);
      const inRoom = store.listDevices().filter((d) => d.room_uid === room.uid);
      return { data: { ...roomJson(room), devices: inRoom.map((d) => ({ uid: d.uid, label: d.label })) } };
    })
    .post(
      "/",
      ({ body, set }) => {
        const room = store.createRoom({ name: body.name, uid: body.uid, floor: body.floor, side: body.side });
        set.status = 201;
        return { data: roomJson(room), message: "Room created" };
      },
      {
        body: t.Object({
          name: text("name", 100),
          uid: t.Optional(idString("uid")),
          floor: optionalText("floor", 50),
          side: optionalText("side", 50),
        }),
      },
    )
    .put(
      "/:uid",
      ({ params, body }) => ({
        data: roomJson(store.updateRoom(params.uid, body)),
        message: "Room updated",
      }),
      {
        body: t.Object({ name: t.Optional(text("name", 100)), floor: optionalText("floor", 50), side: optionalText("side", 50) }),
      },
    )
    .delete("/:uid", ({ params }) => {
      store.deleteRoom(params.uid);
      return { message: "Room deleted", uid: params.uid };
    })
    .get("/:uid/placements", ({ params }) => ({ data: store.roomPlacements(params.uid).map(placementJson) }))
    .get("/:uid/history", ({ params, query }) => {
      const room = store.getRoom(params.uid);
      const q = historyQuery(query, now());
      const { bucket, points } = history.chart({ kind: "room", id: room.id }, q);
      return { data: historyJson(points, bucket, q.from, q.to) };
    })
    .get("/:uid/readings", ({ params, query }) => {
      const room = store.getRoom(params.uid);
      const limit = parseInteger("limit", query.limit, 1, 10000, 1000);
      const range = parseRange(query, { from: 0, to: Number.MAX_SAFE_INTEGER });
      const bucket = parseBucket(query.bucket);
      return { data: history.series({ kind: "room", id: room.id }, { ...range, limit, bucket }).map((p) => pointJson(p, true)) };
    });

  const latest = new Elysia({ prefix: "/readings" }).get("/latest", ({ query }) => {
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
  });

  return new Elysia({ name: "api" })
    .get("/health", ({ set }) => {
      const problems: Record<string, string> = {};
      try {
        store.probe();
        if (ingest.failing) problems.database = "the last commit of readings failed (see the log)";
      } catch (err) {
        problems.database = (err as Error).message;
      }
      if (!broker.listening) problems.broker = "not accepting connections";
      if (Object.keys(problems).length === 0) return { status: "ok" };
      set.status = 503;
      return { status: "failed", ...problems, checked_at: iso(now()) };
    })
    .group("/api/v1", (app) =>
      app
        .use(devices)
        .use(rooms)
        .use(latest)
        .use(createHistoryApi({ store, stats, exporter }))
        // Counters for makers and monitoring: what the broker refused, how ingestion batches.
        .get("/stats", () => ({
          data: {
            broker: { ...broker.stats, connected_clients: broker.connectedClients, queued_messages: broker.queuedMessages },
            ingest: { ...ingest.stats, pending: ingest.pending },
          },
        })),
    );
}
