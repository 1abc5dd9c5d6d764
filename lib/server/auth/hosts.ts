// The Host header check against DNS rebinding: a page on evil.example whose
// name is made to resolve to the server's address would otherwise read the
// server as its own origin (everything a visitor without an account may
// read: all of it before the owner exists or while `public_read` is on).
// Accepted: any IP address, localhost, this machine's hostname and
// <hostname>.local (mDNS), and the names of `http_allowed_hosts`.

import { isIP } from "node:net";

/** The host name of a Host header value: without its port and the brackets of an IPv6 address, lowercase, no final dot. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith("[") ? h.slice(1, h.indexOf("]") === -1 ? undefined : h.indexOf("]")) : h.replace(/:\d*$/, "");
  return name.replace(/\.$/, "");
}

/** Creates the check: `allowed(hostHeader)`. */
export function createHostCheck(options: { hostname: string; extra: readonly string[] }) {
  const machine = options.hostname.toLowerCase().replace(/\.$/, "");
  const names = new Set(["localhost", machine, `${machine.split(".")[0]}.local`, ...options.extra.map((n) => n.toLowerCase())]);
  return {
    /** The names accepted besides IP addresses, for the refusal's message. */
    names: [...names],
    /** Whether a request addressed to this Host header may be answered. */
    allowed(header: string | null): boolean {
      if (header === null || header === "") return false;
      const name = hostName(header);
      return isIP(name) !== 0 || names.has(name);
    },
  };
}

/** The Host check's interface. */
export type HostCheck = ReturnType<typeof createHostCheck>;
