// What the broker's refusals share: one log line per cause and minute (a
// flood makes one line, with a count of what it left out), and the address
// of the client at fault.

import type { Client } from "aedes";
import type { Socket } from "node:net";

/**
 * Counts how often one key logged within `windowMs`. Returns null while the
 * key is quiet (suppressed), else how many lines were suppressed since the
 * last one. At most 10,000 keys are remembered (then they start again).
 */
export function createLogThrottle(windowMs = 60_000) {
  const seen = new Map<string, { at: number; suppressed: number }>();
  return (key: string, now: number): number | null => {
    const entry = seen.get(key);
    if (entry && now - entry.at < windowMs) {
      entry.suppressed++;
      return null;
    }
    const suppressed = entry?.suppressed ?? 0;
    seen.set(key, { at: now, suppressed: 0 });
    if (seen.size > 10_000) seen.clear();
    return suppressed;
  };
}

/** The log throttle's interface. */
export type LogThrottle = ReturnType<typeof createLogThrottle>;

/** `address:port` of a client's connection (TCP or TLS), when known. */
export function remoteAddress(client: Client | null): string | undefined {
  const conn = client?.conn as Partial<Socket> | undefined;
  return conn?.remoteAddress ? `${conn.remoteAddress}:${conn.remotePort}` : undefined;
}

/** The IP address alone: what refusals are grouped by (a client picks its port, its id and its username). */
export function remoteIp(client: Client | null): string {
  return (client?.conn as Partial<Socket> | undefined)?.remoteAddress ?? "unknown";
}
