// Who may do what on the MQTT broker: pure decisions, no I/O. The broker
// (lib/server/mqtt/broker.ts) asks these at CONNECT, PUBLISH and SUBSCRIBE
// and passes in what it looked up in the store.
//
// In the spirit of Mosquitto's `pattern write home/+/sensors/%u/#`:
//
//   who                          publish                                   subscribe
//   a sensor (username = uid)    its own reading and status only           its own config only
//   API token, scope write       any reading/status, other topics;         anything, $SYS included
//                                never config, alerts or $SYS
//   API token, scope read        nothing                                   anything but $SYS
//   anonymous, only while        readings of devices without a secret      nothing
//   accept_anonymous_sensors=1   of their own (earlier sensors)
//   the server itself            config (in-process, not as a client)      -
//
// Nobody publishes a `config` topic as a client: a sensor applies what arrives
// there (interval, calibration offsets), so only the server may write it.

import { ID_PATTERN, parseTopic } from "../../shared/contract.ts";
import { hashSecret, secretMatches } from "./secrets.ts";

/** Who a connection is, decided at CONNECT. */
export type Principal =
  { kind: "device"; uid: string } | { kind: "token"; name: string; scope: "read" | "write" } | { kind: "anonymous" };

/** A refusal: `cause` is short and stable (log throttling groups by it), `reason` is for a person. */
export interface Refusal {
  cause: string;
  reason: string;
}

/** What a decision says: allowed, or why not. */
export type Decision = { allow: true } | ({ allow: false } & Refusal);

const ALLOW: Decision = { allow: true };
const deny = (cause: string, reason: string): Decision => ({ allow: false, cause, reason });

/** What `authenticate` needs looked up (the store's rows, reduced to what decides). */
export interface CredentialLookups {
  /** The SHA-256 of a device's MQTT secret, or null when the device has none (or does not exist). */
  deviceSecretHash(uid: string): string | null;
  /** The API token whose token hash this is, or null. */
  tokenByHash(tokenHash: string): { name: string; scope: "read" | "write"; revoked: boolean } | null;
  /** Whether `accept_anonymous_sensors` is on (an upgraded install). */
  anonymousAllowed(): boolean;
}

/**
 * Decides who a CONNECT is from its username and password. A sensor's
 * username is its device uid and its password the secret it got at
 * enrollment; a tool's username is an API token's name and its password the
 * token. No username: anonymous, only while the setting allows it.
 */
export function authenticate(
  username: string | undefined,
  password: string | undefined,
  lookups: CredentialLookups,
): { principal: Principal } | Refusal {
  if (username === undefined || username === "") {
    if (password !== undefined && password !== "") {
      return { cause: "password without username", reason: "a password without a username" };
    }
    if (lookups.anonymousAllowed()) return { principal: { kind: "anonymous" } };
    return {
      cause: "anonymous",
      reason: "anonymous clients are not accepted: give a device uid and its secret, or an API token's name and the token",
    };
  }
  if (password === undefined || password === "") {
    return { cause: "no password", reason: `username ${JSON.stringify(username.slice(0, 64))} without a password` };
  }
  if (ID_PATTERN.test(username)) {
    const hash = lookups.deviceSecretHash(username);
    if (hash !== null && secretMatches(password, hash)) return { principal: { kind: "device", uid: username } };
  }
  const token = lookups.tokenByHash(hashSecret(password));
  // Token names are unique without regard to case (the table's COLLATE NOCASE).
  if (token !== null && token.name.toLowerCase() === username.toLowerCase()) {
    if (token.revoked) return { cause: "revoked token", reason: `API token ${JSON.stringify(token.name)} is revoked` };
    return { principal: { kind: "token", name: token.name, scope: token.scope } };
  }
  return { cause: "bad credentials", reason: `unknown username ${JSON.stringify(username.slice(0, 64))} or wrong password` };
}

/** A topic as the ACL sees it. */
export type TopicClass =
  /** `$SYS/…` and anything else starting with `$`: the broker's own. */
  | { kind: "system" }
  /** `home/+/sensors/+/config`, valid ids or not: only the server publishes there. */
  | { kind: "config" }
  /** `home/+/alerts/#`: the alert states and tests the server publishes (retained); only it publishes there. */
  | { kind: "alerts" }
  /** A reading or status of a device, its topic valid. */
  | { kind: "device"; homeId: string; deviceUid: string; message: "reading" | "status" }
  /** Anything else; `badDeviceTopic` says why a topic under `home/…/sensors/` is not valid. */
  | { kind: "other"; badDeviceTopic: string | null };

const SYSTEM: TopicClass = { kind: "system" };
const CONFIG: TopicClass = { kind: "config" };
const ALERTS: TopicClass = { kind: "alerts" };
const OTHER: TopicClass = { kind: "other", badDeviceTopic: null };

