// Renders the PNG icons from static/icon.svg and takes the README's
// screenshots (docs/*.png: the dashboard, a room, a device, the comparison,
// on a desktop and on a phone) with Debian's chromium, offline. Run after
// changing the icon or the pages:
//
//   bun bench/screenshots.ts            icons and screenshots
//   bun bench/screenshots.ts --icons    icons only
//
// The screenshots show a real server fed through its broker with a demo
// home in Paris (home_timezone): four rooms, one with two sensors, a day of
// readings with a gap, a device moved this afternoon, a late one and an
// unplaced one, and the outdoor weather from a local stand-in for Open-Meteo
// (three days of hours, so nothing leaves the machine). Signed in as the owner.

import { chromium, type Browser } from "playwright-core";
import { join } from "node:path";
import { CHROMIUM_ARGS, openPage } from "../test/web-helpers.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";

const root = join(import.meta.dir, "..");

async function renderIcons(browser: Browser): Promise<void> {
  const svg = await Bun.file(join(root, "static/icon.svg")).text();
  // The maskable variant fills the square: the launcher cuts its own shape out of it.
  const square = svg.replace(/ rx="\d+"/, "");
  const targets: [file: string, size: number, source: string][] = [
    ["static/icon-192.png", 192, svg],
    ["static/icon-512.png", 512, svg],
    ["static/apple-touch-icon.png", 180, square],
    ["static/icon-maskable-512.png", 512, square],
  ];
  for (const [file, size, source] of targets) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    const data = `data:image/svg+xml;base64,${Buffer.from(source).toString("base64")}`;
    await page.setContent(
      `<style>html,body{margin:0;background:transparent}</style><img src="${data}" width="${size}" height="${size}">`,
    );
    await page.locator("img").screenshot({ path: join(root, file), omitBackground: true });
    await page.close();
    console.log(`wrote ${file} (${size}×${size})`);
  }
}

/** Demo devices: uid, label, room, floor, base temperature and humidity. */
const DEMO = [
  ["aht20-1a2b3c", "Sofa", "Living room", "Ground floor", 21.2, 46],
  ["aht20-4d5e6f", "Window", "Living room", "Ground floor", 19.6, 52],
  ["aht20-778899", null, "Kitchen", "Ground floor", 22.4, 58],
  ["aht20-aabbcc", null, "Bedroom", "First floor", 18.3, 49],
  ["aht20-c0ffee", null, "Office", "First floor", 20.5, 41],
] as const;

