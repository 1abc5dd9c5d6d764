// What the store hands out and takes in: rows as the rest of the server sees
// them, and the unit readings are stored in. Times are epoch milliseconds
// here; the API turns them into ISO-8601 strings.

import type { Reading } from "../../shared/contract.ts";

/** A room as stored. */
export interface Room {
  id: number;
  uid: string;
  name: string;
  floor: string | null;
  side: string | null;
  created_at: number;
}

/** A device as stored, with its current room (null = unplaced). */
export interface Device {
  id: number;
  uid: string;
  /** The home id in the device's topics (null until it first publishes). */
  home_id: string | null;
  label: string | null;
  model: string | null;
  created_at: number;
  last_seen_at: number | null;
  state: "online" | "offline" | null;
  state_at: number | null;
  interval_s: number | null;
  version: string | null;
  sensor_failures: number | null;
  last_error: string | null;
  config_interval_s: number | null;
  temperature_offset: number;
  humidity_offset: number;
  refused_count: number;
  last_refusal: string | null;
  last_refusal_at: number | null;
  room_id: number | null;
  room_uid: string | null;
  room_name: string | null;
  placed_at: number | null;
}

/** One interval of a device in a room. */
export interface Placement {
  id: number;
  device_uid: string;
  room_uid: string;
  room_name: string;
  from_ts: number;
  to_ts: number | null;
}

/** A reading waiting in the ingest queue. */
export interface IncomingReading {
  homeId: string;
  deviceUid: string;
  reading: Reading;
  /** When the broker received it (becomes the device's last_seen_at). */
  receivedAt: number;
}

/** Hundredths, the unit readings are stored in (2 bytes instead of 8). */
export const toCenti = (v: number) => Math.round(v * 100);
/** A stored value in hundredths back to °C or %. */
export const fromCenti = (v: number) => v / 100;
