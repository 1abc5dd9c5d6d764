// The process's own CPU time, memory and file descriptors, read from /proc
// (Linux: the Pi and every machine TechTemp runs on), under the standard
// `process_*` names Prometheus' client libraries use.

import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc times: USER_HZ, 100 on every Linux architecture's user ABI. */
const USER_HZ = 100;

/** The process's figures; a field is null where /proc does not say (another OS). */
export interface ProcessFigures {
  cpuSeconds: number | null;
  residentBytes: number | null;
  virtualBytes: number | null;
  startTimeSeconds: number | null;
  openFds: number | null;
  maxFds: number | null;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** Reads /proc/self now (a few small files). */
export function processFigures(): ProcessFigures {
  const out: ProcessFigures = {
    cpuSeconds: null,
    residentBytes: null,
    virtualBytes: null,
    startTimeSeconds: null,
    openFds: null,
    maxFds: null,
  };
  const stat = read("/proc/self/stat");
  if (stat !== null) {
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 utime, 15 stime, 22 starttime (1-based in proc(5)); here field n is fields[n - 3].
    out.cpuSeconds = (Number(fields[11]) + Number(fields[12])) / USER_HZ;
    const boot = /^btime (\d+)$/m.exec(read("/proc/stat") ?? "")?.[1];
    if (boot !== undefined) out.startTimeSeconds = Number(boot) + Number(fields[19]) / USER_HZ;
  }
  // kB figures from status, whatever the page size (a Pi 5 kernel uses 16 KiB pages).
  const status = read("/proc/self/status") ?? "";
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(status);
    return m ? Number(m[1]) * 1024 : null;
  };
  out.residentBytes = kb("VmRSS");
  out.virtualBytes = kb("VmSize");
  try {
    out.openFds = readdirSync("/proc/self/fd").length;
  } catch {}
  const limit = /^Max open files\s+(\d+)/m.exec(read("/proc/self/limits") ?? "")?.[1];
  if (limit !== undefined) out.maxFds = Number(limit);
  return out;
}
