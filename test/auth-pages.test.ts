// The pages with accounts, in Chromium: every page works for the signed-in
// owner (htmx sends the CSRF token) without one Content Security Policy
// violation, and is read-only for a viewer; the kiosk link; managing
// accounts; an upgraded install's warnings with their one-click "Turn off";
// the certificate warning. Over plain HTTP (fetch, curl): the security
// headers of every answer and the Host check against DNS rebinding.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { hostname } from "node:os";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import type { Browser, Page } from "playwright-core";
import { createExport } from "../lib/server/history/export.ts";
import { createHistory } from "../lib/server/history/history.ts";
import { createStats } from "../lib/server/history/stats.ts";
import { createHttp } from "../lib/server/http/app.ts";
import { CSP } from "../lib/server/http/auth/headers.ts";
import { createLive } from "../lib/server/live/live.ts";
import { createIngest } from "../lib/server/mqtt/ingest.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { migrations } from "../lib/server/store/migrations.ts";
import { createLog } from "../lib/shared/log.ts";
import { connectMqtt, endMqtt, run, startServer, tempDir, type TestServer } from "./helpers.ts";
import { dumpDb, login } from "./auth-helpers.ts";
import { launchBrowser, openPage, placeDevice, publishReadings, type WatchedPage } from "./web-helpers.ts";

const UID = "aht20-abcdef";
let browser: Browser;
let server: TestServer;
let client: MqttClient;

beforeAll(async () => {
  [browser, server] = await Promise.all([launchBrowser(), startServer({}, { logLevel: "warn" })]);
  client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, { uid: UID, room: "Kitchen", placedAt: Date.now() - 3_600_000, intervalS: 60 });
  await publishReadings(client, UID, [
    [Date.now() - 600_000, 21, 40],
    [Date.now() - 60_000, 21.5, 41],
  ]);
  await server.api("/api/v1/rooms", { body: { name: "Attic" } });
}, 60_000);
afterAll(async () => {
  await endMqtt(client);
  await browser?.close();
  await server?.stop();
});

/** Every page a person opens, with a thing in it that exists. */
const PAGES = [
  "/",
  "/rooms",
  "/rooms/kitchen",
  "/compare?rooms=kitchen,attic",
  "/devices",
  `/devices/${UID}`,
  "/account",
  "/docs",
];
const OWNER_PAGES = ["/users", "/tokens", "/security", "/backups"];

