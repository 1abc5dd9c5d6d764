// Signing in, over real HTTP (and HTTPS with curl): the session cookie and
// its attributes, where the person lands, a wrong password's answer, idle and
// absolute expiry and signing out (one session, or everywhere) on an
// injected clock, the account forms. Throttling and the hashing bound are
// test/auth-throttle.test.ts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createExport } from "../lib/server/history/export.ts";
import { createHistory } from "../lib/server/history/history.ts";
import { createStats } from "../lib/server/history/stats.ts";
import { createHttp } from "../lib/server/http/app.ts";
import { createLive } from "../lib/server/live/live.ts";
import { createIngest } from "../lib/server/mqtt/ingest.ts";
import { createLog } from "../lib/shared/log.ts";
import { OWNER, run, startServer, tempDir, type TestServer } from "./helpers.ts";
import { CHEAP_HASH, fieldErrors, login, postLogin, setCookie } from "./auth-helpers.ts";
import { postForm } from "./web-helpers.ts";

const DAY = 86_400_000;
const MIN = 60_000;

describe("the sign-in form", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server?.stop());

  test("the right password signs in with a HttpOnly, SameSite=Lax cookie and goes on where the person was going", async () => {
    const res = await postLogin(server, OWNER.name, OWNER.password, "/devices?x=1");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/devices?x=1");
    const cookie = setCookie(res, "techtemp_session")!;
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cookie.attributes).toBe("Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000");
    const page = await fetch(`${server.url}/devices`, { headers: { cookie: `techtemp_session=${cookie.value}` } });
    expect(page.status).toBe(200);
    // The session's id is stored only as its SHA-256.
    expect(JSON.stringify(server.db.query("SELECT * FROM sessions").all())).not.toContain(cookie.value);
    // A page asked for before signing in is where the sign-in page sends back to.
    const redirected = await fetch(`${server.url}/rooms?done=x`, { redirect: "manual" });
    expect(redirected.headers.get("location")).toBe("/login?next=%2Frooms%3Fdone%3Dx");
    const form = await (await fetch(server.url + redirected.headers.get("location"))).text();
    expect(form).toContain('name="next" value="/rooms?done=x"');
  });

  test("it never sends anyone to another site", async () => {
    for (const next of [
      "//evil.example/",
      "https://evil.example/",
      "/\\evil.example",
      "javascript:alert(1)",
      "http:/evil.example",
    ]) {
      const res = await postLogin(server, OWNER.name, OWNER.password, next);
      expect(`${next} → ${res.headers.get("location")}`).toBe(`${next} → /`);
    }
  });

  test("a wrong password and an unknown name get the same answer (401, next to the password), and the name is kept", async () => {
    for (const name of [OWNER.name, "nobody"]) {
      const res = await postLogin(server, name, "not the password");
      expect(res.status).toBe(401);
      expect(setCookie(res, "techtemp_session")).toBeNull();
      const html = await res.text();
      expect(fieldErrors(html)).toEqual({ password: "the name or the password is wrong" });
      expect(html).toContain(`value="${name}"`);
      expect(html).not.toContain("not the password");
    }
  });

  const bad: [string, string, string, string][] = [
    ["an empty name", "", "x", "name: enter your account name"],
    ["a name with a space", "the owner", "x", "name: 1-50 characters of A-Z a-z 0-9 . _ -"],
    ["an empty password", OWNER.name, "", "password: enter the password"],
    ["a password of 129 characters", OWNER.name, "x".repeat(129), "password: at most 128 characters"],
  ];
  for (const [what, name, password, message] of bad) {
    test(`${what} is refused with 422 next to the field`, async () => {
      const res = await postLogin(server, name, password);
      expect(res.status).toBe(422);
      const [field, text] = message.split(": ") as [string, string];
      expect(fieldErrors(await res.text())[field]).toBe(text);
    });
  }
});

