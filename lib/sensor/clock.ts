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

/** What the kernel says of the clock: synchronised, not (yet), or it could not be asked, and why. */
export type KernelClock = { state: "synced" } | { state: "unsynced" } | { state: "unknown"; reason: string };

/**
 * Asks the kernel through adjtimex(2) (modes 0 = read only), called in
 * `library` (libc; tests give a simulated AHT20 library whose adjtimex runs
 * the real syscall). "unknown" says why it could not be asked: bun:ffi
 * unavailable (BUN_JSC_useJIT=0), or the call refused (EPERM: a seccomp
 * filter such as systemd's SystemCallFilter=~@privileged without `adjtimex`).
 */
export function probeKernelClock(library = "libc.so.6"): KernelClock {
  if (process.platform !== "linux") return { state: "unknown", reason: `not Linux (${process.platform})` };
  let ffi: typeof import("bun:ffi");
  let lib;
  try {
    ffi = require("bun:ffi") as typeof import("bun:ffi");
    lib = ffi.dlopen(library, {
      adjtimex: { args: [ffi.FFIType.ptr], returns: ffi.FFIType.i32 },
      __errno_location: { args: [], returns: ffi.FFIType.ptr },
    });
  } catch (err) {
    const message = (err as Error).message;
    return {
      state: "unknown",
      reason: /requires the JIT/i.test(message)
        ? `bun:ffi is unavailable (${message}): remove BUN_JSC_useJIT=0 from the agent's environment`
        : `cannot load ${library} through bun:ffi: ${message}`,
    };
  }
  try {
    // struct timex is 208 bytes on 64-bit Linux; zeroed, so `modes` = 0 changes nothing.
    const state = lib.symbols.adjtimex(new Uint8Array(256));
    if (state < 0) {
      const errno = ffi.read.i32(lib.symbols.__errno_location()!, 0);
      return {
        state: "unknown",
        reason:
          errno === 1
            ? "adjtimex(2) refused (EPERM): the service's system call filter must allow adjtimex (SystemCallFilter=adjtimex)"
            : `adjtimex(2) failed (errno ${errno})`,
      };
    }
    return state === TIME_ERROR ? { state: "unsynced" } : { state: "synced" };
  } finally {
    lib.close();
  }
}

/**
 * The kernel's view as a boolean: true/false from adjtimex(2), or null when
 * it cannot be asked. A machine that is not Linux has nothing to wait for;
 * on Linux "cannot ask" is "not known to be synced": false, so the agent waits
 * for the timesync file or its timeout instead of trusting the clock.
 */
export function kernelClockSynced(library?: string): boolean | null {
  const k = probeKernelClock(library);
  if (k.state === "unknown") return process.platform === "linux" ? false : null;
  return k.state === "synced";
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
  options: {
    syncFile?: string;
    procRoot?: string;
    kernelSynced?: () => boolean | null;
    trust?: boolean;
    /** The C library adjtimex is called in (device.conf `[sensor] libc`). */
    library?: string;
  } = {},
): AgentClock {
  const procRoot = options.procRoot ?? "/proc";
  const syncFile = options.syncFile ?? TIMESYNC_FILE;
  const kernel = options.kernelSynced ?? (() => kernelClockSynced(options.library));
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