/** Records Content Security Policy violations (the event and the console's report) on a page. */
async function watchCsp(page: Page): Promise<() => Promise<string[]>> {
  const reported: string[] = [];
  page.on("console", (m) => {
    if (m.text().includes("Content Security Policy")) reported.push(m.text());
  });
  // Injected by the browser itself, so the policy does not apply to it.
  await page.addInitScript(() => {
    (window as unknown as { violations: string[] }).violations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      (window as unknown as { violations: string[] }).violations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  return async () => [...reported, ...(await page.evaluate(() => (window as unknown as { violations: string[] }).violations))];
}

/** The forms of a page that post somewhere, by action. */
const postingForms = (page: Page) =>
  page.$$eval("form[method=post]", (forms) => forms.map((f) => (f as HTMLFormElement).getAttribute("action")));

describe("the owner", () => {
  let tab: WatchedPage;
  beforeAll(async () => {
    tab = await openPage(browser, { server, width: 900 });
  });
  afterAll(() => tab?.close());

  test("every page opens, with no CSP violation and no script error, the forms carrying the CSRF token", async () => {
    const violations = await watchCsp(tab.page);
    for (const path of [...PAGES, ...OWNER_PAGES]) {
      const res = await tab.page.goto(server.url + path);
      expect(`${path} ${res!.status()}`).toBe(`${path} 200`);
      expect(await tab.page.textContent(".who .account")).toBe("owner");
      // Every posting form has the session's token.
      const tokens = await tab.page.$$eval("form[method=post]", (forms) =>
        forms.map((f) => (f.querySelector("input[name=_csrf]") as HTMLInputElement | null)?.value ?? null),
      );
      expect(tokens.every((t) => t === server.csrf)).toBe(true);
    }
    // The charts (uPlot) drew: styles set from scripts are not inline styles the policy forbids.
    await tab.page.goto(`${server.url}/rooms/kitchen`);
    await tab.page.waitForSelector(".chart canvas");
    expect(await violations()).toEqual([]);
    expect(tab.errors).toEqual([]);
    expect(tab.dialogs).toEqual([]);
  }, 60_000); // a dozen pages in Chromium: over 30 s on a loaded machine

  test("an htmx form sends the token as X-CSRF-Token and saves", async () => {
    await tab.page.goto(`${server.url}/rooms`);
    const sent = tab.page.waitForRequest((r) => r.method() === "POST" && r.url().endsWith("/rooms"));
    await tab.page.fill("#new-name", "Cellar");
    await tab.page.click("#create-room button[type=submit]");
    const request = await sent;
    expect(request.headers()["x-csrf-token"]).toBe(server.csrf);
    expect(request.headers()["hx-request"]).toBe("true");
    await tab.page.waitForSelector("text=Room created.");
    expect((await server.api("/api/v1/rooms/cellar")).status).toBe(200);
  });
});

describe("a viewer", () => {
  test("sees every page read-only, is refused the owner's pages, and a forged post from its own page changes nothing", async () => {
    const vic = await server.signIn("vic");
    const tab = await openPage(browser, { server, session: vic, width: 900 });
    try {
      const violations = await watchCsp(tab.page);
      for (const path of PAGES) {
        const res = await tab.page.goto(server.url + path);
        expect(`${path} ${res!.status()}`).toBe(`${path} 200`);
        expect(await tab.page.textContent(".who .account")).toBe("vic (viewer)");
        // Only signing out and the account's own forms post.
        const forms = (await postingForms(tab.page)).filter(
          (a) => !["/logout", "/account/password", "/account/sign-out-everywhere"].includes(a!),
        );
        expect(`${path}: ${forms.join(", ")}`).toBe(`${path}: `);
      }
      await tab.page.goto(`${server.url}/devices/${UID}`);
      expect(await tab.page.textContent("#read-only")).toContain("Only the owner can move this device");
      for (const path of OWNER_PAGES) {
        const res = await tab.page.goto(server.url + path);
        expect(`${path} ${res!.status()}`).toBe(`${path} 403`);
        expect(await tab.page.textContent("main")).toContain("only the owner may see this");
      }
      await tab.page.goto(`${server.url}/rooms`);
      const before = dumpDb(server.db);
      const status = await tab.page.evaluate(async (csrf) => {
        const res = await fetch("/rooms/kitchen/delete", {
          method: "POST",
          headers: { "X-CSRF-Token": csrf, "HX-Request": "true" },
          body: new URLSearchParams({ confirm: "yes" }),
        });
        return res.status;
      }, vic.csrf);
      expect(status).toBe(403);
      expect(dumpDb(server.db)).toBe(before);
      expect(await violations()).toEqual([]);
      expect(tab.errors).toEqual([]);
    } finally {
      await tab.close();
    }
  }, 60_000);
});

describe("the kiosk link", () => {
  test("made on the security page, it shows a wall tablet the live dashboard and nothing else, until it is revoked", async () => {
    const owner = await openPage(browser, { server });
    const tablet = await openPage(browser, { width: 1280, height: 800 });
    try {
      await owner.page.goto(`${server.url}/security`);
      await owner.page.click("#kiosk button[type=submit]");
      const link = (await owner.page.textContent("#kiosk-link"))!.trim();
      expect(link).toMatch(new RegExp(`^${server.url}/k/[A-Za-z0-9_-]{43}$`));
      await tablet.page.goto(link);
      expect(tablet.page.url()).toBe(`${server.url}/`);
      await tablet.page.waitForSelector('body[data-live="on"]');
      expect(await tablet.page.$("header nav")).toBeNull();
      expect(await tablet.page.$(".who")).toBeNull();
      expect(await tablet.page.textContent("#room-kitchen")).toContain("21.5");
      expect((await tablet.page.goto(`${server.url}/devices`))!.status()).toBe(403);
      // Revoked: the tablet's session ends at once.
      await owner.page.goto(`${server.url}/security`);
      await owner.page.click("#kiosk form[action='/security/kiosk/revoke'] button");
      await owner.page.waitForSelector("text=The kiosk link is revoked");
      await tablet.page.goto(`${server.url}/`);
      expect(new URL(tablet.page.url()).pathname).toBe("/login");
      expect((await tablet.page.goto(link))!.status()).toBe(404);
    } finally {
      await owner.close();
      await tablet.close();
    }
  }, 60_000);
});

describe("accounts", () => {
  test("the owner adds a viewer, who signs in through the form; a new password signs the viewer out; then the account is deleted", async () => {
    const owner = await openPage(browser, { server });
    const member = await openPage(browser);
    try {
      await owner.page.goto(`${server.url}/users`);
      await owner.page.fill("#add-viewer input[name=name]", "zoe");
      await owner.page.fill("#add-viewer input[name=password]", "zoe's own password");
      await owner.page.click("#add-viewer button[type=submit]");
      await owner.page.waitForSelector("text=Viewer added.");
      // The same name again is refused next to the field.
      await owner.page.fill("#add-viewer input[name=name]", "ZOE");
      await owner.page.fill("#add-viewer input[name=password]", "zoe's own password");
      await owner.page.click("#add-viewer button[type=submit]");
      expect(await owner.page.textContent("#name-error")).toBe('an account named "ZOE" exists already');

      await member.page.goto(`${server.url}/rooms`);
      expect(new URL(member.page.url()).pathname).toBe("/login");
      await member.page.fill("input[name=name]", "zoe");
      await member.page.fill("input[name=password]", "zoe's own password");
      await member.page.click("#login button[type=submit]");
      await member.page.waitForURL(`${server.url}/rooms`);
      expect(await member.page.textContent(".who .account")).toBe("zoe (viewer)");

      const id = server.auth.users.byName("zoe")!.id;
      await owner.page.goto(`${server.url}/users`);
      await owner.page.click(`#user-${id} summary`);
      await owner.page.fill(`#password-${id}`, "zoe's new password");
      await owner.page.click(`#user-${id} form[action='/users/${id}/password'] button`);
      await owner.page.waitForSelector("text=Password set");
      await member.page.reload();
      expect(new URL(member.page.url()).pathname).toBe("/login");

      await owner.page.click(`#user-${id} summary`);
      await owner.page.check(`#user-${id} input[name=confirm]`);
      await owner.page.click(`#user-${id} form[action='/users/${id}/delete'] button`);
      await owner.page.waitForSelector("text=Account deleted.");
      expect(server.auth.users.byName("zoe")).toBeNull();
      expect(owner.errors).toEqual([]);
    } finally {
      await owner.close();
      await member.close();
    }
    // The owner cannot delete their own account (no form offers it; a forged post is refused).
    const self = server.auth.users.byName("owner")!.id;
    const forged = await server.fetch(`/users/${self}/delete`, { method: "POST", body: new URLSearchParams({ confirm: "yes" }) });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain("you cannot delete your own account");
  }, 60_000);
});

describe("every answer", () => {
  test("carries the security headers: pages, errors, refusals, the API, static files", async () => {
    const paths = [...PAGES, ...OWNER_PAGES, "/rooms/nope", "/login", "/setup", "/api/v1/devices", "/api/v1/nope", "/health"];
    const asset = /src="(\/static\/[^"]+\.js)"/.exec(await (await server.fetch("/")).text())![1]!;
    const wrong: string[] = [];
    const check = (what: string, res: Response) => {
      const h = res.headers;
      if (h.get("content-security-policy") !== CSP) wrong.push(`${what}: CSP ${h.get("content-security-policy")}`);
      if (h.get("x-content-type-options") !== "nosniff") wrong.push(`${what}: nosniff`);
      if (h.get("referrer-policy") !== "same-origin") wrong.push(`${what}: referrer-policy`);
      if (h.get("x-frame-options") !== "DENY") wrong.push(`${what}: x-frame-options`);
    };
    for (const path of [...paths, asset]) check(path, await server.fetch(path, { redirect: "manual" }));
    check("a refusal", await fetch(`${server.url}/devices`, { redirect: "manual" }));
    check("a 401 of the API", await fetch(`${server.url}/api/v1/devices`));
    check("a bad CSRF token", await server.fetch("/rooms", { method: "POST", headers: { "x-csrf-token": "x" } }));
    expect(wrong).toEqual([]);
    expect(CSP).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    );
  });

  test("a page's HTML has no inline script and no style attribute the policy would block", async () => {
    for (const path of [...PAGES, ...OWNER_PAGES, "/login", "/setup", "/reset"]) {
      const html = await (await server.fetch(path)).text();
      expect(`${path}: ${html.match(/<script(?![^>]*\bsrc=)[^>]*>|\sstyle="|<style/g) ?? "none"}`).toBe(`${path}: none`);
    }
  });
});

