// No default password: a fresh install has no account, every write is
// refused until the owner exists, and the owner is made from a one-time link
// (printed in the log at each start, or by `techtemp-server setup-link`)
// through the setup page, in a real browser. A forgotten password comes back
// through `reset-password NAME`. The operator commands run as the operator
// would run them (`bun server.ts …`), beside the running server.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { startServer, waitFor, type TestServer } from "./helpers.ts";
import { launchBrowser, openPage } from "./web-helpers.ts";
import { command, fieldErrors, postLogin, setCookie } from "./auth-helpers.ts";

const NO_OWNER =
  "no owner account yet: open the setup link printed in the server log (journalctl -u techtemp-server | grep setup)";

/** Posts the setup form as a browser on the server's origin. */
function postSetup(server: TestServer, fields: Record<string, string>) {
  return fetch(`${server.url}/setup`, {
    method: "POST",
    body: new URLSearchParams(fields),
    headers: { origin: server.url },
    redirect: "manual",
  });
}

const linkToken = (line: string) => /\/setup#([A-Za-z0-9_-]{43})$/.exec(line.trim())?.[1] ?? null;
const PASSWORD = "a long enough password";

describe("a fresh install", () => {
  let server: TestServer;
  // The commands run with the real clock: the server's starts there too.
  let clock = Date.now();
  beforeAll(async () => {
    server = await startServer({}, { owner: false, now: () => clock });
  });
  afterAll(() => server?.stop());

  test("has no account: the log has a one-time setup link, every write is refused with what to do, reads are open", async () => {
    const line = server.logs.find((l) => l.includes("first start: create the owner account at"))!;
    expect(line).toMatch(new RegExp(`at http://127\\.0\\.0\\.1:${server.httpPort}/setup#[A-Za-z0-9_-]{43}$`));
    expect(server.store.auth.users.count()).toBe(0);
    for (const [method, path, body] of [
      ["POST", "/api/v1/rooms", { name: "Hall" }],
      ["PUT", "/api/v1/settings", { public_read: true }],
      ["POST", "/api/v1/tokens", { name: "x", scope: "write" }],
    ] as const) {
      expect(await server.api(path, { method, body, as: "none" })).toEqual({ status: 403, body: { error: NO_OWNER } });
    }
    const form = await fetch(`${server.url}/rooms`, { method: "POST", body: new URLSearchParams({ name: "Hall" }) });
    expect(form.status).toBe(403);
    expect(await form.text()).toContain("no owner account yet");
    expect((await server.api("/api/v1/rooms", { as: "none" })).status).toBe(200);
    const page = await (await fetch(server.url + "/")).text();
    expect(page).toContain('id="banner-setup"');
    expect(page).toContain("No owner account yet");
    // The link itself is only in the log: never on a page.
    expect(page).not.toContain(linkToken(line)!);
  });

  test("`setup-link` prints a fresh link (the older one stops working), and refuses once an owner exists", async () => {
    const logged = linkToken(server.logs.find((l) => l.includes("first start:"))!)!;
    const r = await command(server, ["setup-link"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    const fresh = linkToken(r.stdout)!;
    expect(fresh).not.toBeNull();
    expect(r.stdout.trim()).toBe(`http://127.0.0.1:${server.httpPort}/setup#${fresh}`);

    const old = await postSetup(server, { token: logged, name: "owner", password: PASSWORD, password2: PASSWORD });
    expect(old.status).toBe(422);
    expect(fieldErrors(await old.text()).token).toContain("this link is not valid or has expired");
    expect(server.store.auth.users.count()).toBe(0);

    // Past its 24 hours the fresh one has expired too.
    clock += 24 * 3_600_000 + 60_000;
    const late = await postSetup(server, { token: fresh, name: "owner", password: PASSWORD, password2: PASSWORD });
    expect(late.status).toBe(422);
    expect(fieldErrors(await late.text()).token).toContain("run `techtemp-server setup-link` on the server for a new one");

    clock = Date.now();
    const again = linkToken((await command(server, ["setup-link"])).stdout)!;
    const ok = await postSetup(server, { token: again, name: "owner", password: PASSWORD, password2: PASSWORD });
    expect(ok.status).toBe(303);
    expect(server.store.auth.users.list().map((u) => [u.name, u.role])).toEqual([["owner", "owner"]]);
    // The link is used up: the same token cannot make a second owner.
    const twice = await postSetup(server, { token: again, name: "other", password: PASSWORD, password2: PASSWORD });
    expect(twice.status).toBe(422);
    expect(server.store.auth.users.count()).toBe(1);

    const refused = await command(server, ["setup-link"]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain(
      "an owner account exists already; to set a new password run `techtemp-server reset-password NAME`",
    );
  }, 60_000);
});

describe("the setup form", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startServer({}, { owner: false });
    token = server.auth.accounts.newSetupToken();
  });
  afterAll(() => server?.stop());

  const bad: [string, Record<string, string>, string, string][] = [
    ["no token", { token: "", name: "owner", password: PASSWORD, password2: PASSWORD }, "token", "paste the token"],
    ["a made-up token", { token: "x".repeat(43), name: "owner", password: PASSWORD, password2: PASSWORD }, "token", "not valid"],
    ["no name", { name: "", password: PASSWORD, password2: PASSWORD }, "name", "enter a name"],
    ["a name with a space", { name: "the owner", password: PASSWORD, password2: PASSWORD }, "name", "1-50 characters"],
    ["a short password", { name: "owner", password: "short", password2: "short" }, "password", "at least 10 characters"],
    [
      "a password of 129 characters",
      { name: "owner", password: "x".repeat(129), password2: "x".repeat(129) },
      "password",
      "at most 128",
    ],
    ["passwords that differ", { name: "owner", password: PASSWORD, password2: `${PASSWORD}!` }, "password2", "does not match"],
  ];
  for (const [what, fields, field, message] of bad) {
    test(`${what} is refused next to ${field}, and no account is made`, async () => {
      const res = await postSetup(server, { token, ...fields });
      expect(res.status).toBe(422);
      const html = await res.text();
      expect(fieldErrors(html)[field]).toContain(message);
      // What was typed stays, but never a password.
      if (fields.password) expect(html).not.toContain(fields.password);
      expect(server.store.auth.users.count()).toBe(0);
    });
  }
});

