// The MQTT access rules as pure decisions (lib/server/auth/mqtt-acl.ts):
// who a CONNECT is, and what each kind of client may publish and subscribe.
// The broker's use of them, with real clients, is test/mqtt-auth.test.ts.

import { describe, expect, test } from "bun:test";
import {
  authenticate,
  classifyTopic,
  mayPublish,
  maySubscribe,
  mayTakeOver,
  type CredentialLookups,
  type Principal,
  type PublishFacts,
} from "../lib/server/auth/mqtt-acl.ts";
import { hashSecret } from "../lib/server/auth/secrets.ts";

const SECRET = "device-secret-of-aht20-aaaaaa";
const TOKEN = "tt_the-grafana-token";

function lookups(options: { anonymous?: boolean; revoked?: boolean } = {}): CredentialLookups {
  return {
    deviceSecretHash: (uid) => (uid === "aht20-aaaaaa" ? hashSecret(SECRET) : null),
    tokenByHash: (hash) =>
      hash === hashSecret(TOKEN) ? { name: "Grafana", scope: "read", revoked: options.revoked ?? false } : null,
    anonymousAllowed: () => options.anonymous ?? false,
  };
}

const device: Principal = { kind: "device", uid: "aht20-aaaaaa" };
const reader: Principal = { kind: "token", name: "grafana", scope: "read" };
const writer: Principal = { kind: "token", name: "owner", scope: "write" };
const anonymous: Principal = { kind: "anonymous" };

const facts = (options: { enrolled?: string[]; anonymous?: boolean } = {}): PublishFacts => ({
  deviceHasSecret: (uid) => (options.enrolled ?? ["aht20-aaaaaa"]).includes(uid),
  anonymousAllowed: () => options.anonymous ?? true,
});

describe("authenticate", () => {
  test("a device uid with its secret is that device", () => {
    expect(authenticate("aht20-aaaaaa", SECRET, lookups())).toEqual({ principal: device });
  });

  test("an API token's name with the token is that token, its name in any case", () => {
    expect(authenticate("grafana", TOKEN, lookups())).toEqual({ principal: { kind: "token", name: "Grafana", scope: "read" } });
  });

  const refused: [string, string | undefined, string | undefined, ReturnType<typeof lookups>, RegExp][] = [
    ["no username on a new install", undefined, undefined, lookups(), /^anonymous clients are not accepted/],
    ["a wrong device secret", "aht20-aaaaaa", "guess", lookups(), /unknown username "aht20-aaaaaa" or wrong password/],
    ["another device's secret", "aht20-bbbbbb", SECRET, lookups(), /unknown username "aht20-bbbbbb"/],
    ["a token under another name", "owner", TOKEN, lookups(), /unknown username "owner"/],
    ["a revoked token", "Grafana", TOKEN, lookups({ revoked: true }), /API token "Grafana" is revoked/],
    ["a username without a password", "aht20-aaaaaa", undefined, lookups(), /without a password/],
    ["a password without a username", undefined, SECRET, lookups({ anonymous: true }), /a password without a username/],
    ["a device secret used as a token's name", "Grafana", SECRET, lookups(), /unknown username "Grafana"/],
  ];
  for (const [name, username, password, l, reason] of refused) {
    test(`refused: ${name}`, () => {
      const result = authenticate(username, password, l);
      expect("principal" in result).toBe(false);
      expect((result as { reason: string }).reason).toMatch(reason);
    });
  }

  test("anonymous is accepted only while accept_anonymous_sensors is on", () => {
    expect(authenticate(undefined, undefined, lookups({ anonymous: true }))).toEqual({ principal: anonymous });
    expect(authenticate("", "", lookups({ anonymous: true }))).toEqual({ principal: anonymous });
  });
});

describe("classifyTopic", () => {
  test("each kind of topic", () => {
    expect(classifyTopic("home/home-001/sensors/aht20-aaaaaa/reading")).toEqual({
      kind: "device",
      homeId: "home-001",
      deviceUid: "aht20-aaaaaa",
      message: "reading",
    });
    expect(classifyTopic("home/h/sensors/x/status")).toMatchObject({ kind: "device", message: "status" });
    expect(classifyTopic("home/h/sensors/x/config")).toEqual({ kind: "config" });
    // A config topic with ids that are not valid is still the server's.
    expect(classifyTopic("home/bad home/sensors/bad uid!/config")).toEqual({ kind: "config" });
    expect(classifyTopic("$SYS/broker/clients")).toEqual({ kind: "system" });
    expect(classifyTopic("weather/outside")).toEqual({ kind: "other", badDeviceTopic: null });
    expect(classifyTopic("home/h/sensors/bad uid!/reading")).toMatchObject({
      kind: "other",
      badDeviceTopic: expect.stringMatching(/device_uid/),
    });
  });
});