describe("the Host check (DNS rebinding)", () => {
  const curl = (url: string, host: string, extra: string[] = []) =>
    run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", `Host: ${host}`, ...extra, url]);

  test("a page asked for under another name is refused with 421; IP addresses, localhost and this machine's names are fine", async () => {
    const port = server.httpPort;
    for (const path of ["/", "/login", "/api/v1/devices"]) {
      expect((await curl(server.url + path, `evil.example:${port}`)).stdout).toBe("421");
    }
    const body = await run(["curl", "-sS", "-H", "Host: evil.example", `${server.url}/`]);
    expect(body.stdout).toContain('This server does not answer to the name "evil.example"');
    expect(body.stdout).toContain("http_allowed_hosts");
    const machine = hostname().toLowerCase();
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `[::1]:${port}`,
      `192.168.1.10:${port}`,
      machine,
      `${machine.split(".")[0]}.local`,
    ]) {
      expect(`${host} ${(await curl(`${server.url}/login`, host)).stdout}`).toBe(`${host} 200`);
    }
    // What a rebinding page cannot have: an API token; and what is the same for everyone: /health, static files.
    expect(
      (await curl(`${server.url}/api/v1/devices`, "evil.example", ["-H", `Authorization: Bearer ${server.token}`])).stdout,
    ).toBe("200");
    expect((await curl(`${server.url}/health`, "evil.example")).stdout).toBe("200");
    expect(server.logs.some((l) => l.includes("host name not allowed") && l.includes("host=evil.example"))).toBe(true);
  });

  test("http_allowed_hosts adds names", async () => {
    const other = await startServer({ http_allowed_hosts: "techtemp.lan,pi.fritz.box" });
    try {
      for (const [host, code] of [
        ["techtemp.lan", "303"],
        ["PI.fritz.box.", "303"],
        ["evil.lan", "421"],
      ]) {
        expect(`${host} ${(await curl(`${other.url}/`, host)).stdout}`).toBe(`${host} ${code}`);
      }
    } finally {
      await other.stop();
    }
  });
});