/** Seeds a demo home on a real server (imported late: the server embeds the icons rendered above) and shoots the pages. */
async function takeScreenshots(browser: Browser, docs: string): Promise<void> {
  const { startServer, connectMqtt, publishAcked, endMqtt, legacyPayload, readingTopic, waitFor } =
    await import("../test/helpers.ts");
  const openMeteo = outdoorStandIn();
  const server = await startServer(
    {
      home_timezone: "Europe/Paris",
      weather_latitude: "48.86",
      weather_longitude: "2.35",
      weather_url: `http://127.0.0.1:${openMeteo.port}/v1/forecast`,
    },
    { logLevel: "warn" },
  );
  const client = await connectMqtt(server.mqttPort);
  try {
    await waitFor(() => server.store.weather.state() !== null, 10_000, "the outdoor weather");
    const now = Date.now();
    const day = 86_400_000;
    const step = 300_000;
    for (const [uid, label, room, floor] of DEMO) {
      await publishAcked(client, readingTopic(uid), legacyPayload(20, 50, now - day - 2 * step));
      await server.api(`/api/v1/devices/${uid}`, { method: "PUT", body: { room_name: room, label, moved_at: now - day - step } });
      const roomUid = room.toLowerCase().replace(/ /g, "-");
      await server.api(`/api/v1/rooms/${roomUid}`, {
        method: "PUT",
        body: { floor, side: room === "Bedroom" ? "north" : "south" },
      });
    }
    for (const [i, [uid, , , , t, h]] of DEMO.entries()) {
      const status = `home/home-001/sensors/${uid}/status`;
      await publishAcked(client, status, JSON.stringify({ state: "online", interval_s: 300, version: "1.0.0" }), 5000, true);
      // The office sensor stopped 17 minutes ago: late (more than 2 intervals).
      const end = uid === "aht20-c0ffee" ? now - 17 * 60_000 : now - 60_000;
      for (let ts = now - day; ts <= end; ts += step) {
        // The kitchen sensor lost power for two hours last night: a gap in its history.
        if (uid === "aht20-778899" && ts > now - 9 * 3_600_000 && ts < now - 7 * 3_600_000) continue;
        const phase = ((ts % day) / day) * 2 * Math.PI;
        const temp = t + 1.6 * Math.sin(phase - 2 + i) + 0.15 * Math.sin(ts / 700_000);
        const hum = h + 5 * Math.cos(phase + i) + 0.8 * Math.sin(ts / 900_000);
        await publishAcked(client, readingTopic(uid), legacyPayload(temp, hum, ts));
      }
    }
    // The bedroom sensor moved to the office this afternoon (a marker on both rooms' charts).
    await server.api("/api/v1/devices/aht20-aabbcc", {
      method: "PUT",
      body: { room_name: "Office", moved_at: now - 5 * 3_600_000 },
    });
    await server.api("/api/v1/devices/aht20-aabbcc", {
      method: "PUT",
      body: { room_name: "Bedroom", moved_at: now - 3 * 3_600_000 },
    });
    await publishAcked(client, readingTopic("aht20-0d0e0f"), legacyPayload(23.1, 38, now - 30_000));

    const shots: [file: string, path: string, width: number, height: number, dark: boolean][] = [
      ["dashboard.png", "/", 1100, 900, false],
      ["dashboard-phone-dark.png", "/", 390, 844, true],
      ["room.png", "/rooms/bedroom", 900, 900, false],
      ["room-phone.png", "/rooms/living-room", 360, 780, false],
      ["device.png", "/devices/aht20-778899", 900, 900, false],
      ["compare-dark.png", "/compare?rooms=living-room,kitchen,bedroom,office", 1000, 700, true],
    ];
    for (const [file, path, width, height, dark] of shots) {
      const phone = width < 500;
      const { page, close } = await openPage(browser, {
        server,
        width,
        height,
        touch: phone,
        timezoneId: "Europe/Paris",
        locale: "en-GB",
      });
      await page.emulateMedia({ colorScheme: dark ? "dark" : "light" });
      await page.goto(server.url + path);
      if (path !== "/") await page.waitForSelector("#chart[data-ready=drawn]");
      await page.screenshot({ path: join(docs, file), fullPage: !phone });
      await close();
      console.log(`wrote docs/${file}`);
    }
  } finally {
    await endMqtt(client);
    await server.stop();
    openMeteo.stop(true);
  }
}

/** A local stand-in for Open-Meteo's forecast API: the last two days and today, hour by hour, cool nights and mild afternoons. */
function outdoorStandIn() {
  const hour = 3_600_000;
  return Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch() {
      const start = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 2 * 86_400_000;
      const time: number[] = [];
      for (let ts = start; ts < start + 3 * 86_400_000; ts += hour) time.push(ts / 1000);
      const phase = (s: number) => ((s * 1000) % 86_400_000) / 86_400_000;
      return Response.json({
        hourly_units: { time: "unixtime", temperature_2m: "°C", relative_humidity_2m: "%" },
        hourly: {
          time,
          temperature_2m: time.map((s) => Math.round((9 + 4 * Math.sin(2 * Math.PI * (phase(s) - 0.375))) * 10) / 10),
          relative_humidity_2m: time.map((s) => Math.round(75 - 15 * Math.sin(2 * Math.PI * (phase(s) - 0.375)))),
        },
      });
    },
  });
}

const ICONS_ONLY = commandLine(
  "bun bench/screenshots.ts [--icons]",
  (args) => parseCommandLine(args, { icons: { type: "boolean" } }).values.icons === true,
);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
try {
  await renderIcons(browser);
  if (!ICONS_ONLY) {
    await takeScreenshots(browser, join(root, "docs"));
  }
} finally {
  await browser.close();
}
