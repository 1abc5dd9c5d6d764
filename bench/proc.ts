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
