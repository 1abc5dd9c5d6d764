// The broker's side of MQTT access control: Aedes' authenticate and
// authorizeSubscribe hooks and the publish decision, with the store's
// credentials looked up and every decision taken by lib/server/auth/mqtt-acl.ts.
// Each connection's principal (who it is) is decided once, at CONNECT, and
// kept beside the Aedes client. Credentials can go away while a client stays
// connected (a token revoked, a device given a new secret, its secret withdrawn or the device deleted,
// anonymous sensors turned off, possibly by a command in another process):
// `recheck` closes such connections; the broker runs it every few seconds.
// Every refusal is logged once per cause, address and minute, with the client
// id and address.

import type { AuthenticateHandler, AuthorizeSubscribeHandler, Client, Subscription } from "aedes";
import {
  authenticate,
  describePrincipal,
  mayPublish,
  maySubscribe,
  mayTakeOver,
  type Decision,
  type Principal,
  type TopicClass,
} from "../auth/mqtt-acl.ts";
import { hashSecret, WITHDRAWN_SECRET_HASH } from "../auth/secrets.ts";
import type { Log } from "../../shared/log.ts";
import type { Store } from "../store/store.ts";
import { remoteAddress, remoteIp, type LogThrottle } from "./refusals.ts";

/** What a connection proved at CONNECT, to check later that it still holds. */
interface Session {
  principal: Principal;
  /** The secret's or token's hash it connected with (null for anonymous). */
  proof: string | null;
}

/** What the access control counts (part of the broker's stats, /api/v1/stats). */
export interface AccessCounters {
  /** Connections refused by a limit (client id length, client count) or by authentication. */
  connectionsRefused: number;
  /** Publishes the ACL refused (not stored; the connection was closed). */
  publishRefused: number;
  /** Subscriptions the ACL refused (SUBACK 0x80). */
  subscribeRefused: number;
  /** Connections closed because their credentials stopped holding. */
  closedOnRecheck: number;
}

/** The principal of every client in the benchmark's open mode. */
const OPEN: Principal = { kind: "token", name: "(open broker)", scope: "write" };

/** MQTT's CONNACK return code for "not authorized" (3.1.1 §3.2.2.3); Mosquitto 2 answers it for every refusal. */
const NOT_AUTHORIZED = 5;

/**
 * Creates the access control of one broker. `open` turns authentication and
 * the ACL off (every client may do what the earlier broker allowed): only
 * bench/ingest.ts uses it, to measure what they cost; no setting reaches it.
 */