/**
 * Classifies a topic a client publishes to, splitting it once (it runs for
 * every reading; the broker reuses the parts). A topic under
 * `home/…/sensors/` that is not valid says why, in parseTopic's words.
 */
export function classifyTopic(topic: string): TopicClass {
  if (topic.charCodeAt(0) === 36 /* $ */) return SYSTEM;
  const parts = topic.split("/");
  if (parts[0] === "home" && parts[2] === "alerts") return ALERTS;
  if (parts.length === 5 && parts[0] === "home" && parts[2] === "sensors") {
    const kind = parts[4];
    if (kind === "config") return CONFIG;
    const homeId = parts[1]!;
    const deviceUid = parts[3]!;
    if ((kind === "reading" || kind === "status") && ID_PATTERN.test(homeId) && ID_PATTERN.test(deviceUid)) {
      return { kind: "device", homeId, deviceUid, message: kind };
    }
  }
  if (!(topic.startsWith("home/") && topic.includes("/sensors/"))) return OTHER;
  const parsed = parseTopic(topic);
  return { kind: "other", badDeviceTopic: "error" in parsed ? parsed.error : `topic ${JSON.stringify(topic)} is not valid` };
}

/** Facts a publish decision may need, looked up only when it does (anonymous readings). */
export interface PublishFacts {
  /** Whether the device has an MQTT secret of its own (then only it may publish as it). */
  deviceHasSecret(uid: string): boolean;
  /** Whether `accept_anonymous_sensors` is still on. */
  anonymousAllowed(): boolean;
}

/** Whether `principal` may publish to a topic of class `topic`. */
export function mayPublish(principal: Principal, topic: TopicClass, facts: PublishFacts): Decision {
  if (topic.kind === "system") return deny("publish $SYS", "$SYS topics are the broker's own");
  if (topic.kind === "config") return deny("publish config", "config topics are published by the server only");
  if (topic.kind === "alerts") return deny("publish alerts", "alert topics are published by the server only");
  switch (principal.kind) {
    case "device":
      if (topic.kind !== "device")
        return deny("device publish outside its topics", "a sensor publishes only its own reading and status");
      if (topic.deviceUid !== principal.uid)
        return deny(
          "device publish as another",
          `a sensor publishes only as itself (${principal.uid}), not as ${topic.deviceUid}`,
        );
      return ALLOW;
    case "token":
      if (principal.scope === "read")
        return deny("read token publish", `API token ${JSON.stringify(principal.name)} is read-only`);
      return ALLOW;
    case "anonymous":
      if (topic.kind !== "device" || topic.message !== "reading")
        return deny("anonymous publish outside readings", "an anonymous sensor publishes readings only");
      if (!facts.anonymousAllowed()) return deny("anonymous", "accept_anonymous_sensors was turned off");
      if (facts.deviceHasSecret(topic.deviceUid))
        return deny(
          "anonymous publish as enrolled",
          `${topic.deviceUid} has its own MQTT secret: an anonymous client cannot publish as it`,
        );
      return ALLOW;
  }
}

/** Whether `principal` may subscribe to `filter` (a topic filter, wildcards allowed). */
export function maySubscribe(principal: Principal, filter: string): Decision {
  const system = filter.charCodeAt(0) === 36; /* $ */
  switch (principal.kind) {
    case "device": {
      const parts = filter.split("/");
      const own =
        parts.length === 5 &&
        parts[0] === "home" &&
        (parts[1] === "+" || ID_PATTERN.test(parts[1]!)) &&
        parts[2] === "sensors" &&
        parts[3] === principal.uid &&
        parts[4] === "config";
      return own ? ALLOW : deny("device subscribe outside its config", "a sensor subscribes only to its own config topic");
    }
    case "token":
      if (system && principal.scope !== "write")
        return deny("read token subscribe $SYS", "$SYS (client ids, subscriptions) is readable only with a write token");
      return ALLOW;
    case "anonymous":
      return deny("anonymous subscribe", "an anonymous sensor cannot subscribe");
  }
}

/**
 * Whether a connection of `newcomer` may take over the client id an existing
 * connection of `holder` uses (MQTT disconnects the older one). Only the same
 * identity may: otherwise any client could cut a sensor off by reusing its id.
 */
export function mayTakeOver(holder: Principal, newcomer: Principal): boolean {
  if (holder.kind !== newcomer.kind) return false;
  if (holder.kind === "device") return holder.uid === (newcomer as typeof holder).uid;
  if (holder.kind === "token") return holder.name.toLowerCase() === (newcomer as typeof holder).name.toLowerCase();
  return true;
}

/** How a principal is named in logs: `device aht20-f49c53`, `token grafana (read)`, `anonymous`. */
export function describePrincipal(p: Principal): string {
  return p.kind === "device" ? `device ${p.uid}` : p.kind === "token" ? `token ${p.name} (${p.scope})` : "anonymous";
}
