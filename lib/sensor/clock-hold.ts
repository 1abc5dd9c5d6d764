// Readings taken before the system clock synchronised are held in the outbox
// (not sent: their wall time may be years off). When the clock syncs in the
// same boot they are re-stamped from the monotonic clock (clock.ts); when it
// has not synced after `[clock] sync_wait_seconds`, they are released and go
// out flagged `clock_synced: false`. Readings held before a reboot cannot be
// re-stamped and are released at start.

import type { Log } from "../shared/log.ts";
import type { AgentClock } from "./clock.ts";
import type { AgentConfig } from "./device-config.ts";
import { ClockState, type Outbox } from "./outbox.ts";

/** While the clock is not synchronised, look again this often. */
const CLOCK_CHECK_MS = 1000;

/** What the clock hold needs. */
export interface ClockHoldDeps {
  config: Pick<AgentConfig, "clock_sync_wait_s">;
  outbox: Pick<Outbox, "restamp" | "oldestHeld" | "releaseHeld" | "releaseOtherBoots">;
  clock: AgentClock;
  log: Log;
  /** Called when held readings become sendable (re-stamped or released). */
  onRelease(): void;
}

/** Creates the clock hold; `start()` once, `check()` before each reading, `stop()` at the end. */
export function createClockHold(deps: ClockHoldDeps) {
  const { config, outbox, clock, log } = deps;
  let synced = false;
  let gaveUp = false;
  let timer: ReturnType<typeof setInterval> | null = null;

  /** Looks at the clock: re-stamps held readings on sync, or releases them flagged after the wait. */
  function check(): void {
    if (synced) return;
    if (clock.synced()) {
      synced = true;
      stop();
      const n = outbox.restamp(clock.bootId, clock.wall(), clock.mono());
      if (n > 0 || gaveUp) log.info("system clock synchronised; re-stamped the readings held for it", { readings: n });
      deps.onRelease();
      return;
    }
    if (gaveUp) return;
    const oldest = outbox.oldestHeld(clock.bootId);
    if (oldest !== null && clock.mono() - oldest >= config.clock_sync_wait_s * 1000) {
      gaveUp = true;
      const n = outbox.releaseHeld(clock.bootId);
      log.warn(
        `system clock not synchronised after ${config.clock_sync_wait_s} s: sending readings flagged clock_synced=false ` +
          "(check NTP with `timedatectl timesync-status`; set [clock] sync_wait_seconds = 0 if this Pi has a real-time clock)",
        { readings: n },
      );
      deps.onRelease();
    }
  }

  /** Looks at the clock every second, until it syncs (keeps looking after the wait, to log the sync). */
  function watch(): void {
    if (!timer) timer = setInterval(check, CLOCK_CHECK_MS);
  }

  function stop(): void {
    if (timer) clearInterval(timer);
    timer = null;
  }

  return {
    /** Releases what earlier boots held, watches the clock while this boot's readings wait, says so. */
    start(): void {
      const stale = outbox.releaseOtherBoots(clock.bootId);
      if (stale > 0) {
        log.warn("readings held for the clock before a reboot cannot be re-stamped; sending them flagged clock_synced=false", {
          readings: stale,
        });
      }
      if (outbox.oldestHeld(clock.bootId) !== null) watch();
      check();
      if (!synced && config.clock_sync_wait_s > 0) {
        log.warn(`system clock not synchronised yet: holding readings until it is (at most ${config.clock_sync_wait_s} s)`);
      }
    },
    check,
    /** How a reading taken now is stored: sendable, held for the clock, or sendable but flagged. */
    state(): ClockState {
      return synced ? ClockState.Synced : gaveUp ? ClockState.Unsynced : ClockState.Held;
    },
    /** A reading was held: watch the clock until it syncs or the wait ends. */
    held: watch,
    /** Stops watching the clock. */
    stop,
  };
}

/** The clock hold's interface. */
export type ClockHold = ReturnType<typeof createClockHold>;
