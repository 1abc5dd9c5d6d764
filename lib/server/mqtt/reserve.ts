// Sensors can always connect (issue 16): tools (API tokens) may hold at most
// `maxToolClients` connections and anonymous clients (an upgraded install's
// earlier sensors) `maxAnonymousPerAddress` per address, so neither can fill
// mqtt_max_clients and lock the sensors out (500 idle tool connections did).
// Who a client is is known only once it authenticated, so the count is taken
// then, in a wrapper around the access control's authenticate hook.

import type { AuthenticateHandler, Client } from "aedes";
import type { MqttAccess } from "./access.ts";
import { remoteIp } from "./refusals.ts";

/** Why a connection was refused by its kind's limit. */
export interface KindRefusal {
  kind: "tool" | "anonymous";
  reason: string;
}

/**
 * The authenticate hook with the limits per kind of client: a client over
 * its kind's limit gets CONNACK 3 ("server unavailable"), and `onRefused`
 * is told (to count and log it).
 */
export function reserveForSensors(deps: {
  access: Pick<MqttAccess, "authenticate" | "principalOf">;
  /** The clients connected now. */
  clients(): Client[];
  limits: { maxToolClients: number; maxAnonymousPerAddress: number };
  onRefused(client: Client, refusal: KindRefusal): void;
}): AuthenticateHandler {
  const { access, limits } = deps;

  function kindLimit(client: Client): KindRefusal | null {
    const principal = access.principalOf(client);
    if (principal?.kind !== "token" && principal?.kind !== "anonymous") return null;
    const ip = remoteIp(client);
    let same = 0;
    for (const other of deps.clients()) {
      if (other === client || access.principalOf(other)?.kind !== principal.kind) continue;
      if (principal.kind === "token" || remoteIp(other) === ip) same++;
    }
    if (principal.kind === "token" && same >= limits.maxToolClients) {
      return {
        kind: "tool",
        reason: `already ${same} tool connections (API tokens), the limit (mqtt_max_tool_clients); sensors keep the rest`,
      };
    }
    if (principal.kind === "anonymous" && same >= limits.maxAnonymousPerAddress) {
      return {
        kind: "anonymous",
        reason: `already ${same} anonymous connections from ${ip}, the limit (mqtt_max_anonymous_per_address)`,
      };
    }
    return null;
  }

  return (client, username, password, callback) =>
    access.authenticate(client, username, password, (err, ok) => {
      if (err || !ok) return callback(err, ok);
      const refusal = kindLimit(client);
      if (refusal === null) return callback(null, true);
      deps.onRefused(client, refusal);
      callback(Object.assign(new Error(refusal.reason), { returnCode: 3 }), false);
    });
}
