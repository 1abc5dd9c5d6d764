// How fresh a device's data is: online, late or offline, measured in the
// device's own reading interval (the earlier dashboard used a fixed 10
// minutes, wrong for a sensor that reports every 30 s or every hour). Pure
// functions; the caller passes `now`. (The "2 min ago" wording is the
// pages': views/parts.tsx.)

/** What a device looks like from here. `never` = no reading stored yet. */
export type DeviceStatus = "online" | "late" | "offline" | "never";

/** A device is online while its last reading is at most this many intervals old. */
export const ONLINE_INTERVALS = 2;
/** …late after that, and offline once its last reading is this many intervals old. */
export const OFFLINE_INTERVALS = 5;
/** The interval assumed when nothing better is known: the earlier agents' shipped setting (device.conf). */
export const DEFAULT_INTERVAL_S = 300;

/** What the interval of a device can be learnt from. */
export interface IntervalSources {
  /** Announced in its birth message (newer agents); null for the earlier C agent, which sends none. */
  announced: number | null;
  /** Asked by the server through the retained config message. */
  configured: number | null;
  /** Seconds between its last two readings, when known. */
  observedS: number | null;
}

/**
 * The interval (seconds) a device is expected to report at. A device that
 * announces its interval speaks the new protocol and applies the config
 * message, so the longer of the announced and configured interval counts (the
 * longer one, so a change in flight never makes a device look late). The
 * earlier agent announces nothing and ignores config: its readings' spacing
 * tells, else the earlier default of 300 s.
 */
export function expectedIntervalS(src: IntervalSources): number {
  if (src.announced !== null) return Math.max(src.announced, src.configured ?? 0);
  if (src.observedS !== null && src.observedS >= 1) return Math.min(src.observedS, 3600);
  return DEFAULT_INTERVAL_S;
}

/** What the status depends on. */
export interface FreshnessInput {
  /** Timestamp of the latest reading (epoch ms), null if none. */
  lastReadingAt: number | null;
  intervalS: number;
  /** The last status message: "offline" is the device's last will. */
  state: "online" | "offline" | null;
  /** When that status message arrived. */
  stateAt: number | null;
}

/** A status now, and when it will change by itself (null = it will not). */
export interface Freshness {
  status: DeviceStatus;
  /** From this instant (epoch ms) on the device is late… */
  lateAt: number | null;
  /** …and from this one offline. */
  offlineAt: number | null;
}

/**
 * The status of a device at `now`: online within 2 intervals of its last
 * reading, late after that, offline after 5 intervals, or at once when its
 * last will said so after its last reading.
 */
export function freshness(input: FreshnessInput, now: number): Freshness {
  const { lastReadingAt: last, intervalS } = input;
  // A last will is news even from a device that never sent a reading.
  if (last === null) return { status: input.state === "offline" ? "offline" : "never", lateAt: null, offlineAt: null };
  if (input.state === "offline" && input.stateAt !== null && input.stateAt >= last) {
    return { status: "offline", lateAt: null, offlineAt: null };
  }
  const lateAt = last + ONLINE_INTERVALS * intervalS * 1000;
  const offlineAt = last + OFFLINE_INTERVALS * intervalS * 1000;
  const status = now < lateAt ? "online" : now < offlineAt ? "late" : "offline";
  return { status, lateAt, offlineAt };
}
