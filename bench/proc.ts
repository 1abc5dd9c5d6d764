// What the benchmarks read about a process from /proc.

import { closeSync, fsyncSync, openSync, readFileSync } from "node:fs";

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

/**
 * Drops `file`'s pages from the page cache, as after a boot (GNU dd: `iflag=nocache count=0` asks for the whole
 * file). The kernel maps the cached pages around each page fault, so an executable just built (all of it cached)
 * would show several MB more file-backed RSS than it does on a Pi after a boot.
 */
export function dropFromPageCache(file: string): void {
  // Dirty pages (a file just written) cannot be dropped: on the disk first.
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const r = Bun.spawnSync(["dd", `if=${file}`, "iflag=nocache", "count=0", "status=none"], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`dd: ${r.stderr.toString().trim()}`);
}