describe("mayPublish", () => {
  const reading = (uid: string) => classifyTopic(`home/home-001/sensors/${uid}/reading`);
  const status = (uid: string) => classifyTopic(`home/home-001/sensors/${uid}/status`);
  const config = (uid: string) => classifyTopic(`home/home-001/sensors/${uid}/config`);
  const allowed = (p: Principal, topic: ReturnType<typeof classifyTopic>, f = facts()) => mayPublish(p, topic, f).allow;

  test("a device publishes its own reading and status, nothing else", () => {
    expect(allowed(device, reading("aht20-aaaaaa"))).toBe(true);
    expect(allowed(device, status("aht20-aaaaaa"))).toBe(true);
    expect(allowed(device, reading("aht20-bbbbbb"))).toBe(false);
    expect(allowed(device, status("aht20-bbbbbb"))).toBe(false);
    expect(allowed(device, config("aht20-aaaaaa"))).toBe(false);
    expect(allowed(device, classifyTopic("weather/outside"))).toBe(false);
    expect(allowed(device, classifyTopic("home/h/sensors/bad uid!/reading"))).toBe(false);
    expect(mayPublish(device, reading("aht20-bbbbbb"), facts())).toMatchObject({
      reason: expect.stringMatching(/only as itself \(aht20-aaaaaa\)/),
    });
  });

  test("nobody publishes a config topic or $SYS, not even a write token", () => {
    for (const p of [device, reader, writer, anonymous]) {
      expect(mayPublish(p, config("aht20-aaaaaa"), facts())).toMatchObject({ allow: false, cause: "publish config" });
      expect(mayPublish(p, classifyTopic("$SYS/x"), facts())).toMatchObject({ allow: false, cause: "publish $SYS" });
    }
  });

  test("nobody publishes an alert state as a client: a forged one would open or close an incident for Home Assistant", () => {
    for (const p of [device, reader, writer, anonymous]) {
      for (const topic of ["home/home-001/alerts/rule-1-aht20-aaaaaa", "home/home-001/alerts/test", "home/x/alerts"]) {
        expect(mayPublish(p, classifyTopic(topic), facts())).toMatchObject({
          allow: false,
          cause: "publish alerts",
          reason: "alert topics are published by the server only",
        });
      }
    }
  });

  test("a write token publishes readings and status of any device and other topics; a read token nothing", () => {
    for (const topic of [reading("aht20-aaaaaa"), status("aht20-zzzzzz"), classifyTopic("weather/outside")]) {
      expect(allowed(writer, topic)).toBe(true);
      expect(allowed(reader, topic)).toBe(false);
    }
  });

  test("an anonymous client publishes readings of devices without a secret, while the setting is on", () => {
    expect(allowed(anonymous, reading("aht20-old001"))).toBe(true);
    expect(allowed(anonymous, reading("aht20-aaaaaa"))).toBe(false);
    expect(allowed(anonymous, status("aht20-old001"))).toBe(false);
    expect(allowed(anonymous, classifyTopic("weather/outside"))).toBe(false);
    expect(allowed(anonymous, reading("aht20-old001"), facts({ anonymous: false }))).toBe(false);
  });
});

describe("maySubscribe", () => {
  const allowed = (p: Principal, filter: string) => maySubscribe(p, filter).allow;

  test("a device subscribes only to its own config topic", () => {
    expect(allowed(device, "home/home-001/sensors/aht20-aaaaaa/config")).toBe(true);
    expect(allowed(device, "home/+/sensors/aht20-aaaaaa/config")).toBe(true);
    for (const filter of [
      "home/+/sensors/aht20-bbbbbb/config",
      "home/+/sensors/+/config",
      "home/#",
      "#",
      "home/home-001/sensors/aht20-aaaaaa/#",
      "home/home-001/sensors/aht20-aaaaaa/reading",
      "$SYS/#",
    ]) {
      expect(allowed(device, filter)).toBe(false);
    }
  });

  test("tokens subscribe to anything; $SYS only with a write token", () => {
    for (const filter of ["#", "home/#", "home/+/sensors/+/config"]) {
      expect(allowed(reader, filter)).toBe(true);
      expect(allowed(writer, filter)).toBe(true);
    }
    expect(allowed(reader, "$SYS/#")).toBe(false);
    expect(allowed(writer, "$SYS/#")).toBe(true);
  });

  test("an anonymous client subscribes to nothing", () => {
    expect(allowed(anonymous, "home/+/sensors/aht20-old001/config")).toBe(false);
  });
});

test("a client id is taken over only by the same identity", () => {
  expect(mayTakeOver(device, { kind: "device", uid: "aht20-aaaaaa" })).toBe(true);
  expect(mayTakeOver(device, { kind: "device", uid: "aht20-bbbbbb" })).toBe(false);
  expect(mayTakeOver(device, writer)).toBe(false);
  expect(mayTakeOver(writer, { kind: "token", name: "OWNER", scope: "write" })).toBe(true);
  expect(mayTakeOver(reader, device)).toBe(false);
  expect(mayTakeOver(device, anonymous)).toBe(false);
});
