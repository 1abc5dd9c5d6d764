// Helpers of the page tests: the real browser (Debian's chromium driven by
// playwright-core) signed in as the test server's owner (its session cookie)
// or as anyone else, form posts with the session's CSRF token, and devices
// put in rooms through the broker.

import type { MqttClient } from "mqtt";
import { chromium, type Browser, type Page } from "playwright-core";
import { authHeaders, legacyPayload, publishAcked, readingTopic, type As, type TestServer, type TestSession } from "./helpers.ts";

/** Flags for a headless chromium that stays on 127.0.0.1 and does no background work. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches /usr/bin/chromium headless. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** A page that records any dialog (alert, confirm…) and any uncaught script error. */
export interface WatchedPage {
  page: Page;
  /** Messages of dialogs that opened (each is dismissed). */
  dialogs: string[];
  /** Uncaught errors thrown by the page's scripts. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * Opens a page in a fresh context (own cookies and cache) with a phone-sized
 * viewport by default, signed in to `server` with the owner's session (or
 * `session`) when one is given.
 */
export async function openPage(
  browser: Browser,
  options: {
    width?: number;
    height?: number;
    javaScript?: boolean;
    server?: TestServer;
    session?: TestSession;
    /** The browser's own time zone and language (default: the machine's zone, en-US). */
    timezoneId?: string;
    locale?: string;
    /** A touch screen (a phone): `pointer: coarse`, touch events. */
    touch?: boolean;
  } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 420, height: options.height ?? 900 },
    javaScriptEnabled: options.javaScript ?? true,
    timezoneId: options.timezoneId,
    locale: options.locale,
    hasTouch: options.touch,
    isMobile: options.touch,
  });
  const cookie = options.session?.cookie ?? options.server?.cookie;
  if (options.server && cookie) {
    const [name, value] = cookie.split("=") as [string, string];
    await context.addCookies([{ name, value, url: options.server.url, httpOnly: true, sameSite: "Lax" }]);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (err) => errors.push(err.message));
  return { page, dialogs, errors, close: () => context.close() };
}

/** The status topic of a device. */
export const statusTopic = (uid: string, home = "home-001") => `home/${home}/sensors/${uid}/status`;

/**
 * Registers a device through the broker and places it in a room (created
 * when missing) from `placedAt` on. With `intervalS` it announces itself like
 * a newer agent (retained birth message); without, it sends one reading at
 * `placedAt - 1 s` like the earlier agent, which announces nothing.
 */
export async function placeDevice(
  server: TestServer,
  client: MqttClient,
  device: { uid: string; room: string; placedAt: number; label?: string; intervalS?: number },
): Promise<void> {
  if (device.intervalS !== undefined) {
    const birth = JSON.stringify({ state: "online", interval_s: device.intervalS, version: "test" });
    await publishAcked(client, statusTopic(device.uid), birth, 5000, true);
  } else {
    await publishAcked(client, readingTopic(device.uid), legacyPayload(20, 50, device.placedAt - 1000));
  }
  const { status, body } = await server.api(`/api/v1/devices/${device.uid}`, {
    method: "PUT",
    body: { room_name: device.room, moved_at: device.placedAt, ...(device.label !== undefined ? { label: device.label } : {}) },
  });
  if (status !== 200) throw new Error(`placing ${device.uid}: ${status} ${JSON.stringify(body)}`);
}

/** Publishes readings of one device, all in flight at once (QoS 1); resolves when every one is acknowledged = stored. */
export async function publishReadings(
  client: MqttClient,
  uid: string,
  readings: [ts: number, t: number, h: number][],
): Promise<void> {
  await Promise.all(readings.map(([ts, t, h]) => publishAcked(client, readingTopic(uid), legacyPayload(t, h, ts), 30_000)));
}

/**
 * Posts a form like a browser without JavaScript (no redirect following), as
 * the owner's session with its CSRF field and Origin unless `as` says
 * otherwise; `htmx` sends it as htmx does (HX-Request, the token as a header).
 */
export async function postForm(
  server: TestServer,
  path: string,
  fields: Record<string, string>,
  options: { htmx?: boolean; as?: As } = {},
): Promise<{ status: number; location: string | null; html: string }> {
  const as = options.as ?? "session";
  const { "x-csrf-token": csrf, ...headers } = authHeaders(server, as, true);
  const body = new URLSearchParams(fields);
  if (csrf !== undefined && !options.htmx && !("_csrf" in fields)) body.set("_csrf", csrf);
  const res = await fetch(server.url + path, {
    method: "POST",
    body,
    headers: options.htmx ? { ...headers, "hx-request": "true", ...(csrf ? { "x-csrf-token": csrf } : {}) } : headers,
    redirect: "manual",
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, location: res.headers.get("location"), html: await res.text() };
}

/** GETs a page (as the owner's session unless `as` says otherwise): status, headers and HTML. */
export async function getPage(
  server: TestServer,
  path: string,
  as: As = "session",
): Promise<{ status: number; headers: Headers; html: string }> {
  const res = await fetch(server.url + path, {
    headers: authHeaders(server, as, false),
    redirect: "manual",
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, headers: res.headers, html: await res.text() };
}