describe("in a browser", () => {
  let browser: Browser;
  let server: TestServer;
  beforeAll(async () => {
    [browser, server] = await Promise.all([launchBrowser(), startServer({}, { owner: false })]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("the setup link fills the form, the owner is created with an argon2id hash and signed in with a HttpOnly, SameSite=Lax cookie", async () => {
    const link = (await command(server, ["setup-link"])).stdout.trim();
    const tab = await openPage(browser);
    try {
      const { page } = tab;
      await page.goto(link);
      // static/auth.js moved the token from the fragment into the form and off the address bar.
      expect(await page.inputValue("input[name=token]")).toBe(linkToken(link)!);
      expect(new URL(page.url()).hash).toBe("");
      await page.fill("input[name=name]", "ada");
      await page.fill("input[name=password]", PASSWORD);
      await page.fill("input[name=password2]", PASSWORD);
      await page.click("#setup button[type=submit]");
      await page.waitForURL(`${server.url}/`);
      expect(await page.textContent(".who .account")).toBe("ada");
      expect(await page.$("#banner-setup")).toBeNull();
      const [cookie] = await page.context().cookies();
      expect(cookie).toMatchObject({ name: "techtemp_session", httpOnly: true, sameSite: "Lax", secure: false, path: "/" });
      expect(tab.errors).toEqual([]);
    } finally {
      await tab.close();
    }
    const owner = server.store.auth.users.byName("ada")!;
    expect(owner.role).toBe("owner");
    expect(owner.password_hash).toStartWith("$argon2id$v=19$m=19456,t=2,p=1$");
    expect(server.logs.some((l) => l.includes("owner account created") && l.includes("name=ada"))).toBe(true);
    // Now the owner's password signs in, and the pages want it.
    expect((await postLogin(server, "ada", PASSWORD)).status).toBe(303);
    expect((await fetch(server.url + "/", { redirect: "manual" })).status).toBe(303);
  }, 60_000);
});

describe("a forgotten password", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server?.stop());

  test("`reset-password NAME` prints a link that sets a new one, signs every session out and lets the owner in despite the throttle", async () => {
    // Someone has used up the owner's failed sign-ins for this hour.
    for (let i = 0; i < 100; i++) server.auth.throttle.fail({ name: "owner", address: `10.0.0.${i}` });
    const throttled = await postLogin(server, "owner", "owner password for tests");
    expect(throttled.status).toBe(429);

    const r = await command(server, ["reset-password", "owner"]);
    expect(r.code).toBe(0);
    const link = r.stdout.trim();
    expect(link).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.httpPort}/reset#[A-Za-z0-9_-]{43}$`));
    expect(r.stderr).toContain("set a new password for owner");
    const token = link.split("#")[1]!;
    const reset = await fetch(`${server.url}/reset`, {
      method: "POST",
      body: new URLSearchParams({ token, password: "a brand new password", password2: "a brand new password" }),
      headers: { origin: server.url },
      redirect: "manual",
    });
    expect(reset.status).toBe(303);
    expect(reset.headers.get("location")).toBe("/account");
    expect(setCookie(reset, "techtemp_session")).not.toBeNull();
    // The session the test started with is gone; the new password signs in, the old one not.
    expect((await fetch(server.url + "/", { headers: { cookie: server.cookie }, redirect: "manual" })).status).toBe(303);
    expect((await postLogin(server, "owner", "a brand new password")).status).toBe(303);
    expect((await postLogin(server, "owner", "owner password for tests")).status).toBe(401);
    // One use only.
    const again = await fetch(`${server.url}/reset`, {
      method: "POST",
      body: new URLSearchParams({ token, password: "yet another password", password2: "yet another password" }),
      headers: { origin: server.url },
    });
    expect(again.status).toBe(422);
    expect(fieldErrors(await again.text()).token).toContain("techtemp-server reset-password NAME");
  }, 60_000);
});

