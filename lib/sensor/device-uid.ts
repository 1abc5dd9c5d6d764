// The uid a sensor gets when device.conf names none: `aht20-` and the last 6
// hex digits of a network interface's MAC, as the earlier deployment's
// bootstrap-pi.sh derived it (SPEC "MQTT contract": `aht20-f49c53`).

import { existsSync, readFileSync, readdirSync } from "node:fs";

/** The MAC of `iface` as 12 lowercase hex digits, or null (missing, malformed, all zeros). */
function macOf(sysRoot: string, iface: string): string | null {
  let mac: string;
  try {
    mac = readFileSync(`${sysRoot}/class/net/${iface}/address`, "utf8").trim().toLowerCase();
  } catch {
    return null;
  }
  const digits = mac.replace(/:/g, "");
  return /^[0-9a-f]{12}$/.test(digits) && !/^0+$/.test(digits) ? digits : null;
}

/**
 * The interfaces a uid may come from, in order: eth0 then wlan0 (the earlier
 * deployment's order), then every other interface backed by hardware
 * (`/sys/class/net/X/device` exists: not lo, bridges or tunnels) under its
 * predictable name (`end0` on a Pi 5 with Bookworm, `enx…` USB adapters,
 * `enp0s3`), wired ones before wireless ones, each group by name.
 */
function uidInterfaces(sysRoot: string): string[] {
  let names: string[];
  try {
    names = readdirSync(`${sysRoot}/class/net`);
  } catch {
    names = [];
  }
  const hardware = names.filter((n) => n !== "eth0" && n !== "wlan0" && existsSync(`${sysRoot}/class/net/${n}/device`)).sort();
  const wireless = (n: string) => existsSync(`${sysRoot}/class/net/${n}/wireless`) || n.startsWith("wl");
  return ["eth0", "wlan0", ...hardware.filter((n) => !wireless(n)), ...hardware.filter(wireless)];
}

/**
 * The uid SPEC gives a device without one: `aht20-` + the last 6 hex digits of
 * the eth0 MAC (wlan0 as fallback), lowercase; on a Pi whose interfaces have
 * other names, the first hardware interface.
 * `sysRoot` is injectable for tests (default /sys).
 */
export function uidFromMac(sysRoot = "/sys"): { uid: string; source: string } | null {
  for (const iface of uidInterfaces(sysRoot)) {
    const digits = macOf(sysRoot, iface);
    if (digits) return { uid: `aht20-${digits.slice(-6)}`, source: `MAC of ${iface}` };
  }
  return null;
}
