// The API's JSON shapes, compatible with the earlier server: what a device,
// a room, a placement and a reading look like on the wire (times as ISO-8601
// UTC strings, the earlier fields first).

import type { Bucket, BucketPoint, RawPoint } from "../../history/history.ts";
import type { Device, Placement, Room } from "../../store/store.ts";
import { iso } from "../params.ts";

/** The API's JSON for a device (the earlier fields first, then ours). */
export function deviceJson(d: Device) {
  return {
    uid: d.uid,
    room: d.room_uid ? { uid: d.room_uid, name: d.room_name } : null,
    label: d.label,
    created_at: iso(d.created_at),
    last_seen_at: iso(d.last_seen_at),
    // The earlier server's field; the room's uid, as room_id is in /readings/latest.
    room_id: d.room_uid,
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

/** A placement: closed once its `to_ts` is set. */
export const placementJson = (p: Placement) => ({
  device_uid: p.device_uid,
  room: { uid: p.room_uid, name: p.room_name },
  from_ts: iso(p.from_ts),
  to_ts: iso(p.to_ts),
  state: p.to_ts === null ? "active" : "closed",
});

/** A point of the earlier `/readings`: raw points carry their device when they are a room's. */
export const pointJson = (p: RawPoint | BucketPoint, withDevice: boolean) =>
  "device_uid" in p
    ? withDevice
      ? { device_id: p.device_uid, ts: iso(p.ts), temperature: p.temperature, humidity: p.humidity, source: "mqtt" }
      : { ts: iso(p.ts), temperature: p.temperature, humidity: p.humidity, source: "mqtt" }
    : { ...p, ts: iso(p.ts) };

/** A chart series, oldest first: raw points (with their device) or buckets. */
export function historyJson(points: (RawPoint | BucketPoint)[], bucket: Bucket, from: number, to: number) {
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