describe("the operator commands", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
    await server.api("/api/v1/devices", { body: { device_uid: "aht20-c1c1c1", room_name: "Hall" } });
  });
  afterAll(() => server?.stop());

  test("each prints one thing on stdout that works at once, beside the running server", async () => {
    const token = await command(server, ["token", "create", "grafana", "--scope", "read"]);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^tt_[A-Za-z0-9_-]{43}\n$/);
    const read = await server.api("/api/v1/rooms", { as: { token: token.stdout.trim() } });
    expect(read.status).toBe(200);
    expect((await server.api("/api/v1/rooms", { as: { token: token.stdout.trim() }, body: { name: "x" } })).status).toBe(403);

    const enroll = await command(server, ["enroll-token", "--ttl", "30", "--uses", "2"]);
    expect(enroll.code).toBe(0);
    const enrolled = await server.api("/api/v1/enroll", {
      as: "none",
      body: { token: enroll.stdout.trim(), device_uid: "aht20-e1e1e1", room_name: "Hall" },
    });
    expect(enrolled.status).toBe(201);
    expect(server.store.auth.enrollment.live()[0]).toMatchObject({ uses: 1, max_uses: 2 });

    const secret = await command(server, ["device-password", "aht20-c1c1c1"]);
    expect(secret.code).toBe(0);
    expect(secret.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(secret.stderr).toContain("username = aht20-c1c1c1");
    const { secretMatches } = await import("../lib/server/auth/secrets.ts");
    await waitFor(() => server.store.auth.credentials.forDevice("aht20-c1c1c1"), 2000, "the credential");
    expect(secretMatches(secret.stdout.trim(), server.store.auth.credentials.forDevice("aht20-c1c1c1")!.secret_hash)).toBe(true);
  }, 60_000);

  const refusals: [string[], number, string][] = [
    [["token", "create", "x"], 2, "--scope read|write is required"],
    [["token", "create", "x", "--scope", "admin"], 2, "--scope must be read or write"],
    [["token", "make", "x", "--scope", "read"], 2, 'unknown token command "make"'],
    [["token", "create", "bad name", "--scope", "read"], 2, "name: must be 1-50 characters"],
    [["token", "create", "test", "--scope", "read"], 1, 'a token named "test" exists already'],
    [["reset-password"], 2, "missing argument"],
    [["reset-password", "nobody"], 1, 'account "nobody" not found'],
    [["enroll-token", "--ttl", "0"], 2, "ttl_minutes: must be a whole number of minutes from 1 to 10080"],
    [["enroll-token", "--uses", "many"], 2, "--uses must be a whole number"],
    [["enroll-token", "--colour", "red"], 2, 'unexpected argument "--colour"'],
    [["device-password", "aht20-nope00"], 1, 'device "aht20-nope00" not found'],
    [["setup-link", "extra"], 2, 'unexpected argument "extra"'],
  ];
  for (const [args, code, message] of refusals) {
    test(`\`${args.join(" ")}\` exits ${code}: ${message}`, async () => {
      const r = await command(server, args);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(message);
      expect(r.code).toBe(code);
    }, 30_000);
  }
});
