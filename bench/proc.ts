// What the benchmarks read about a process from /proc.

import { readFileSync } from "node:fs";

/**
 * Memory of a process in MB: RSS, its anonymous part (the process's own heap)
 * and its file-backed part (pages of the Bun executable, shared and clean);
 * PSS too when `withPss` (shared pages split between the processes using them).
 * NaN when the process is gone.
 */
export function memory(pid: number, withPss = false): { rss: number; anon: number; file: number; pss: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string, text = status) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
    const pss = withPss ? kb("Pss", readFileSync(`/proc/${pid}/smaps_rollup`, "utf8")) : NaN;
    return { rss: kb("VmRSS") / 1024, anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024, pss: pss / 1024 };
  } catch {
    return { rss: NaN, anon: NaN, file: NaN, pss: NaN };
  }
}

/** CPU time a process has used so far (user + system), in seconds; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks, 100 a second on Linux
  } catch {
    return NaN;
  }
}
