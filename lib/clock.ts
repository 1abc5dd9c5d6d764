// Time the sensor agent can trust. A Pi has no real-time clock: until NTP
// syncs, the wall clock says whatever fake-hwclock restored (or 1970). The
// monotonic clock is right from boot, so readings carry both: the wall time
// (sent) and the time since boot (for re-stamping). When the wall clock syncs
// in the same boot, a reading taken at boot-time m gets the wall time
// `syncWall − (syncMono − m)`.
//
// "Synchronised" = /run/systemd/timesync/synchronized exists (systemd-
// timesyncd touches it on its first sync) or the kernel says so (adjtimex()
// returns TIME_ERROR while STA_UNSYNC is set; chrony and ntpd clear it).

import { existsSync, readFileSync } from "node:fs";

/** The clocks the agent uses; every part is injectable for tests. */
export interface AgentClock {
  /** Wall-clock time, epoch ms (what readings are stamped with). */
  wall(): number;
  /** Monotonic ms since boot, comparable between agent runs within one boot. */
  mono(): number;
  /** Identifies the boot: monotonic times from another boot cannot be re-stamped. */
  readonly bootId: string;
  /** Whether the wall clock is synchronised (sticky: once true, stays true). */
  synced(): boolean;
}

/** The file systemd-timesyncd creates on its first successful sync. */
export const TIMESYNC_FILE = "/run/systemd/timesync/synchronized";

/** adjtimex() return value while the kernel's clock is not synchronised (linux/timex.h). */
const TIME_ERROR = 5;

/**
 * The kernel's view: true/false from adjtimex(2) (modes 0 = read only), or
 * null when it cannot be asked (not Linux, no libc). A refused call (EPERM
 * under a seccomp filter) is "not known to be synced": false, so the agent
 * waits for the timesync file or its timeout instead of trusting the clock.
 */
export function kernelClockSynced(): boolean | null {
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const lib = dlopen("libc.so.6", { adjtimex: { args: [FFIType.ptr], returns: FFIType.i32 } });
    // struct timex is 208 bytes on 64-bit Linux; zeroed, so `modes` = 0 changes nothing.
    const state = lib.symbols.adjtimex(new Uint8Array(256));
    lib.close();
    return state >= 0 && state !== TIME_ERROR;
  } catch {
    return null;
  }
}

/** Reads `/proc/uptime` (seconds since boot, 10 ms resolution) in ms, or null. */
function readUptimeMs(procRoot: string): number | null {
  try {
    const s = Number(readFileSync(`${procRoot}/uptime`, "utf8").split(" ")[0]);
    return Number.isFinite(s) ? s * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * The system's clocks. `trust` (clock_sync_wait_seconds = 0) skips the sync
 * check for a Pi with an RTC or a machine whose clock is known good.
 */
export function createSystemClock(
  options: { syncFile?: string; procRoot?: string; kernelSynced?: () => boolean | null; trust?: boolean } = {},
): AgentClock {
  const procRoot = options.procRoot ?? "/proc";
  const syncFile = options.syncFile ?? TIMESYNC_FILE;
  const kernel = options.kernelSynced ?? kernelClockSynced;
  // Boot-relative monotonic time: performance.now() is monotonic but starts at
  // process start; anchoring it once to /proc/uptime makes it comparable
  // across runs (to 10 ms), and never jumps the way the wall clock does.
  const uptime = readUptimeMs(procRoot);
  const offset = uptime === null ? 0 : uptime - performance.now();
  let bootId: string;
  try {
    bootId = readFileSync(`${procRoot}/sys/kernel/random/boot_id`, "utf8").trim();
  } catch {
    // Unknown boot: nothing taken before this run will be re-stamped.
    bootId = `unknown-${crypto.randomUUID()}`;
  }
  let synced = options.trust ?? false;
  return {
    wall: () => Date.now(),
    mono: () => Math.round(performance.now() + offset),
    bootId,
    synced() {
      if (synced) return true;
      // Unknown (not Linux): nothing to wait for.
      synced = existsSync(syncFile) || (kernel() ?? true);
      return synced;
    },
  };
}

/** The wall time of a reading taken at boot-time `mono`, given a sync observed at (`syncWall`, `syncMono`). */
export const restamp = (mono: number, syncWall: number, syncMono: number): number => syncWall - (syncMono - mono);