describe("sessions", () => {
  let clock = Date.parse("2026-03-01T08:00:00Z");
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ session_idle_days: 2, session_max_days: 5 }, { now: () => clock });
  });
  afterAll(() => server?.stop());

  const opens = async (cookie: string) => {
    const res = await fetch(`${server.url}/devices`, { headers: { cookie }, redirect: "manual" });
    await res.text();
    if (res.status === 303) expect(setCookie(res, "techtemp_session")?.attributes).toContain("Max-Age=0");
    return res.status === 200;
  };

  test("a session ends once idle for session_idle_days", async () => {
    const { cookie } = await login(server, OWNER.name, OWNER.password);
    clock += 2 * DAY - MIN;
    expect(await opens(cookie)).toBe(true);
    clock += 2 * DAY - MIN; // used a minute short of the limit: still on
    expect(await opens(cookie)).toBe(true);
    clock += 2 * DAY;
    expect(await opens(cookie)).toBe(false);
    expect(await opens(cookie)).toBe(false);
  });

  test("signing in again with the dead session's cookie still in the browser sets one cookie, the new one", async () => {
    const { cookie } = await login(server, OWNER.name, OWNER.password);
    clock += 3 * DAY;
    const res = await fetch(`${server.url}/login`, {
      method: "POST",
      body: new URLSearchParams({ name: OWNER.name, password: OWNER.password, next: "/" }),
      headers: { origin: server.url, cookie },
      redirect: "manual",
    });
    expect(res.status).toBe(303);
    const set = res.headers.getSetCookie();
    expect(set).toHaveLength(1);
    expect(set[0]).not.toContain("Max-Age=0");
    expect(await opens(`techtemp_session=${setCookie(res, "techtemp_session")!.value}`)).toBe(true);
  });

  test("a session ends session_max_days after sign-in, however much it is used", async () => {
    const start = clock;
    const { cookie } = await login(server, OWNER.name, OWNER.password);
    while (clock < start + 5 * DAY - DAY) {
      clock += DAY;
      expect(await opens(cookie)).toBe(true);
    }
    clock = start + 5 * DAY;
    expect(await opens(cookie)).toBe(false);
  });

  test("signing out ends that session; signing out everywhere ends every session of the account and no other", async () => {
    const phone = await login(server, OWNER.name, OWNER.password);
    const laptop = await login(server, OWNER.name, OWNER.password);
    const viewer = await server.signIn("vic");
    const out = await fetch(`${server.url}/logout`, {
      method: "POST",
      headers: { cookie: phone.cookie, origin: server.url },
      body: new URLSearchParams({ _csrf: phone.csrf }),
      redirect: "manual",
    });
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/login?done=out");
    expect(setCookie(out, "techtemp_session")!.attributes).toContain("Max-Age=0");
    expect(await opens(phone.cookie)).toBe(false);
    expect(await opens(laptop.cookie)).toBe(true);

    const tablet = await login(server, OWNER.name, OWNER.password);
    const everywhere = await fetch(`${server.url}/account/sign-out-everywhere`, {
      method: "POST",
      headers: { cookie: laptop.cookie, "x-csrf-token": laptop.csrf, origin: server.url },
      redirect: "manual",
    });
    expect(everywhere.headers.get("location")).toBe("/login?done=everywhere");
    expect(await opens(laptop.cookie)).toBe(false);
    expect(await opens(tablet.cookie)).toBe(false);
    expect(await opens(server.cookie)).toBe(false);
    expect(await opens(viewer.cookie)).toBe(true);
    expect(await (await fetch(`${server.url}/login?done=everywhere`)).text()).toContain("You are signed out everywhere.");
  });

  test("changing one's password checks the current one and ends the other sessions", async () => {
    const here = await server.signIn("ann", "owner");
    const elsewhere = await server.signIn("ann", "owner");
    const change = (fields: Record<string, string>) =>
      fetch(`${server.url}/account/password`, {
        method: "POST",
        headers: { cookie: here.cookie, origin: server.url },
        body: new URLSearchParams({ _csrf: here.csrf, ...fields }),
        redirect: "manual",
      });
    const wrong = await change({ current: "not it at all", password: "a new password!", password2: "a new password!" });
    expect(wrong.status).toBe(422);
    expect(fieldErrors(await wrong.text())).toEqual({ current: "is not the current password" });
    const differ = await change({ current: OWNER.password, password: "a new password!", password2: "another one!!" });
    expect(fieldErrors(await differ.text())).toEqual({ password2: "does not match" });
    const short = await change({ current: OWNER.password, password: "short", password2: "short" });
    expect(fieldErrors(await short.text())).toEqual({ password: "at least 10 characters" });
    const ok = await change({ current: OWNER.password, password: "a new password!", password2: "a new password!" });
    expect(ok.status).toBe(303);
    const fresh = `techtemp_session=${setCookie(ok, "techtemp_session")!.value}`;
    expect(await opens(fresh)).toBe(true);
    expect(await opens(elsewhere.cookie)).toBe(false);
    expect(await opens(here.cookie)).toBe(false);
    expect((await postLogin(server, "ann", "a new password!")).status).toBe(303);
  });
});