export function createMqttAccess(deps: {
  store: Pick<Store, "auth">;
  log: Log;
  now: () => number;
  throttle: LogThrottle;
  /** The counters to add refusals to (the broker's stats). */
  stats: AccessCounters;
  /** The connected client that holds a client id, if any (for takeovers). */
  clientById(id: string): Client | undefined;
  open?: boolean;
}) {
  const { store, log, now, throttle } = deps;
  const auth = store.auth;
  const sessions = new WeakMap<Client, Session>();
  const stats = deps.stats;

  const anonymousAllowed = () => auth.settings.get("accept_anonymous_sensors") === "1";
  const lookups = {
    deviceSecretHash: (uid: string) => auth.credentials.forDevice(uid)?.secret_hash ?? null,
    tokenByHash(tokenHash: string) {
      const row = auth.tokens.byHash(tokenHash);
      return row ? { name: row.name, scope: row.scope, revoked: row.revoked_at !== null } : null;
    },
    anonymousAllowed,
  };
  const facts = {
    deviceHasSecret: (uid: string) => auth.credentials.forDevice(uid) !== null,
    anonymousAllowed,
  };

  /** One warning per cause, address and minute, with who and what. */
  function logRefusal(what: string, client: Client | null, refusal: { cause: string; reason: string }, extra = {}) {
    const suppressed = throttle(`${what}:${refusal.cause}:${remoteIp(client)}`, now());
    if (suppressed === null) return;
    const session = client ? sessions.get(client) : undefined;
    log.warn(what, {
      client: client?.id?.slice(0, 64),
      as: session ? describePrincipal(session.principal) : undefined,
      address: remoteAddress(client),
      ...extra,
      reason: refusal.reason,
      suppressed: suppressed || undefined,
    });
  }

  const authenticateHook: AuthenticateHandler = (client, username, password, callback) => {
    if (deps.open) {
      sessions.set(client, { principal: OPEN, proof: null });
      return callback(null, true);
    }
    let result: ReturnType<typeof authenticate>;
    try {
      result = authenticate(username, password?.toString("utf8"), lookups);
    } catch (err) {
      // The database failed: refuse this connection, say why, keep serving.
      log.error("cannot check MQTT credentials", { client: client.id, error: err as Error });
      return callback(Object.assign(new Error("server unavailable"), { returnCode: 3 }), false);
    }
    if (!("principal" in result)) {
      stats.connectionsRefused++;
      logRefusal("refused connection", client, result, { user: username?.slice(0, 64) });
      return callback(Object.assign(new Error(result.reason), { returnCode: NOT_AUTHORIZED }), false);
    }
    const { principal } = result;
    // Anonymous access is for earlier sensors, which speak TCP. Over WebSockets any web page a household
    // member opens could connect (browsers send no CORS check for them) and publish as an earlier sensor.
    if (principal.kind === "anonymous" && (client.conn as { remotePort?: unknown } | undefined)?.remotePort === "ws") {
      stats.connectionsRefused++;
      const refusal = {
        cause: "anonymous over WebSocket",
        reason: "anonymous clients may not use MQTT over WebSockets; log in with an API token",
      };
      logRefusal("refused connection", client, refusal, {});
      return callback(Object.assign(new Error(refusal.reason), { returnCode: NOT_AUTHORIZED }), false);
    }
    const holder = client.id ? deps.clientById(client.id) : undefined;
    const held = holder && holder !== client ? sessions.get(holder) : undefined;
    if (held && !mayTakeOver(held.principal, principal)) {
      stats.connectionsRefused++;
      const refusal = {
        cause: "client id of another",
        reason: `client id ${JSON.stringify(client.id)} is in use by ${describePrincipal(held.principal)}`,
      };
      logRefusal("refused connection", client, refusal, { user: username?.slice(0, 64) });
      return callback(Object.assign(new Error(refusal.reason), { returnCode: NOT_AUTHORIZED }), false);
    }
    const proof = principal.kind === "anonymous" ? null : hashSecret(password!.toString("utf8"));
    sessions.set(client, { principal, proof });
    try {
      if (principal.kind === "device") {
        const row = auth.credentials.forDevice(principal.uid);
        if (row) auth.credentials.touch(row.device_id);
      } else if (principal.kind === "token") {
        const row = auth.tokens.byHash(proof!);
        if (row) auth.tokens.touch(row.id);
      }
    } catch (err) {
      log.warn("cannot record when credentials were last used", { error: err as Error });
    }
    log.debug("client authenticated", { client: client.id, as: describePrincipal(principal), address: remoteAddress(client) });
    callback(null, true);
  };

  const authorizeSubscribe: AuthorizeSubscribeHandler = (client, sub, callback) => {
    const session = client ? sessions.get(client) : undefined;
    if (deps.open) return callback(null, sub);
    const decision: Decision = session
      ? maySubscribe(session.principal, sub.topic)
      : { allow: false, cause: "no session", reason: "not authenticated" };
    if (decision.allow) return callback(null, sub);
    stats.subscribeRefused++;
    logRefusal("refused subscription", client, decision, { topic: sub.topic.slice(0, 200) });
    // A null subscription is granted as 0x80 (failure) in the SUBACK; the connection stays.
    callback(null, null as unknown as Subscription);
  };

  return {
    authenticate: authenticateHook,
    authorizeSubscribe,
    /**
     * Whether `client` may publish to `topic` (classified by the caller);
     * refusals are counted and logged here. A null client is a will whose
     * client is gone: nobody to check it against, so it is refused.
     */
    decidePublish(client: Client | null, topic: string, cls: TopicClass): Decision {
      if (deps.open) {
        return cls.kind === "system"
          ? { allow: false, cause: "publish $SYS", reason: "$SYS topics are the broker's own" }
          : { allow: true };
      }
      const session = client ? sessions.get(client) : undefined;
      const decision: Decision = session
        ? mayPublish(session.principal, cls, facts)
        : { allow: false, cause: "no session", reason: "not authenticated" };
      if (!decision.allow) {
        stats.publishRefused++;
        logRefusal("refused publish", client, decision, { topic: topic.slice(0, 200) });
      }
      return decision;
    },
    /** Who a connected client is (null before it authenticated). */
    principalOf(client: Client): Principal | null {
      return sessions.get(client)?.principal ?? null;
    },
    /**
     * Closes the connections whose credentials no longer hold: a revoked or
     * deleted token, a device deleted or given a new secret, anonymous
     * sensors turned off. Returns how many it closed.
     */
    recheck(clients: Iterable<Client>): number {
      if (deps.open) return 0;
      let closed = 0;
      for (const client of clients) {
        const session = sessions.get(client);
        if (!session || client.closed) continue;
        let gone: string | null;
        try {
          gone = invalidated(session);
        } catch (err) {
          log.warn("cannot recheck MQTT credentials", { error: err as Error });
          return closed;
        }
        if (gone === null) continue;
        closed++;
        stats.closedOnRecheck++;
        log.info("closing connection: its credentials no longer hold", {
          client: client.id,
          as: describePrincipal(session.principal),
          address: remoteAddress(client),
          reason: gone,
        });
        // Its last will is not published: the server ended it, and a will ("offline") could
        // re-register a deleted device or land after a re-enrolled agent's birth message.
        (client as unknown as { will: unknown }).will = null;
        client.close();
      }
      return closed;
    },
  };

  /** Why a session's credentials no longer hold, or null when they still do. */
  function invalidated(session: Session): string | null {
    const p = session.principal;
    if (p.kind === "anonymous") return anonymousAllowed() ? null : "accept_anonymous_sensors was turned off";
    if (p.kind === "device") {
      const row = auth.credentials.forDevice(p.uid);
      if (!row) return "the device was deleted or lost its MQTT secret";
      if (row.secret_hash === WITHDRAWN_SECRET_HASH) return "the device's MQTT secret was withdrawn";
      return row.secret_hash === session.proof ? null : "the device was given a new MQTT secret";
    }
    const row = auth.tokens.byHash(session.proof!);
    if (!row) return "the API token was deleted";
    return row.revoked_at === null ? null : "the API token was revoked";
  }
}

/** The broker's access control. */
export type MqttAccess = ReturnType<typeof createMqttAccess>;
