// The pages over plain HTTP, as a browser without JavaScript sees them:
// assets, the dashboard's content, the event stream, and every form's
// answers to good and bad input.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import { connectMqtt, endMqtt, startServer, waitFor, withTimeout, type TestServer } from "./helpers.ts";
import { getPage, placeDevice, postForm, publishReadings } from "./web-helpers.ts";

const T = Date.parse("2026-01-15T12:00:00Z");
let clock = T;
let server: TestServer;
let client: MqttClient;

beforeEach(async () => {
  clock = T;
  server = await startServer({}, { now: () => clock, logLevel: "warn" });
  client = await connectMqtt(server.mqttPort);
});
afterEach(async () => {
  await endMqtt(client);
  await server.stop();
});

/** Decodes the entities our escaping produces, to compare text. */
const unescape = (s: string) =>
  s
    .replace(/&quot;|&#34;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
/** The text of some HTML, as a person reads it (tags removed). */
const textOf = (html: string) => unescape(html.replace(/<[^>]+>/g, ""));
/** The message shown under a field (its span#<id>-error), or null. */
const fieldError = (html: string, id: string) => {
  const m = html.match(new RegExp(`<span class="error" id="${id}-error"[^>]*>([^<]*)</span>`));
  return m ? unescape(m[1]!) : null;
};
/** The value of the input named `name`. */
const inputValue = (html: string, name: string, id = name) => {
  const m = html.match(new RegExp(`<input id="${id}" name="${name}"[^>]* value="([^"]*)"`));
  return m ? unescape(m[1]!) : null;
};

async function kitchen(): Promise<void> {
  await placeDevice(server, client, { uid: "aht20-aaaaaa", room: "Kitchen", placedAt: T - 86_400_000, intervalS: 60 });
}

describe("assets", () => {
  test("every script and stylesheet of the dashboard is served gzipped under a content hash, cached for a year", async () => {
    const { html } = await getPage(server, "/");
    const urls = [...html.matchAll(/(?:src|href)="(\/static\/[^"]+)"/g)].map((m) => m[1]!);
    expect(urls.some((u) => u.endsWith("/htmx.min.js"))).toBe(true);
    expect(urls.some((u) => u.endsWith("/sse.min.js"))).toBe(true);
    expect(urls.some((u) => u.endsWith("/app.css"))).toBe(true);
    for (const url of urls.filter((u) => /\.(js|css)$/.test(u))) {
      expect(url).toMatch(/^\/static\/[0-9a-f]{12}\//);
      const res = await fetch(server.url + url, { headers: { "accept-encoding": "gzip" }, decompress: false });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-encoding")).toBe("gzip");
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      const body = new Uint8Array(await res.arrayBuffer());
      expect([body[0], body[1]]).toEqual([0x1f, 0x8b]);
      const plain = Bun.gunzipSync(body);
      expect(plain.length).toBeGreaterThan(body.length);
    }
  });

  test("htmx, its SSE extension and uPlot are our copies from node_modules, not a CDN", async () => {
    const { html } = await getPage(server, "/rooms");
    expect(html).not.toMatch(/https?:\/\//);
    const { html: room } = await getPage(server, "/compare");
    for (const [name, file] of [
      ["uPlot.iife.min.js", "node_modules/uplot/dist/uPlot.iife.min.js"],
      ["uPlot.min.css", "node_modules/uplot/dist/uPlot.min.css"],
    ]) {
      const url = room.match(new RegExp(`"(/static/[0-9a-f]+/${name.replace(/\./g, "\\.")})"`))![1]!;
      expect(await (await fetch(server.url + url)).text()).toBe(await Bun.file(file).text());
    }
    const htmx = html.match(/"(\/static\/[0-9a-f]+\/htmx\.min\.js)"/)![1]!;
    expect(await (await fetch(server.url + htmx)).text()).toBe(await Bun.file("node_modules/htmx.org/dist/htmx.min.js").text());
  });

  test("a client that does not accept gzip gets the plain file; ETag revalidation answers 304", async () => {
    const res = await fetch(server.url + "/static/app.css", { headers: { "accept-encoding": "identity" } });
    expect(res.headers.get("content-encoding")).toBeNull();
    expect(await res.text()).toContain("prefers-color-scheme: dark");
    const etag = res.headers.get("etag")!;
    const again = await fetch(server.url + "/static/app.css", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
  });

  test("an old hash gets today's file but is not cached as immutable; an unknown file is 404", async () => {
    const res = await fetch(server.url + "/static/000000000000/app.css");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect((await fetch(server.url + "/static/0/nope.js")).status).toBe(404);
    expect((await fetch(server.url + "/static/nope.js")).status).toBe(404);
    expect((await fetch(server.url + "/static/a/b/c")).status).toBe(404);
  });

  test("the web app manifest names PNG icons of the sizes it claims", async () => {
    const res = await fetch(server.url + "/manifest.webmanifest");
    expect(res.headers.get("content-type")).toBe("application/manifest+json");
    const manifest = await res.json();
    expect(manifest.display).toBe("standalone");
    expect(manifest.start_url).toBe("/");
    for (const icon of manifest.icons) {
      const file = await fetch(server.url + icon.src);
      expect(file.status).toBe(200);
      const bytes = new Uint8Array(await file.arrayBuffer());
      if (icon.type === "image/png") {
        // PNG signature, then IHDR: width and height as big-endian 32-bit numbers at bytes 16 and 20.
        expect([...bytes.slice(1, 4)]).toEqual([0x50, 0x4e, 0x47]);
        const view = new DataView(bytes.buffer);
        expect(`${view.getUint32(16)}x${view.getUint32(20)}`).toBe(icon.sizes);
      } else {
        expect(new TextDecoder().decode(bytes)).toStartWith("<svg");
      }
    }
    const { html } = await getPage(server, "/");
    expect(html).toContain('<link rel="manifest" href="/manifest.webmanifest"/>');
    expect(html).toMatch(/<link rel="apple-touch-icon" href="\/static\/[0-9a-f]+\/apple-touch-icon\.png"\/>/);
  });
});

describe("pages without JavaScript", () => {
  test("pages are HTML with a content security policy that allows only our own scripts", async () => {
    for (const path of ["/", "/rooms", "/devices", "/compare"]) {
      const { status, headers, html } = await getPage(server, path);
      expect(status).toBe(200);
      expect(headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(html).toStartWith("<!doctype html>");
    }
  });

  test("the dashboard shows values, status, freshness, today's range, dew point, humidex and a sparkline", async () => {
    await kitchen();
    await publishReadings(client, "aht20-aaaaaa", [
      [T - 3 * 3_600_000, 19.5, 40],
      [T - 3_600_000, 22.25, 48],
      [T - 150_000, 21.5, 45],
    ]);
    const { html } = await getPage(server, "/");
    const card = html.slice(html.indexOf('id="room-kitchen"'));
    expect(card).toContain("Kitchen");
    // The temperature carries its °C value for the °F choice (static/app.js); the unit is its own element.
    expect(card).toContain('<span class="temp"><span data-c="21.5">21.5</span><small class="tu">°C</small>');
    expect(card).toMatch(/<span class="hum">45<small>%<\/small>/);
    // Announced interval 60 s, last reading 2.5 min ago: more than 2 intervals → late.
    expect(card).toMatch(/<span class="status late" data-late-at="\d+" data-offline-at="\d+">late<\/span>/);
    expect(card).toContain(">2 min ago</time>");
    // The time of the last reading, in the home's zone (UTC here), 24-hour.
    expect(textOf(card)).toContain("updated 11:57");
    expect(textOf(card)).toContain("19.5–22.3 °C");
    expect(textOf(card)).toContain("40–48 %");
    // Magnus: dew point 9.07 °C, humidex 22.3 (computed independently).
    expect(textOf(card)).toContain("Dew point9.1 °C");
    expect(card).toMatch(/<dt>Humidex<\/dt><dd>22 <span class="comfort comfortable">comfortable<\/span>/);

    expect(card).toMatch(/<svg class="spark"[^>]*><path d="M\d+ [\d.]+/);
  });

  test("a room with several sensors shows each; a device in no room is in the banner with a link to place it", async () => {
    await kitchen();
    await placeDevice(server, client, { uid: "aht20-bbbbbb", room: "Kitchen", label: "By the oven", placedAt: T - 86_400_000 });
    await publishReadings(client, "aht20-aaaaaa", [[T - 60_000, 21, 40]]);
    await publishReadings(client, "aht20-bbbbbb", [[T - 60_000, 26, 35]]);
    await publishReadings(client, "aht20-cccccc", [[T - 60_000, 18, 60]]);
    const { html } = await getPage(server, "/");
    expect(html).toContain('<div class="sensor-name" title="aht20-aaaaaa">aht20-aaaaaa</div>');
    expect(html).toContain('<div class="sensor-name" title="By the oven">By the oven</div>');
    expect(html).toContain("1 device is not in a room yet.");
    expect(html).toContain('<a href="/devices/aht20-cccccc#place">aht20-cccccc</a>');
  });

  test("an unknown room or device is an HTML 404 page", async () => {
    for (const path of ["/rooms/nope", "/devices/nope"]) {
      const { status, html } = await getPage(server, path);
      expect(status).toBe(404);
      expect(html).toContain("<h1>Not found</h1>");
    }
    expect((await postForm(server, "/devices/nope/place", { room: "" })).status).toBe(404);
    expect((await postForm(server, "/rooms/nope", { name: "x" })).status).toBe(404);
  });

  test("the room page links windows and steps back and forward one window", async () => {
    await kitchen();
    const { html } = await getPage(server, "/rooms/kitchen?range=7d");
    expect(html).toContain('<a href="/rooms/kitchen?range=7d" aria-current="true">7 d</a>');
    const back = unescape(html.match(/<a href="([^"]+)" rel="prev"/)![1]!);
    expect(back).toBe(`/rooms/kitchen?range=7d&end=${encodeURIComponent(new Date(T - 7 * 86_400_000).toISOString())}`);
    expect(html).not.toContain('rel="next"');
    const earlier = await getPage(server, back);
    expect(earlier.html).toContain(`data-from="${T - 14 * 86_400_000}" data-to="${T - 7 * 86_400_000}"`);
    const next = unescape(earlier.html.match(/<a href="([^"]+)" rel="next"/)![1]!);
    expect(next).toBe("/rooms/kitchen?range=7d");
  });

  test("a custom range is used as typed; bad ranges answer 400 with the message next to the field and keep the text", async () => {
    await kitchen();
    const ok = await getPage(server, "/rooms/kitchen?from=2026-01-10T08:00&to=2026-01-11T08:00");
    expect(ok.status).toBe(200);
    const from = new Date(2026, 0, 10, 8, 0).getTime();
    expect(ok.html).toContain(`data-from="${from}" data-to="${from + 86_400_000}"`);

    const cases: [string, string, string][] = [
      ["from=yesterday", "from", "is not a date and time"],
      ["from=2026-01-12T08:00&to=2026-01-11T08:00", "to", "must be after From"],
      ["to=2026-01-11T08:00", "from", "choose a date and time"],
      ["range=2w", "from", 'range "2w" is not one of 24h, 7d, 30d, 90d, 1y'],
      ["end=soon", "to", "is not a date and time"],
    ];
    for (const [query, field, message] of cases) {
      const { status, html } = await getPage(server, `/rooms/kitchen?${query}`);
      expect(status).toBe(400);
      expect(fieldError(html, field)).toContain(message);
      // The chart falls back to the last 24 h.
      expect(html).toContain(`data-from="${T - 86_400_000}" data-to="${T}"`);
    }
    const { html } = await getPage(server, "/rooms/kitchen?from=yesterday");
    expect(inputValue(html, "from")).toBe("yesterday");
  });

  test("the comparison page answers an unknown room with a message and still shows the known ones", async () => {
    await kitchen();
    const { status, html } = await getPage(server, "/compare?rooms=kitchen,attic");
    expect(status).toBe(400);
    expect(unescape(html)).toContain('no room "attic"; choose from the list');
    expect(html).toContain('<input type="checkbox" name="rooms" value="kitchen" checked/>');
    expect(unescape(html)).toContain('data-sources="[{"kind":"room","uid":"kitchen","name":"Kitchen"}]"');
    const none = await getPage(server, "/compare");
    expect(none.html).toContain("choose one or more rooms");
    expect(none.html).not.toContain("data-chart");
  });
});

describe("the event stream", () => {
  async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, needle: string): Promise<string> {
    let text = "";
    const decoder = new TextDecoder();
    await withTimeout(
      (async () => {
        while (!text.includes(needle)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`stream ended before ${needle}`);
          text += decoder.decode(value, { stream: true });
        }
      })(),
      10_000,
      `event stream to send ${needle}`,
    );
    return text;
  }

  test("pushes the room's card as soon as a reading is stored", async () => {
    await kitchen();
    const { html } = await getPage(server, "/");
    const since = html.match(/sse-connect="\/events\?since=(\d+)&(?:amp;)?view=dashboard"/)![1];
    const controller = new AbortController();
    const res = await server.fetch(`/events?since=${since}`, { signal: controller.signal });
    try {
      expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
      const reader = res.body!.getReader();
      await readUntil(reader, "retry: 2000");
      await publishReadings(client, "aht20-aaaaaa", [[T - 1000, 23.4, 51]]);
      // The kitchen's card (or every card, when the room's creation is pushed in the same moment).
      const text = await readUntil(reader, 'data-c="23.4"');
      const event = text.slice(text.lastIndexOf("event: ", text.indexOf('data-c="23.4"')));
      expect(event).toMatch(/^event: (room-kitchen|cards)\n/);
      expect(event).toContain('<header class="card-head">');
      expect(event).toContain('<span class="temp"><span data-c="23.4">23.4</span><small class="tu">°C</small>');
    } finally {
      controller.abort();
    }
  });

  test("a device moved through the JSON API moves on open dashboards at once, without a new reading", async () => {
    await kitchen();
    await publishReadings(client, "aht20-aaaaaa", [[T - 1000, 23.4, 51]]);
    const { html } = await getPage(server, "/");
    const since = html.match(/sse-connect="\/events\?since=(\d+)&(?:amp;)?view=dashboard"/)![1];
    const controller = new AbortController();
    const res = await server.fetch(`/events?since=${since}`, { signal: controller.signal });
    try {
      const reader = res.body!.getReader();
      await readUntil(reader, "retry: 2000");
      const put = await server.api("/api/v1/devices/aht20-aaaaaa", { method: "PUT", body: { room_name: "Cellar" } });
      expect(put.status).toBe(200);
      // A new room (the cellar) was made for it: every card is pushed again, the kitchen's without it.
      const text = await readUntil(reader, 'id="room-cellar"');
      const cards = text.slice(text.lastIndexOf("event: cards"));
      const kitchen = cards.slice(cards.indexOf('id="room-kitchen"'), cards.indexOf('id="room-cellar"'));
      expect(kitchen).not.toContain('data-device="aht20-aaaaaa"');
      expect(cards.slice(cards.indexOf('id="room-cellar"'))).toContain('data-device="aht20-aaaaaa"');
      // A room's rename reaches the open pages too.
      await server.api("/api/v1/rooms/cellar", { method: "PUT", body: { name: "Wine cellar" } });
      expect(await readUntil(reader, "Wine cellar")).toContain("event: cards");
    } finally {
      controller.abort();
    }
  }, 20_000);

  test("a client that missed changes (reconnecting with Last-Event-ID) gets every card at once", async () => {
    await kitchen();
    await placeDevice(server, client, { uid: "aht20-bbbbbb", room: "Bedroom", placedAt: T - 86_400_000 });
    await publishReadings(client, "aht20-aaaaaa", [[T - 1000, 23.4, 51]]);
    // Changes are pushed together a moment after the commit: wait until the pages count them.
    await waitFor(async () => Number((await getPage(server, "/")).html.match(/since=(\d+)/)![1]) > 0, 15_000, "a change");
    const controller = new AbortController();
    const res = await server.fetch(`/events`, { signal: controller.signal, headers: { "last-event-id": "0" } });
    try {
      const reader = res.body!.getReader();
      // Every card at once: the cards section (a card per room), and the banner.
      const text = await readUntil(reader, "event: cards");
      expect(text).toContain("event: unplaced");
      const cards = text.slice(text.indexOf("event: cards"));
      expect(cards).toContain('id="room-kitchen"');
      expect(cards).toContain('id="room-bedroom"');
    } finally {
      controller.abort();
    }
  });
});

test("a garbled since on the event stream counts as having missed everything", async () => {
  await kitchen();
  const controller = new AbortController();
  const res = await server.fetch(`/events?since=yesterday`, { signal: controller.signal });
  try {
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = "";
    await withTimeout(
      (async () => {
        while (!text.includes('id="room-kitchen"')) text += new TextDecoder().decode((await reader.read()).value);
      })(),
      10_000,
      "the kitchen card",
    );
    expect(text).toContain("event: unplaced");
  } finally {
    controller.abort();
  }
});

describe("rooms form", () => {
  test("creates a room with floor and side, renames it, and deletes it once confirmed", async () => {
    const created = await postForm(server, "/rooms", { name: "Salle à manger", floor: "Ground", side: "south" });
    expect(created.status).toBe(303);
    expect(created.location).toBe("/rooms?done=created");
    expect((await server.api("/api/v1/rooms")).body.data).toEqual([
      { uid: "salle-a-manger", name: "Salle à manger", floor: "Ground", side: "south" },
    ]);
    expect((await getPage(server, created.location!)).html).toContain("Room created.");

    const renamed = await postForm(server, "/rooms/salle-a-manger", { name: "Dining room", floor: "", side: "north" });
    expect(renamed.status).toBe(303);
    expect((await server.api("/api/v1/rooms/salle-a-manger")).body.data).toMatchObject({
      name: "Dining room",
      floor: null,
      side: "north",
    });

    const deleted = await postForm(server, "/rooms/salle-a-manger/delete", { confirm: "yes" });
    expect(deleted.status).toBe(303);
    expect((await server.api("/api/v1/rooms")).body.data).toEqual([]);
  });

  test("htmx posts get the updated page itself (200), not a redirect", async () => {
    const res = await postForm(server, "/rooms", { name: "Attic" }, { htmx: true });
    expect(res.status).toBe(200);
    expect(res.html).toContain("Room created.");
    expect(res.html).toContain('id="manage-attic"');
  });

  test("bad values answer 422 with a message next to the field, keep what was typed, and create nothing", async () => {
    await postForm(server, "/rooms", { name: "Kitchen" });
    const cases: [Record<string, string>, string, string][] = [
      [{ name: "" }, "new-name", "give the room a name"],
      [{ name: "   " }, "new-name", "give the room a name"],
      [{ name: "x".repeat(101) }, "new-name", "at most 100 characters"],
      [{ name: "Attic", floor: "f".repeat(51) }, "new-floor", "at most 50 characters"],
      [{ name: "!!!" }, "new-name", "must contain at least one letter or digit"],
      [{ name: "KITCHEN" }, "new-name", 'room "kitchen" already exists'],
    ];
    for (const [fields, id, message] of cases) {
      const res = await postForm(server, "/rooms", fields);
      expect(res.status).toBe(422);
      expect(fieldError(res.html, id)).toBe(message);
      expect(inputValue(res.html, "name", "new-name")).toBe(fields.name!.trim());
    }
    expect((await server.api("/api/v1/rooms")).body.data.map((r: { uid: string }) => r.uid)).toEqual(["kitchen"]);
  });

  test("a rename without a name is refused and changes nothing", async () => {
    await postForm(server, "/rooms", { name: "Kitchen", floor: "Ground" });
    const res = await postForm(server, "/rooms/kitchen", { name: "", floor: "First" });
    expect(res.status).toBe(422);
    expect(fieldError(res.html, "kitchen-name")).toBe("give the room a name");
    expect(inputValue(res.html, "floor", "kitchen-floor")).toBe("First");
    expect((await server.api("/api/v1/rooms/kitchen")).body.data).toMatchObject({ name: "Kitchen", floor: "Ground" });
  });

  test("a room is deleted only when confirmed and only when no device is in it", async () => {
    await kitchen();
    const unconfirmed = await postForm(server, "/rooms/kitchen/delete", {});
    expect(unconfirmed.status).toBe(422);
    expect(unconfirmed.html).toContain("tick the box to confirm");
    const busy = await postForm(server, "/rooms/kitchen/delete", { confirm: "yes" });
    expect(busy.status).toBe(422);
    expect(unescape(busy.html)).toContain('room "kitchen" still has 1 device; move it first');
    expect((await server.api("/api/v1/rooms/kitchen")).status).toBe(200);
  });
});

describe("device forms", () => {
  type PlacementJson = { room: { uid: string }; from_ts: string; to_ts: string | null };
  const placements = async (uid: string) =>
    (await server.api(`/api/v1/devices/${uid}/placements`)).body.data.map((p: PlacementJson) => [p.room.uid, p.from_ts, p.to_ts]);

  test("places an unplaced device, then moves it to a new room from a past moment", async () => {
    await publishReadings(client, "aht20-dddddd", [[T - 7_200_000, 20, 50]]);
    await postForm(server, "/rooms", { name: "Office" });
    const placed = await postForm(server, "/devices/aht20-dddddd/place", { room: "office", new_room: "", moved_at: "" });
    expect(placed.status).toBe(303);
    expect(placed.location).toBe("/devices/aht20-dddddd?saved=place#place");
    expect(await placements("aht20-dddddd")).toEqual([["office", new Date(T).toISOString(), null]]);

    clock = T + 3_600_000;
    const movedAt = new Date(2026, 0, 15, 12, 30).getTime();
    const moved = await postForm(server, "/devices/aht20-dddddd/place", {
      room: "office",
      new_room: "Guest room",
      moved_at: "2026-01-15T12:30",
    });
    expect(moved.status).toBe(303);
    expect(await placements("aht20-dddddd")).toEqual([
      ["office", new Date(T).toISOString(), new Date(movedAt).toISOString()],
      ["guest-room", new Date(movedAt).toISOString(), null],
    ]);
    const page = await getPage(server, "/devices/aht20-dddddd?saved=place");
    expect(page.html).toContain('<span class="saved">Saved</span>');
  });

  test("bad placements answer 422 next to the field, keep the input, and change nothing", async () => {
    await kitchen();
    await postForm(server, "/rooms", { name: "Office" });
    const before = await placements("aht20-aaaaaa");
    const cases: [Record<string, string>, string, string][] = [
      [{ room: "attic" }, "room", "choose a room from the list"],
      [{ room: "kitchen" }, "room", "it is in Kitchen already"],
      [
        { room: "office", moved_at: "last tuesday" },
        "moved_at",
        '"last tuesday" is not a date and time; use the form 2026-11-28T14:05',
      ],
      [
        { room: "office", moved_at: "2026-02-30T10:00" },
        "moved_at",
        '"2026-02-30T10:00" is not a date and time; use the form 2026-11-28T14:05',
      ],
      [{ room: "office", moved_at: "2026-01-16T12:00" }, "moved_at", "must not be in the future"],
      [{ room: "office", moved_at: "2026-01-01T12:00" }, "moved_at", "is before the device's current placement began"],
      [{ room: "", new_room: "!!!" }, "new_room", "must contain at least one letter or digit"],
      [{ room: "", new_room: "n".repeat(101) }, "new_room", "at most 100 characters"],
    ];
    for (const [fields, id, message] of cases) {
      const res = await postForm(server, "/devices/aht20-aaaaaa/place", { room: "", new_room: "", moved_at: "", ...fields });
      expect(res.status).toBe(422);
      expect(fieldError(res.html, id)).toContain(message);
      if (fields.moved_at) expect(inputValue(res.html, "moved_at")).toBe(fields.moved_at);
      if (fields.new_room) expect(inputValue(res.html, "new_room")).toBe(fields.new_room);
    }
    expect(await placements("aht20-aaaaaa")).toEqual(before);
    expect((await server.api("/api/v1/rooms")).body.data.map((r: { uid: string }) => r.uid)).toEqual(["kitchen", "office"]);
  });

  test("settings reach the sensor through its retained config message", async () => {
    await kitchen();
    const res = await postForm(server, "/devices/aht20-aaaaaa/settings", {
      label: "Fridge side",
      interval_s: "120",
      temperature_offset: "-0,5",
      humidity_offset: "2.25",
    });
    expect(res.status).toBe(303);
    const device = (await server.api("/api/v1/devices/aht20-aaaaaa")).body.data;
    expect(device.label).toBe("Fridge side");
    expect(device.config).toEqual({ interval_s: 120, temperature_offset: -0.5, humidity_offset: 2.25 });
    // A sensor subscribing now gets the retained message.
    const sensor = await connectMqtt(server.mqttPort);
    try {
      const message = new Promise<string>((resolve) => sensor.on("message", (_topic, payload) => resolve(payload.toString())));
      sensor.subscribe("home/home-001/sensors/aht20-aaaaaa/config", { qos: 1 });
      const config = JSON.parse(await withTimeout(message, 10_000, "retained config"));
      expect(config).toEqual({ interval_s: 120, temperature_offset: -0.5, humidity_offset: 2.25 });
    } finally {
      await endMqtt(sensor);
    }
  });

  test("bad settings answer 422 next to the field, keep the input, change nothing and publish nothing", async () => {
    await kitchen();
    const good = { label: "", interval_s: "", temperature_offset: "0", humidity_offset: "0" };
    const cases: [Record<string, string>, string, string][] = [
      [{ interval_s: "abc" }, "interval_s", "a whole number of seconds from 1 to 3600, or empty"],
      [{ interval_s: "0" }, "interval_s", "a whole number of seconds from 1 to 3600, or empty"],
      [{ interval_s: "3601" }, "interval_s", "a whole number of seconds from 1 to 3600, or empty"],
      [{ interval_s: "1.5" }, "interval_s", "a whole number of seconds from 1 to 3600, or empty"],
      [{ temperature_offset: "warm" }, "temperature_offset", "a number from -20 to 20"],
      [{ temperature_offset: "25" }, "temperature_offset", "a number from -20 to 20"],
      [{ humidity_offset: "1e3" }, "humidity_offset", "a number from -20 to 20"],
      [{ humidity_offset: "-20.5" }, "humidity_offset", "a number from -20 to 20"],
      [{ label: "l".repeat(101) }, "label", "at most 100 characters"],
    ];
    for (const [fields, id, message] of cases) {
      const res = await postForm(server, "/devices/aht20-aaaaaa/settings", { ...good, ...fields });
      expect(res.status).toBe(422);
      expect(fieldError(res.html, id)).toBe(message);
      expect(inputValue(res.html, id)).toBe(Object.values(fields)[0]!);
    }
    const device = (await server.api("/api/v1/devices/aht20-aaaaaa")).body.data;
    expect(device.label).toBeNull();
    expect(device.config).toEqual({ interval_s: null, temperature_offset: 0, humidity_offset: 0 });
    expect(server.logs.filter((l) => l.includes("config"))).toEqual([]);
  });

  test("the devices list shows status, room, last seen and the refused-reading count with its reason", async () => {
    await kitchen();
    await publishReadings(client, "aht20-aaaaaa", [[T - 30_000, 21, 40]]);
    const { publishAcked, readingTopic } = await import("./helpers.ts");
    await publishAcked(client, readingTopic("aht20-aaaaaa"), '{"temperature_c":120,"humidity_pct":40,"ts":1}');
    const { html } = await getPage(server, "/devices");
    const row = html.slice(html.indexOf('id="device-aht20-aaaaaa"'));
    expect(row).toContain(">online</span>");
    expect(row).toContain('<a href="/rooms/kitchen">Kitchen</a>');
    expect(textOf(row)).toContain("21.0 °C · 40 %");
    expect(row).toContain("temperature_c 120 is outside -40…85");
    expect(row).toMatch(/<td data-label="Refused readings">1<div class="refusal">/);
  });
});