describe("the owner's account forms", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, { hashParams: CHEAP_HASH });
  });
  afterAll(() => server?.stop());

  test("each bad value is refused next to its field (422), and nothing changes", async () => {
    const cases: [string, Record<string, string>, Record<string, string>][] = [
      ["/users", { name: "", password: "long enough password" }, { name: "enter a name for the account" }],
      [
        "/users",
        { name: "a b", password: "short" },
        { name: "1-50 characters of A-Z a-z 0-9 . _ -", password: "at least 10 characters" },
      ],
      [
        "/users",
        { name: "owner", password: "long enough password" },
        { name: "an account named &quot;owner&quot; exists already" },
      ],
    ];
    for (const [path, fields, errors] of cases) {
      const res = await postForm(server, path, fields);
      expect(`${path} ${res.status}`).toBe(`${path} 422`);
      expect(fieldErrors(res.html)).toEqual(errors);
    }
    expect(server.auth.users.list().map((u) => u.name)).toEqual(["owner"]);
    await server.auth.accounts.addViewer("vic", "vic's password!");
    const id = server.auth.users.byName("vic")!.id;
    const short = await postForm(server, `/users/${id}/password`, { password: "short" });
    expect(short.status).toBe(422);
    expect(short.html).toContain(`id="password-${id}-error" role="alert">at least 10 characters<`);
    const unconfirmed = await postForm(server, `/users/${id}/delete`, {});
    expect(unconfirmed.status).toBe(422);
    expect(unconfirmed.html).toContain("tick the box to confirm");
    expect(server.auth.users.byName("vic")).not.toBeNull();
    const notANumber = await postForm(server, "/users/abc/delete", { confirm: "yes" });
    expect(notANumber.status).toBe(400);
    expect(notANumber.html).toContain("id:");
    expect((await postForm(server, "/users/999/delete", { confirm: "yes" })).status).toBe(404);
  });
});

describe("over HTTPS", () => {
  let server: TestServer;
  let https: ReturnType<typeof Bun.serve>;
  let dir: { path: string; cleanup(): void };
  beforeAll(async () => {
    server = await startServer();
    dir = tempDir();
    const made = await run([
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir.path, "key.pem"),
      "-out",
      join(dir.path, "cert.pem"),
    ]);
    if (made.code !== 0) throw new Error(made.stderr);
    // The same HTTP app as the server's, behind a TLS listener (the server's own HTTPS listener is lib/server/tls's).
    const log = createLog({ level: "error" });
    const history = createHistory(server.store.history);
    const app = createHttp({
      store: server.store,
      history,
      stats: createStats(server.store.history, history),
      exporter: createExport(server.store.history, history),
      live: createLive({ store: server.store, log }),
      broker: server.broker,
      ingest: createIngest({ store: server.store, log }),
      auth: server.auth,
      settings: server.config,
      log,
    });
    https = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: Bun.file(join(dir.path, "cert.pem")), key: Bun.file(join(dir.path, "key.pem")) },
      fetch: (request) => app.handle(request),
    });
  });
  afterAll(async () => {
    https?.stop(true);
    await server?.stop();
    dir?.cleanup();
  });

  const curl = (path: string, args: string[] = []) =>
    run([
      "curl",
      "-sS",
      "-D",
      "-",
      "-o",
      "/dev/null",
      "--cacert",
      join(dir.path, "cert.pem"),
      ...args,
      `https://127.0.0.1:${https.port}${path}`,
    ]);

  test("the cookie is __Host-techtemp_session with Secure, and a plain-HTTP session cookie does not count there", async () => {
    const origin = `https://127.0.0.1:${https.port}`;
    const r = await curl("/login", [
      "-H",
      `origin: ${origin}`,
      "--data-urlencode",
      `name=${OWNER.name}`,
      "--data-urlencode",
      `password=${OWNER.password}`,
    ]);
    expect(r.stdout).toStartWith("HTTP/1.1 303");
    const line = r.stdout.split("\r\n").find((l) => l.toLowerCase().startsWith("set-cookie:"))!;
    expect(line).toMatch(
      /^set-cookie: __Host-techtemp_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=31536000; Secure$/i,
    );
    const id = /=([A-Za-z0-9_-]{43});/.exec(line)![1]!;
    expect((await curl("/devices", ["-H", `cookie: __Host-techtemp_session=${id}`])).stdout).toStartWith("HTTP/1.1 200");
    // The plain-HTTP cookie name is not read over HTTPS (a plain page on the LAN could have planted it).
    expect((await curl("/devices", ["-H", `cookie: techtemp_session=${id}`])).stdout).toStartWith("HTTP/1.1 303");
    expect((await curl("/devices", ["-H", server.cookie.replace(/^/, "cookie: ")])).stdout).toStartWith("HTTP/1.1 303");
  });
});
