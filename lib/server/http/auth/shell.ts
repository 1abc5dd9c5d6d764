// What every page shows about who is looking: the viewer (name, role, CSRF
// token), whether its forms are shown (the owner signed in), and the
// warnings. Before an owner exists everyone sees how to set one up; the owner
// sees each setting that opens the door (`public_read`,
// `accept_anonymous_sensors`, on after an upgrade) with a one-click "Turn
// off", the HTTPS certificate's expiry a month ahead, and backups that fail
// or miss their second target.

import type { Auth } from "../../auth/auth.ts";
import type { AssetUrls } from "../assets.ts";
import type { Banner, Shell, Viewer } from "../../../../views/parts.tsx";
import type { Caller } from "./guard.ts";
import { NO_OWNER } from "./guard.ts";

/** The certificate the HTTPS listener serves (filled by lib/server/tls when TLS is on). */
export interface TlsInfo {
  /** When it expires (epoch ms). */
  notAfter: number;
  /** The names and addresses it is valid for. */
  names: string[];
  /** The local CA's certificate (PEM) that sensors and tools trust, when TechTemp made it. */
  caPem?: string | null;
}

const DAY = 86_400_000;
/** The certificate warning shows this long before expiry. */
export const CERT_WARNING_DAYS = 30;

/** Creates `shellFor(request)`. */
export function createShells(deps: {
  assets: AssetUrls;
  now: () => number;
  auth: Pick<Auth, "accounts" | "switches" | "devicesWithoutSecret">;
  callerOf: (request: Request) => Caller;
  tls?: TlsInfo | null;
  /** The home's time zone: every page shows times in it. */
  timeZone: string;
  /** Why backups need the owner's attention, or null (lib/server/backup; issue 13). */
  backupWarning?: () => string | null;
}) {
  const { assets, now, auth, callerOf, tls, timeZone } = deps;

  function banners(caller: Caller, at: number): Banner[] {
    if (!auth.accounts.ownerExists()) return [{ id: "setup", text: `${NO_OWNER[0]!.toUpperCase()}${NO_OWNER.slice(1)}.` }];
    if (caller.kind !== "session" || caller.role !== "owner") return [];
    const out: Banner[] = [];
    const off = (key: string) => ({ path: "/security/switch", fields: { switch: key, value: "off" }, label: "Turn off" });
    if (auth.switches.get("public_read")) {
      out.push({
        id: "public_read",
        text: "Anyone on the network can read these pages and the API without signing in (kept on by the upgrade from a version without accounts).",
        action: off("public_read"),
        link: { href: "/tokens", label: "API tokens for scripts" },
      });
    }
    if (auth.switches.get("accept_anonymous_sensors")) {
      const n = auth.devicesWithoutSecret();
      out.push({
        id: "accept_anonymous_sensors",
        text:
          "Sensors without an MQTT password may still publish readings (kept on by the upgrade)" +
          (n > 0 ? `; ${n} device${n === 1 ? " has" : "s have"} no password yet.` : "."),
        action: off("accept_anonymous_sensors"),
        link: { href: "/security#anonymous", label: "How to give them one" },
      });
    }
    if (tls && tls.notAfter - at < CERT_WARNING_DAYS * DAY) {
      const days = Math.floor((tls.notAfter - at) / DAY);
      const when = new Date(tls.notAfter).toISOString().slice(0, 10);
      out.push({
        id: "certificate",
        text:
          days < 0
            ? `The HTTPS certificate expired on ${when}: browsers and sensors refuse it. Renew it with \`techtemp-server tls\`.`
            : `The HTTPS certificate expires on ${when} (in ${days} day${days === 1 ? "" : "s"}). Renew it with \`techtemp-server tls\`.`,
      });
    }
    const backup = deps.backupWarning?.() ?? null;
    if (backup !== null) out.push({ id: "backup", text: backup, link: { href: "/backups", label: "Backups" } });
    return out;
  }

  return function shellFor(request: Request): Shell {
    const caller = callerOf(request);
    const at = now();
    const viewer: Viewer = {
      kind: caller.kind,
      name: caller.name,
      role: caller.role,
      csrf: caller.session && !caller.session.kiosk ? caller.session.csrf : null,
    };
    return {
      assets,
      now: at,
      timeZone,
      viewer,
      canWrite: caller.kind === "session" && caller.role === "owner",
      banners: banners(caller, at),
    };
  };
}
