// The attacker matrix: every write route of the app, read from the running
// server's own route table (a new route cannot be left out), is called the
// ways an attacker could: without a session, as a viewer, as the kiosk, with
// a read-only or a revoked API token, with the CSRF token missing or wrong,
// from a foreign Origin or Referer. Each must be refused with 401 or 403 and
// leave every row of the database as it was. Then the owner makes the same
// calls and none is refused: the refusals came from the guard, not from a
// bad path or body. Reads get the same treatment: refused to nobody,
// allowed with public_read, limited to the dashboard for the kiosk.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  OWNER,
  publishAcked,
  readingTopic,
  startServer,
  type TestServer,
  type TestSession,
} from "./helpers.ts";
import { dumpDb } from "./auth-helpers.ts";
import { isApiPath } from "../lib/server/http/errors.ts";

const T = Date.parse("2026-05-01T12:00:00Z");
const UID = "aht20-aaaaaa";
let server: TestServer;
let viewer: TestSession & { id: number };
let kiosk: TestSession;
let readToken: string;
let revokedToken: string;
let targetTokenId: number;
let enrollmentId: number;
/** Ids of an alert rule, incident and channel of the "reads" server (the write matrix's server has none: 404 after the guard). */
const alertIds: Record<string, number> = { rules: 1, incidents: 1, channels: 1 };

beforeAll(async () => {
  // A clock that stands still: a session or token used again is not touched, so the database is exactly comparable.
  server = await startServer({}, { now: () => T });
  const put = async (path: string, body: unknown, method = "POST") => {
    const res = await server.api(path, { method, body });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  await put("/api/v1/devices", { device_uid: UID, room_name: "Kitchen" });
  await put("/api/v1/rooms", { name: "Attic" });
  viewer = { ...(await server.signIn("vic")), id: server.auth.users.byName("vic")!.id };
  const { auth } = server;
  readToken = auth.tokens.create("grafana", "read").token;
  await server.api("/api/v1/rooms", { as: { token: readToken } }); // its first use is recorded now, not during the matrix
  const revoked = auth.tokens.create("old-script", "write");
  auth.tokens.revoke(revoked.row.id);
  revokedToken = revoked.token;
  targetTokenId = auth.tokens.create("target", "read").row.id;
  enrollmentId = auth.enrollment.createToken({}).row.id;
  const kioskSession = auth.kiosk.enter(auth.kiosk.create())!;
  kiosk = { cookie: `techtemp_session=${kioskSession.id}`, csrf: kioskSession.csrf };
});
afterAll(() => server?.stop());

/** A concrete path for a route pattern: each parameter filled with a thing that exists. */
function pathOf(pattern: string): string {
  const p = pattern.replace(/\/$/, "") || "/";
  return p
    .replace(/^\/api\/v1\/devices\/:uid/, `/api/v1/devices/${UID}`)
    .replace(/^\/devices\/:uid/, `/devices/${UID}`)
    .replace(/^\/api\/v1\/rooms\/:uid/, "/api/v1/rooms/attic")
    .replace(/^\/rooms\/:uid/, "/rooms/attic")
    .replace(/^\/users\/:id/, `/users/${viewer.id}`)
    .replace(/^\/(api\/v1\/)?tokens\/:id/, (_, api) => `/${api ?? ""}tokens/${targetTokenId}`)
    .replace(/\/enrollment(-tokens)?\/:id/, (_, suffix) => `/enrollment${suffix ?? ""}/${enrollmentId}`)
    .replace(/\/alerts\/(rules|incidents|channels)\/:id/, (_, what) => `/alerts/${what}/${alertIds[what]}`)
    .replace(/\/k\/:token/, "/k/nope");
}

/** A body each write route would take from the owner (refusals must not depend on it). */
const BODIES: Record<string, Record<string, unknown>> = {
  "POST /api/v1/devices": { device_uid: "aht20-new001", room_name: "Hall" },
  "PUT /api/v1/devices/:uid": { label: "pwned" },
  "POST /api/v1/rooms": { name: "Hall" },
  "PUT /api/v1/rooms/:uid": { name: "pwned" },
  "POST /api/v1/tokens": { name: "pwn", scope: "write" },
  "POST /api/v1/enrollment-tokens": { ttl_minutes: 60 },
  "PUT /api/v1/settings": { public_read: true },
  "POST /rooms": { name: "Hall" },
  "POST /rooms/:uid": { name: "pwned" },
  "POST /rooms/:uid/delete": { confirm: "yes" },
  "POST /devices/:uid/place": { room: "attic", new_room: "", moved_at: "" },
  "POST /devices/:uid/settings": { label: "pwned", interval_s: "", temperature_offset: "0", humidity_offset: "0" },
  "POST /users": { name: "mallory", password: "mallory's password" },
  "POST /users/:id/password": { password: "a new password!" },
  "POST /users/:id/delete": { confirm: "yes" },
  "POST /tokens": { name: "pwn", scope: "write" },
  "POST /security/switch": { switch: "public_read", value: "on" },
  "POST /security/enrollment": { ttl_minutes: "60", max_uses: "1" },
  "POST /account/password": { current: OWNER.password, password: "a new password!", password2: "a new password!" },
  "POST /login": { name: OWNER.name, password: OWNER.password, next: "/" },
  "POST /setup": { token: "x", name: "mallory", password: "mallory's password", password2: "mallory's password" },
  "POST /reset": { token: "x", password: "mallory's password", password2: "mallory's password" },
};

/** Routes anyone may call (their own credential is in the body): tested in auth-tokens.test.ts. */
const PUBLIC_WRITES = new Set(["POST /api/v1/enroll"]);
/** The sign-in forms: no session yet, so only their origin can be checked. */
const SIGN_IN = new Set(["POST /login", "POST /setup", "POST /reset"]);
/** What a viewer may do to their own session and account. */
const SELF = new Set(["POST /logout", "POST /account/password", "POST /account/sign-out-everywhere"]);

/** How a request is sent. */
interface Way {
  name: string;
  headers: Record<string, string>;
  /** The form's _csrf field (pages). */
  csrf?: string;
}

/** A session's request; `csrf` null sends no CSRF token at all. */
const session = (s: TestSession, extra: Record<string, string> = {}, csrf: string | null = s.csrf): Way => ({
  name: "",
  headers: { cookie: s.cookie, ...(csrf === null ? {} : { "x-csrf-token": csrf }), ...extra },
  csrf: csrf ?? undefined,
});

/** Sends a write route's request the way `way` says; JSON to the API, a form to a page. */
async function send(route: string, way: Way): Promise<Response> {
  const [method, pattern] = route.split(" ") as [string, string];
  const body = BODIES[route] ?? {};
  const api = pattern.startsWith("/api/");
  const form = new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)]));
  if (!api && way.csrf !== undefined) form.set("_csrf", way.csrf);
  return fetch(server.url + pathOf(pattern), {
    method,
    headers: { ...(api ? { "content-type": "application/json" } : {}), ...way.headers },
    body: method === "DELETE" ? undefined : api ? JSON.stringify(body) : form,
    redirect: "manual",
    signal: AbortSignal.timeout(10_000),
  });
}

