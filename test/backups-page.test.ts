// The owner's backups page and API: list, "Back up now", download; a missing
// second target shown in red; every route the owner's alone (a backup holds
// the accounts and token hashes).

import { expect, test } from "bun:test";
import { deferAfterEach, startServer, startServerWithoutBackups, waitFor } from "./helpers.ts";

const defer = deferAfterEach();
const server = (overrides: Parameters<typeof startServer>[0] = {}) => startServerWithoutBackups(defer, overrides);

test("the owner backs up from the page, sees the file and downloads it", async () => {
  const s = await server();
  const empty = await (await s.fetch("/backups")).text();
  expect(empty).toContain("No backup yet.");
  expect(empty).toContain("Scheduled backups are off");
  expect(empty).toContain('<a href="/backups" aria-current="page">Backups</a>');
  const posted = await s.fetch("/backups", { method: "POST", redirect: "manual" });
  expect(posted.status).toBe(303);
  expect(posted.headers.get("location")).toBe("/backups?done=started");
  await s.backups.current;
  const record = s.store.backups.recent(1)[0]!;
  const html = await (await s.fetch("/backups?done=started")).text();
  expect(html).toContain("Backing up now: this page shows when it is done.");
  expect(html).toContain(`href="/backups/files/${record.file}"`);
  expect(html).toContain("Newest good backup:");
  const file = await s.fetch(`/backups/files/${record.file}`);
  expect(file.status).toBe(200);
  expect(file.headers.get("content-disposition")).toBe(`attachment; filename="${record.file}"`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  expect(new TextDecoder().decode(bytes.slice(0, 15))).toBe("SQLite format 3");
  expect(bytes.length).toBe(record.size_bytes!);
  // htmx: the page itself, polling while the backup runs.
  const htmx = await s.fetch("/backups", { method: "POST", headers: { "hx-request": "true" } });
  expect(htmx.status).toBe(200);
  expect(await htmx.text()).toContain('hx-trigger="every 2s"');
  await s.backups.current;
});

test("names that are not a backup's, and paths out of the directory, are 404", async () => {
  const s = await server();
  for (const path of [
    "/backups/files/techtemp.db",
    "/backups/files/..%2Ftechtemp.db",
    "/backups/files/techtemp-20260101T000000Z.db",
  ]) {
    const res = await s.fetch(path);
    expect(`${path} ${res.status}`).toBe(`${path} 404`);
  }
});

test("the API starts a backup (202) and shows it; a missing second target is shown on the page and in the API", async () => {
  const s = await server({ backup_second_dir: "/nonexistent/usb" });
  const started = await s.api("/api/v1/backups", { method: "POST" });
  expect(started.status).toBe(202);
  expect(started.body.data.running.trigger).toBe("manual");
  await waitFor(async () => (await s.api("/api/v1/backups")).body.data.last_ok !== null);
  const { body } = await s.api("/api/v1/backups");
  expect(body.data.files).toHaveLength(1);
  expect(body.data.second_target.problem).toContain("/nonexistent/usb does not exist");
  expect(body.data.last_ok.started_at).toMatch(/Z$/);
  const html = await (await s.fetch("/backups")).text();
  expect(html).toContain('id="second-target-problem"');
  expect(html).toContain("Second target not written: backup_second_dir /nonexistent/usb does not exist");
  // And on every page the owner opens, with the way to the backups page.
  const home = await (await s.fetch("/")).text();
  const banner = /<div class="banner" id="banner-backup"[^>]*>(.*?)<\/div>/s.exec(home)?.[1] ?? "";
  expect(banner).toContain("Backups are not reaching the second target: backup_second_dir /nonexistent/usb does not exist");
  expect(banner).toContain('<a href="/backups">Backups</a>');
  // Not a viewer's concern (the backups are the owner's).
  const viewer = await s.signIn("vic");
  expect(await (await s.fetch("/", { as: viewer })).text()).not.toContain("banner-backup");
});

test("only the owner: a viewer and a read token get 403, nobody gets 401 or the sign-in page", async () => {
  const s = await server();
  await s.backups.run("manual");
  const name = s.store.backups.recent(1)[0]!.file!;
  const viewer = await s.signIn("vic");
  const read = s.auth.tokens.create("reader", "read").token;
  for (const path of ["/backups", `/backups/files/${name}`, "/api/v1/backups"]) {
    expect(`${path} ${(await s.fetch(path, { as: viewer })).status}`).toBe(`${path} 403`);
    expect(`${path} ${(await s.fetch(path, { as: { token: read } })).status}`).toBe(`${path} 403`);
    const anonymous = await s.fetch(path, { as: "none", redirect: "manual" });
    expect([401, 303]).toContain(anonymous.status);
  }
  expect((await s.api("/api/v1/backups", { method: "POST", as: { token: read } })).status).toBe(403);
  expect((await s.fetch("/backups", { method: "POST", as: viewer })).status).toBe(403);
  // The viewer's navigation has no Backups link.
  expect(await (await s.fetch("/", { as: viewer })).text()).not.toContain('href="/backups"');
});
