// The server's JIT policy (issue 17, memory). JavaScriptCore compiles a
// function once it has run a few hundred times, and the first compilation
// brings the compiler's own code into memory. On a home server most code runs
// a few times a minute: start-up, the $SYS statistics every 10 s, a reading
// per sensor every 30 s, a page now and then. Compiling it buys nothing and
// costs ~4 MB of the idle server's RSS (bench/server-memory.ts). So the
// server's command line scales the tier-up thresholds by SERVER_JIT_POLICY
// (the release executable from its first instruction: scripts/build.ts bakes
// the same policy in), and returns to the normal policy for good once the
// server is busy: a commit of BATCH_NOW readings or more (sensors replaying
// their outboxes after an outage, a load test). Until then hot code is still
// compiled, only later (~100× more runs).
//
// Not in `start`: tests run the server inside the test runner's process.

import { bytecodeOrderStats } from "bun:jsc";
import type { Log } from "../shared/log.ts";
import { BATCH_NOW } from "./mqtt/ingest.ts";
import type { Store } from "./store/store.ts";

/** JavaScriptCore's tier-up thresholds are multiplied by this until the server is busy. */
export const SERVER_JIT_POLICY = 100;

/** Whether this process runs with SERVER_JIT_POLICY (`until_busy`), or the normal policy (`normal`). */
let policy: "normal" | "until_busy" = "normal";
/** When the server became busy (epoch ms), or null. */
let busySince: number | null = null;

/** Scales the tier-up thresholds by SERVER_JIT_POLICY, until `compileWhenBusy` sees a busy commit. */
export function interpretUntilBusy(): void {
  Bun.unsafe.setJITPolicy(SERVER_JIT_POLICY);
  policy = "until_busy";
}

/** Returns to the normal JIT policy at the first commit of BATCH_NOW readings or more (logged once). */
export function compileWhenBusy(store: Pick<Store, "on">, log: Log, now: () => number = Date.now): void {
  const off = store.on("readings", (batch) => {
    if (batch.length < BATCH_NOW) return;
    off();
    Bun.unsafe.setJITPolicy(1);
    policy = "normal";
    busySince = now();
    log.info("busy: JavaScript is compiled as usual from now on (it ran in the interpreter while idle, to save memory)", {
      readings_in_one_commit: batch.length,
    });
  });
}

/** For /api/v1/stats: the JIT policy, and how the executable's profile-ordered bytecode was used (null when run from source). */
export function runtimeStats() {
  return {
    jit_policy: policy,
    jit_busy_since: busySince === null ? null : new Date(busySince).toISOString(),
    bytecode: bytecodeOrderStats(),
  };
}
