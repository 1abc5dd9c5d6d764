// API tokens from making to revoking (shown once, stored hashed, listed with
// their last use, refused at once when revoked), on the API and the tokens
// page; sensor enrollment (the contract install.sh uses: good, expired,
// used up, revoked, unknown token, bad input), enrollment tokens, a device's
// new MQTT password, and the owner's switches through the API.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { secretMatches } from "../lib/server/auth/secrets.ts";
import { startServer, type TestServer } from "./helpers.ts";
import { dumpDb, fieldErrors } from "./auth-helpers.ts";
import { postForm } from "./web-helpers.ts";

const MIN = 60_000;
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

describe("API tokens", () => {
  let clock = Date.parse("2026-02-01T10:00:00Z");
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, { now: () => clock });
  });
  afterAll(() => server?.stop());

  test("made by the owner, shown once, stored as SHA-256, listed with its last use, revoked at once", async () => {
    const made = await server.api("/api/v1/tokens", { as: "session", body: { name: "grafana", scope: "read" } });
    expect(made.status).toBe(201);
    const token: string = made.body.data.token;
    expect(token).toMatch(/^tt_[A-Za-z0-9_-]{43}$/);
    expect(made.body.data).toMatchObject({
      name: "grafana",
      scope: "read",
      prefix: token.slice(0, 8),
      last_used_at: null,
      revoked_at: null,
    });
    // Only its hash is kept: no column of any table holds the token.
    expect(dumpDb(server.db)).not.toContain(token);
    expect(server.store.auth.tokens.byName("grafana")!.token_hash).toBe(sha256(token));
    const listed = (await server.api("/api/v1/tokens")).body.data;
    expect(JSON.stringify(listed)).not.toContain(token);
    expect(listed.find((t: { name: string }) => t.name === "grafana")).not.toHaveProperty("token");

    clock += 5 * MIN;
    const read = await server.api("/api/v1/readings/latest", { as: { token } });
    expect(read.status).toBe(200);
    const used = (await server.api("/api/v1/tokens")).body.data.find((t: { name: string }) => t.name === "grafana");
    expect(used.last_used_at).toBe(new Date(clock).toISOString());

    // A read token reads, and writes nothing.
    expect((await server.api("/api/v1/rooms", { as: { token }, body: { name: "Hall" } })).status).toBe(403);

    const revoked = await server.api(`/api/v1/tokens/${used.id}`, { method: "DELETE" });
    expect(revoked.status).toBe(200);
    expect(revoked.body.data.revoked_at).toBe(new Date(clock).toISOString());
    expect(await server.api("/api/v1/readings/latest", { as: { token } })).toEqual({
      status: 401,
      body: { error: "Authorization: this API token is not valid or has been revoked" },
    });
    // Revoked ones stay listed, after the live ones.
    expect((await server.api("/api/v1/tokens")).body.data.map((t: { name: string }) => t.name)).toEqual(["test", "grafana"]);
  });

  test("a write token does what the owner does, without CSRF (there is no cookie to forge)", async () => {
    const { token } = (await server.api("/api/v1/tokens", { body: { name: "home-assistant", scope: "write" } })).body.data;
    expect((await server.api("/api/v1/rooms", { as: { token }, body: { name: "Garage" } })).status).toBe(201);
    const me = await server.api("/api/v1/me", { as: { token } });
    expect(me.body.data).toEqual({ kind: "token", role: "owner", name: "home-assistant", scope: "write", owner_exists: true });
  });

  const bad: [string, unknown, number, string][] = [
    ["a name with a space", { name: "my script", scope: "read" }, 400, "name: must be 1-50 characters of A-Z a-z 0-9 . _ -"],
    ["no name", { scope: "read" }, 400, "name must be 1-50 characters of A-Z a-z 0-9 . _ -"],
    ["a scope that does not exist", { name: "x", scope: "admin" }, 400, "scope must be read or write"],
    [
      "a name already taken (case aside)",
      { name: "GRAFANA", scope: "read" },
      409,
      'name: a token named "GRAFANA" exists already',
    ],
  ];
  for (const [what, body, status, message] of bad) {
    test(`${what} is refused (${status}) naming the field`, async () => {
      const before = server.store.auth.tokens.list().length;
      const res = await server.api("/api/v1/tokens", { body });
      expect(res.status).toBe(status);
      expect(res.body.error).toStartWith(message);
      expect(server.store.auth.tokens.list().length).toBe(before);
    });
  }

  test("DELETE of a token id that is not a number, or unknown, names it", async () => {
    expect((await server.api("/api/v1/tokens/abc", { method: "DELETE" })).body.error).toStartWith("id:");
    expect(await server.api("/api/v1/tokens/999", { method: "DELETE" })).toEqual({
      status: 404,
      body: { error: 'token "999" not found' },
    });
  });

  test("the tokens page makes one, shows it this once, lists it and revokes it", async () => {
    const made = await postForm(server, "/tokens", { name: "curl", scope: "write" });
    expect(made.status).toBe(200);
    const token = /<pre id="new-token">(tt_[A-Za-z0-9_-]{43})<\/pre>/.exec(made.html)![1]!;
    expect((await server.api("/api/v1/rooms", { as: { token } })).status).toBe(200);
    const page = await (await server.fetch("/tokens")).text();
    expect(page).not.toContain(token);
    expect(page).toContain(`<code>${token.slice(0, 8)}…</code>`);
    const id = server.store.auth.tokens.byName("curl")!.id;
    const revoked = await postForm(server, `/tokens/${id}/revoke`, {});
    expect(revoked.status).toBe(303);
    expect((await server.api("/api/v1/rooms", { as: { token } })).status).toBe(401);
    const bad = await postForm(server, "/tokens", { name: "", scope: "everything" });
    expect(bad.status).toBe(422);
    expect(fieldErrors(bad.html)).toEqual({
      name: "enter a name (what will use it: grafana, home-assistant…)",
      scope: "&quot;everything&quot; is not one of read, write",
    });
  });
});