describe("an upgraded install", () => {
  test("keeps its readers working (public_read) and its sensors (accept_anonymous_sensors), both a warning with a one-click 'Turn off'", async () => {
    // A database of the previous version (schema 2) that already holds a device.
    const dir = tempDir();
    const db = new Database(join(dir.path, DB_FILE), { create: true, strict: true });
    db.transaction(() => {
      migrations[0]!(db);
      migrations[1]!(db);
      db.exec("PRAGMA user_version = 2");
      db.query("INSERT INTO devices (uid, created_at) VALUES (?, ?)").run("aht20-0ld0ld", Date.now());
    })();
    db.close();
    const upgraded = await startServer({}, { dataDir: dir.path });
    const tab = await openPage(browser, { server: upgraded, width: 900 });
    try {
      expect((await fetch(`${upgraded.url}/api/v1/devices`)).status).toBe(200);
      expect((await fetch(`${upgraded.url}/devices`)).status).toBe(200);
      await tab.page.goto(`${upgraded.url}/devices`);
      expect(await tab.page.textContent("#banner-public_read")).toContain("Anyone on the network can read these pages");
      expect(await tab.page.textContent("#banner-accept_anonymous_sensors")).toContain("1 device has no password yet");
      await tab.page.click("#banner-public_read button");
      await tab.page.waitForURL(`${upgraded.url}/security?done=switched`);
      expect(await tab.page.$("#banner-public_read")).toBeNull();
      expect((await fetch(`${upgraded.url}/api/v1/devices`)).status).toBe(401);
      await tab.page.click("#banner-accept_anonymous_sensors button");
      await tab.page.waitForSelector("#accept_anonymous_sensors .status.online");
      expect(upgraded.store.auth.settings.get("accept_anonymous_sensors")).toBe("0");
      // A viewer never sees these warnings.
      const viewer = await upgraded.signIn("vic");
      upgraded.auth.switches.set("public_read", true);
      const html = await (await fetch(`${upgraded.url}/`, { headers: { cookie: viewer.cookie } })).text();
      expect(html).not.toContain("banner-public_read");
    } finally {
      await tab.close();
      await upgraded.stop();
      dir.cleanup();
    }
  }, 60_000);

  test("a certificate that expires within 30 days is a warning to the owner", async () => {
    const log = createLog({ level: "error" });
    const history = createHistory(server.store.history);
    const now = Date.now();
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
      tls: { notAfter: now + 10 * 86_400_000 + 3_600_000, names: ["127.0.0.1"] },
      log,
    });
    const listener = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (request) => app.handle(request) });
    try {
      const session = await login({ ...server, url: `http://127.0.0.1:${listener.port}` }, "owner", "owner password for tests");
      const html = await (await fetch(`http://127.0.0.1:${listener.port}/`, { headers: { cookie: session.cookie } })).text();
      expect(html).toContain('id="banner-certificate"');
      expect(html).toMatch(/The HTTPS certificate expires on \d{4}-\d{2}-\d{2} \(in 10 days\)/);
    } finally {
      listener.stop(true);
    }
  });
});