/** The server's write routes, as `METHOD /pattern` without a final slash (Elysia writes `/api/v1/devices/`). */
const writeRoutes = () =>
  server.routes.map((r) => r.replace(/(.)\/$/, "$1")).filter((r) => !r.startsWith("GET ") && !PUBLIC_WRITES.has(r));

describe("every write route refuses every way in but the owner's", () => {
  test("the routes come from the server itself, and include the API's and the pages' writes", () => {
    const routes = writeRoutes();
    for (const known of ["DELETE /api/v1/devices/:uid", "POST /rooms/:uid/delete", "POST /tokens", "PUT /api/v1/settings"]) {
      expect(routes).toContain(known);
    }
    expect(routes.length).toBeGreaterThan(30);
  });

  test("each is refused with 401 or 403 and the database is unchanged", async () => {
    const before = dumpDb(server.db);
    const owner = { cookie: server.cookie, csrf: server.csrf };
    const foreign = "http://evil.example";
    const ways = (route: string): [Way, number][] => {
      if (SIGN_IN.has(route)) {
        return [
          [{ name: "a foreign Origin", headers: { origin: foreign } }, 403],
          [{ name: "a foreign Referer", headers: { referer: `${foreign}/page` } }, 403],
          [{ name: 'Origin "null" (a sandboxed frame)', headers: { origin: "null" } }, 403],
        ];
      }
      const list: [Way, number][] = [
        [{ name: "no session", headers: {} }, 401],
        [{ name: "a revoked write token", headers: { authorization: `Bearer ${revokedToken}` } }, 401],
        [{ name: "a made-up token", headers: { authorization: "Bearer tt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } }, 401],
        [{ ...session(kiosk), name: "the kiosk link's session" }, 403],
        [{ ...session(owner, { origin: server.url }, null), name: "the owner without a CSRF token" }, 403],
        [{ ...session(owner, { origin: server.url }, "x".repeat(43)), name: "the owner with a wrong CSRF token" }, 403],
        [{ ...session(owner, {}, viewer.csrf), name: "the owner with another session's CSRF token" }, 403],
        [{ ...session(owner, { origin: foreign }), name: "the owner's session from a foreign Origin" }, 403],
        [{ ...session(owner, { referer: `${foreign}/x` }), name: "the owner's session from a foreign Referer" }, 403],
      ];
      if (!SELF.has(route)) {
        list.push([{ ...session(viewer, { origin: server.url }), name: "a viewer with its CSRF token" }, 403]);
        list.push([{ name: "a read-only token", headers: { authorization: `Bearer ${readToken}` } }, 403]);
      }
      return list;
    };
    const wrong: string[] = [];
    let requests = 0;
    for (const route of writeRoutes()) {
      for (const [way, status] of ways(route)) {
        const res = await send(route, way);
        requests++;
        const text = await res.text();
        if (res.status !== status)
          wrong.push(`${route} with ${way.name}: ${res.status} (wanted ${status}) ${text.slice(0, 120)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(requests).toBeGreaterThan(300);
    expect(dumpDb(server.db)).toBe(before);
  });

  test("a refusal says why, in JSON on the API", async () => {
    const res = await send("PUT /api/v1/devices/:uid", { name: "", headers: {} });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="techtemp"');
    expect(await res.json()).toEqual({ error: "sign in, or send an API token (Authorization: Bearer tt_…)" });
    const viewerPut = await send("PUT /api/v1/devices/:uid", session(viewer, { origin: server.url }));
    expect(await viewerPut.json()).toEqual({ error: "viewers can only read" });
    const csrf = await send("PUT /api/v1/devices/:uid", session({ cookie: server.cookie, csrf: server.csrf }, {}, null));
    expect(await csrf.json()).toEqual({ error: "CSRF token missing or wrong: reload the page and try again" });
    const read = await send("PUT /api/v1/devices/:uid", { name: "", headers: { authorization: `Bearer ${readToken}` } });
    expect(await read.json()).toEqual({ error: "this API token is read-only (scope read)" });
    expect(server.logs.some((l) => l.includes("cross-origin write refused") && l.includes("origin=http://evil.example"))).toBe(
      true,
    );
  });

  test("the owner's own calls pass the guard on every one of them (none is 401 or 403)", async () => {
    const refused: string[] = [];
    for (const route of writeRoutes()) {
      // Each with a session of its own: signing out or changing the password ends one.
      const owner = await server.signIn(OWNER.name, "owner");
      const way = SIGN_IN.has(route) ? { name: "", headers: { origin: server.url } } : session(owner, { origin: server.url });
      const res = await send(route, way);
      await res.text();
      if (res.status === 401 || res.status === 403) refused.push(`${route}: ${res.status}`);
    }
    expect(refused).toEqual([]);
  });
});

describe("reads", () => {
  let other: TestServer;
  beforeAll(async () => {
    other = await startServer();
    await other.api("/api/v1/devices", { body: { device_uid: UID, room_name: "Attic" } });
    // An alert rule, a channel, and an incident of the rule (any temperature below 80 °C), for their pages.
    const rule = await other.api("/api/v1/alerts/rules", {
      body: { kind: "threshold", metric: "temperature", min: 80, duration_s: 0, room_uid: "attic" },
    });
    const channel = await other.api("/api/v1/alerts/channels", {
      body: { name: "phone", kind: "ntfy", url: "http://127.0.0.1:9", topic: "t", enabled: false },
    });
    const client = await connectMqtt(other.mqttPort);
    try {
      await publishAcked(client, readingTopic(UID), legacyPayload(20, 50, Date.now() + 1000));
    } finally {
      await endMqtt(client);
    }
    await other.alerts.idle();
    const [incident] = (await other.api("/api/v1/alerts/incidents")).body.data;
    Object.assign(alertIds, { rules: rule.body.data.id, channels: channel.body.data.id, incidents: incident.id });
  });
  afterAll(() => other?.stop());

  const readPaths = () =>
    other.routes
      .filter((r) => r.startsWith("GET "))
      .map((r) => r.slice(4))
      .filter((p) => !/^\/(static|health|manifest|favicon|login|setup|reset|k\/|api\/v1\/me|mqtt$)/.test(p))
      .map(pathOf);

  test("every page and API read wants a session or a token once an owner exists: pages send to the sign-in page and back, the API answers 401", async () => {
    const wrong: string[] = [];
    for (const path of readPaths()) {
      const res = await fetch(other.url + path, { redirect: "manual", signal: AbortSignal.timeout(10_000) });
      await res.body?.cancel();
      // An event stream cannot follow a redirect to a form: 401 like the API.
      const api = isApiPath(path) || path === "/events";
      const ok = api
        ? res.status === 401
        : res.status === 303 && res.headers.get("location") === `/login?next=${encodeURIComponent(path)}`;
      if (!ok) wrong.push(`${path}: ${res.status} ${res.headers.get("location") ?? ""}`);
    }
    expect(wrong).toEqual([]);
  });

  test("the owner's pages are the owner's: a viewer gets 403, a read token too", async () => {
    const vic = await other.signIn("vic");
    const owners = ["/users", "/tokens", "/security", "/api/v1/tokens", "/api/v1/enrollment-tokens"];
    // A backup is the whole database: its page, its files and its API are the owner's (issue 13).
    owners.push("/backups", "/backups/files/techtemp-20260101T000000Z.db", "/api/v1/backups");
    // Where alerts go (ntfy topics, webhook and mail addresses) is the owner's to see too.
    for (const path of [
      ...owners,
      "/alerts/channels",
      "/api/v1/alerts/channels",
      `/api/v1/alerts/channels/${alertIds.channels}`,
    ]) {
      const res = await fetch(other.url + path, { headers: { cookie: vic.cookie }, redirect: "manual" });
      expect(`${path} ${res.status}`).toBe(`${path} 403`);
    }
    const read = other.auth.tokens.create("reader", "read").token;
    const res = await fetch(`${other.url}/api/v1/tokens`, { headers: { authorization: `Bearer ${read}` } });
    expect(res.status).toBe(403);
  });

  test("with public_read on (an upgraded install), every read is open to anyone; writes are not", async () => {
    other.auth.switches.set("public_read", true);
    try {
      for (const path of readPaths().filter((p) => p !== "/events")) {
        const res = await fetch(other.url + path, { redirect: "manual" });
        await res.body?.cancel();
        // An account's own pages still want the account: public_read opens what a viewer reads, nothing more.
        const want = /^\/api\/v1\/(tokens|enrollment-tokens|backups|alerts\/channels(\/\d+)?)$/.test(path)
          ? 401
          : /^\/(users|tokens|security|account|alerts\/channels|backups)(\/|$)/.test(path)
            ? 303
            : 200;
        expect(`${path} ${res.status}`).toBe(`${path} ${want}`);
      }
      const res = await fetch(`${other.url}/api/v1/rooms`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"name":"Hall"}',
      });
      expect(res.status).toBe(401);
    } finally {
      other.auth.switches.set("public_read", false);
    }
  });

  test("the kiosk link's session reads the dashboard and its live updates, and nothing else", async () => {
    const entered = other.auth.kiosk.enter(other.auth.kiosk.create())!;
    const cookie = `techtemp_session=${entered.id}`;
    const get = (path: string) =>
      fetch(other.url + path, { headers: { cookie }, redirect: "manual", signal: AbortSignal.timeout(5000) });
    expect((await get("/")).status).toBe(200);
    // A page rendered at the newest version: the stream sends nothing until a change.
    const events = await fetch(`${other.url}/events?since=1000000000`, {
      headers: { cookie },
      signal: AbortSignal.timeout(10_000),
    });
    expect(events.status).toBe(200);
    for (const path of ["/devices", "/rooms", `/devices/${UID}`, "/api/v1/devices", "/account", "/users"]) {
      const res = await get(path);
      await res.text();
      expect(`${path} ${res.status}`).toBe(`${path} 403`);
    }
    // Revoked, the link's open event stream ends at the next change (or heartbeat): it pushes nothing more.
    const reader = events.body!.getReader();
    await reader.read();
    other.auth.kiosk.revoke();
    await other.api(`/api/v1/devices/${UID}`, { method: "PUT", body: { label: "after the revoke" } });
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    // The loop ended: the server closed the stream instead of pushing the changed card.
    expect(text).not.toContain("event:");
    expect((await get("/")).status).toBe(303);
  });
});