describe("enrollment", () => {
  let clock = Date.parse("2026-02-01T10:00:00Z");
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, { now: () => clock });
  });
  afterAll(() => server?.stop());

  const token = async (body: Record<string, unknown> = {}) => {
    const res = await server.api("/api/v1/enrollment-tokens", { body });
    expect(res.status).toBe(201);
    return res.body.data as { id: number; token: string; expires_at: string; max_uses: number; uses: number };
  };
  const enroll = (body: Record<string, unknown>) => server.api("/api/v1/enroll", { as: "none", body });

  test("a sensor enrolls with a token and no account: its MQTT login, placed in its room, its secret stored hashed", async () => {
    const t = await token({ ttl_minutes: 30, max_uses: 2 });
    expect(t).toMatchObject({ max_uses: 2, uses: 0, expires_at: new Date(clock + 30 * MIN).toISOString() });
    const res = await enroll({ token: t.token, device_uid: "aht20-e0e0e0", room_name: "Salle à manger", label: "buffet" });
    expect(res.status).toBe(201);
    const data = res.body.data;
    expect(Object.keys(data)).toEqual(["mqtt_username", "mqtt_password", "home_id", "device", "ca_certificate"]);
    expect(data).toMatchObject({ mqtt_username: "aht20-e0e0e0", home_id: "home-001", ca_certificate: null });
    expect(data.mqtt_password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(data.device).toMatchObject({
      uid: "aht20-e0e0e0",
      label: "buffet",
      room: { uid: "salle-a-manger", name: "Salle à manger" },
    });
    expect(data.device).toEqual((await server.api("/api/v1/devices/aht20-e0e0e0")).body.data);
    const credential = server.store.auth.credentials.forDevice("aht20-e0e0e0")!;
    expect(secretMatches(data.mqtt_password, credential.secret_hash)).toBe(true);
    expect(dumpDb(server.db)).not.toContain(data.mqtt_password);
    expect(dumpDb(server.db)).not.toContain(t.token);
    // Enrolled again (a reinstall) into another room: moved, with a new secret; the old one stops.
    const again = await enroll({ token: t.token, device_uid: "aht20-e0e0e0", room_name: "Cuisine" });
    expect(again.body.data.device.room).toEqual({ uid: "cuisine", name: "Cuisine" });
    expect(secretMatches(data.mqtt_password, server.store.auth.credentials.forDevice("aht20-e0e0e0")!.secret_hash)).toBe(false);
    // Without a room it is registered unplaced.
    const t2 = await token();
    expect((await enroll({ token: t2.token, device_uid: "aht20-f0f0f0" })).body.data.device.room).toBeNull();
  });

  test("a used-up, expired, revoked or unknown token is refused with 401, and nothing is registered", async () => {
    const used = await token({ max_uses: 1 });
    expect((await enroll({ token: used.token, device_uid: "aht20-a1a1a1" })).status).toBe(201);
    const expired = await token({ ttl_minutes: 1 });
    const revoked = await token();
    expect((await server.api(`/api/v1/enrollment-tokens/${revoked.id}`, { method: "DELETE" })).status).toBe(200);
    clock += MIN;
    for (const [what, value] of [
      ["used up", used.token],
      ["expired", expired.token],
      ["revoked", revoked.token],
      ["unknown", "not-a-token"],
    ]) {
      const before = dumpDb(server.db);
      const res = await enroll({ token: value, device_uid: "aht20-b2b2b2", room_name: "Attic" });
      expect(`${what}: ${res.status} ${res.body.error}`).toBe(
        `${what}: 401 token: this enrollment token is unknown, expired, used up or revoked; make a new one`,
      );
      expect(dumpDb(server.db)).toBe(before);
    }
  });

  const badInput: [string, Record<string, unknown>, string][] = [
    ["a bad uid", { device_uid: "bad uid!" }, "device_uid must be 1-50 characters"],
    ["no uid", {}, "device_uid must be 1-50 characters"],
    [
      "a room without letters",
      { device_uid: "aht20-c3c3c3", room_name: "!!!" },
      "room_name: must contain at least one letter or digit",
    ],
    [
      "a label too long",
      { device_uid: "aht20-c3c3c3", label: "x".repeat(101) },
      "label must be a string of at most 100 characters",
    ],
  ];
  for (const [what, body, message] of badInput) {
    test(`${what} is a 400 naming the field, and the token keeps its use`, async () => {
      const t = await token();
      const res = await enroll({ token: t.token, ...body });
      expect(res.status).toBe(400);
      expect(res.body.error).toStartWith(message);
      expect(server.store.auth.enrollment.byId(t.id)!.uses).toBe(0);
    });
  }

  test("no token at all is a 400 naming it", async () => {
    expect((await enroll({ device_uid: "aht20-c3c3c3" })).body.error).toBe("token must be the enrollment token (text)");
  });

  test("enrollment tokens: bad TTL or uses named; listed while live; the page makes one with the command to run", async () => {
    expect((await server.api("/api/v1/enrollment-tokens", { body: { ttl_minutes: 0 } })).body.error).toBe(
      "ttl_minutes must be a whole number from 1 to 10080",
    );
    expect((await server.api("/api/v1/enrollment-tokens", { body: { max_uses: 1.5 } })).body.error).toBe(
      "max_uses must be a whole number from 1 to 1000",
    );
    const listed = (await server.api("/api/v1/enrollment-tokens")).body.data;
    expect(JSON.stringify(listed)).not.toMatch(/"token"/);
    const page = await postForm(server, "/security/enrollment", { ttl_minutes: "15", max_uses: "3" });
    expect(page.status).toBe(200);
    const command = /<pre id="enroll-command">([^<]+)<\/pre>/.exec(page.html)![1]!;
    expect(command).toMatch(
      /^sudo \.\/install\.sh sensor --server 127\.0\.0\.1 --enroll [A-Za-z0-9_-]{43} --room &quot;Living room&quot;$/,
    );
    const bad = await postForm(server, "/security/enrollment", { ttl_minutes: "a week", max_uses: "0" });
    expect(bad.status).toBe(422);
    expect(fieldErrors(bad.html)).toEqual({
      ttl_minutes: "a whole number from 1 to 10080",
      max_uses: "a whole number from 1 to 1000",
    });
  });

  test("a device's new MQTT password, from the API or its page, is shown once and replaces the old one", async () => {
    await server.api("/api/v1/devices", { body: { device_uid: "aht20-0ld0ld", room_name: "Hall" } });
    const api = await server.api("/api/v1/devices/aht20-0ld0ld/mqtt-password", { body: {} });
    expect(api.status).toBe(201);
    expect(api.body.data.mqtt_username).toBe("aht20-0ld0ld");
    const page = await postForm(server, "/devices/aht20-0ld0ld/mqtt-password", {}, { htmx: true });
    expect(page.status).toBe(200);
    const shown = /username = aht20-0ld0ld\npassword = ([A-Za-z0-9_-]{43})/.exec(page.html)![1]!;
    const hash = server.store.auth.credentials.forDevice("aht20-0ld0ld")!.secret_hash;
    expect(secretMatches(shown, hash)).toBe(true);
    expect(secretMatches(api.body.data.mqtt_password, hash)).toBe(false);
    expect(await (await server.fetch("/devices/aht20-0ld0ld")).text()).not.toContain(shown);
    expect((await server.api("/api/v1/devices/nope/mqtt-password", { body: {} })).status).toBe(404);
  });
});

describe("the owner's switches through the API", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server?.stop());

  test("read by any reader, changed by the owner, a bad value named", async () => {
    expect((await server.api("/api/v1/settings")).body.data).toEqual({ public_read: false, accept_anonymous_sensors: false });
    const put = await server.api("/api/v1/settings", { method: "PUT", body: { accept_anonymous_sensors: true } });
    expect(put.body.data).toEqual({ public_read: false, accept_anonymous_sensors: true });
    expect(server.store.auth.settings.get("accept_anonymous_sensors")).toBe("1");
    expect((await server.api("/api/v1/settings", { method: "PUT", body: { public_read: "yes" } })).body.error).toBe(
      "public_read must be true or false",
    );
    const off = await postForm(server, "/security/switch", { switch: "accept_anonymous_sensors", value: "off" });
    expect(off.status).toBe(303);
    expect(server.store.auth.settings.get("accept_anonymous_sensors")).toBe("0");
    const bad = await postForm(server, "/security/switch", { switch: "everything", value: "maybe" });
    expect(bad.status).toBe(422);
    expect(bad.html).toContain(
      "switch: &quot;everything&quot; is not one of public_read, accept_anonymous_sensors; value: &quot;maybe&quot; is not one of on, off",
    );
  });
});
