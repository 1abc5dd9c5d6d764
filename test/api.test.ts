// The HTTP API v1 against a real server fed through its real broker: the
// earlier server's shapes, rooms and placements, history that follows
// placements, and a 400 that names the field for every bad input.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectMqtt, endMqtt, legacyPayload, publishAcked, readingTopic, startServer, type TestServer } from "./helpers.ts";

const H = 3_600_000;
const T0 = Date.parse("2026-03-01T09:00:00Z");
let server: TestServer;

/** Publishes readings [ts, temperature, humidity] for a device through the broker. */
async function seed(uid: string, readings: [number, number, number][]) {
  const client = await connectMqtt(server.mqttPort);
  for (const [ts, t, h] of readings) await publishAcked(client, readingTopic(uid), legacyPayload(t, h, ts));
  await endMqtt(client);
}

const api = (path: string, init?: { method?: string; body?: unknown }) => server.api(path, init);

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

describe("devices", () => {
  test("POST registers a device in a room created from its name, with the earlier response", async () => {
    const res = await api("/api/v1/devices", {
      body: { device_uid: "aht20-dev001", room_name: "Salle à manger", label: "buffet" },
    });
    expect(res.status).toBe(201);
    expect(res.body.message).toBe("Device provisioned successfully");
    expect(res.body.data.room).toEqual({ uid: "salle-a-manger", name: "Salle à manger" });
    expect(res.body.data.device).toMatchObject({
      uid: "aht20-dev001",
      label: "buffet",
      room: { uid: "salle-a-manger", name: "Salle à manger" },
      last_seen_at: null,
    });
    expect(res.body.data.device.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  test("POST for a device already in a room is a 409 naming it", async () => {
    await api("/api/v1/devices", { body: { device_uid: "aht20-dev002", room_name: "Office" } });
    const res = await api("/api/v1/devices", { body: { device_uid: "aht20-dev002", room_name: "Office" } });
    expect(res).toEqual({ status: 409, body: { error: "Device already exists", device_uid: "aht20-dev002" } });
  });

  test("POST places a device that registered itself by publishing (unplaced)", async () => {
    await seed("aht20-dev003", [[T0, 20, 50]]);
    expect((await api("/api/v1/devices/aht20-dev003")).body.data.room).toBeNull();
    const res = await api("/api/v1/devices", { body: { device_uid: "aht20-dev003", room_name: "Attic" } });
    expect(res.status).toBe(201);
    expect(res.body.data.device.room).toEqual({ uid: "attic", name: "Attic" });
  });

  test("GET /devices lists every device with the earlier fields first", async () => {
    const res = await api("/api/v1/devices");
    expect(res.status).toBe(200);
    const d = res.body.data.find((x: { uid: string }) => x.uid === "aht20-dev001");
    expect(Object.keys(d).slice(0, 5)).toEqual(["uid", "room", "label", "created_at", "last_seen_at"]);
  });

  test("an unknown device is a 404 on every device route", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/devices/nope"],
      ["PUT", "/api/v1/devices/nope"],
      ["DELETE", "/api/v1/devices/nope"],
      ["GET", "/api/v1/devices/nope/readings"],
      ["GET", "/api/v1/devices/nope/placements"],
      ["GET", "/api/v1/devices/nope/history"],
    ]) {
      const res = await api(path!, { method, body: method === "PUT" ? { label: "x" } : undefined });
      expect(res).toEqual({ status: 404, body: { error: 'device "nope" not found' } });
    }
  });

  const badPosts: [string, unknown, string][] = [
    ["no device_uid", { room_name: "Hall" }, "device_uid"],
    ["a device_uid with a space", { device_uid: "bad uid", room_name: "Hall" }, "device_uid"],
    ["no room_name", { device_uid: "aht20-x1" }, "room_name"],
    ["a room_name that is not text", { device_uid: "aht20-x1", room_name: 12 }, "room_name"],
    ["a room_name without letters or digits", { device_uid: "aht20-x1", room_name: "!!!" }, "room_name"],
    ["a label that is too long", { device_uid: "aht20-x1", room_name: "Hall", label: "x".repeat(101) }, "label"],
    ["invalid JSON", "{nope", "body"],
  ];
  for (const [name, body, field] of badPosts) {
    test(`POST with ${name} is a 400 naming ${field}, and stores nothing`, async () => {
      const before = (await api("/api/v1/devices")).body.data.length;
      const res = await api("/api/v1/devices", { body });
      expect(res.status).toBe(400);
      expect(res.body.error).toStartWith(field);
      expect((await api("/api/v1/devices")).body.data.length).toBe(before);
    });
  }

  test("DELETE removes the device with its placements and readings", async () => {
    await seed("aht20-gone01", [[T0, 20, 50]]);
    const res = await api("/api/v1/devices/aht20-gone01", { method: "DELETE" });
    expect(res).toEqual({ status: 200, body: { message: "Device deleted successfully", uid: "aht20-gone01" } });
    expect((await api("/api/v1/devices/aht20-gone01")).status).toBe(404);
    expect((await api("/api/v1/readings/latest?deviceId=aht20-gone01")).body.data).toEqual([]);
  });
});

describe("moving devices: history follows placements", () => {
  const uid = "aht20-mover1";
  beforeAll(async () => {
    await api("/api/v1/rooms", { body: { name: "Room A" } });
    await api("/api/v1/rooms", { body: { name: "Room B" } });
    await seed(uid, [
      [T0 + 1 * H, 20, 40], // 10:00
      [T0 + 2 * H, 21, 41], // 11:00
      [T0 + 3.5 * H, 22, 42], // 12:30
      [T0 + 4 * H, 23, 43], // 13:00
    ]);
    await api(`/api/v1/devices/${uid}`, { method: "PUT", body: { room_uid: "room-a", moved_at: new Date(T0).toISOString() } });
  });

  test("a device moved at 12:00 contributes to room A before and room B after", async () => {
    const put = await api(`/api/v1/devices/${uid}`, {
      method: "PUT",
      body: { room_name: "Room B", moved_at: "2026-03-01T12:00:00Z" },
    });
    expect(put.status).toBe(200);
    expect(put.body.message).toBe("Device updated successfully");
    expect(put.body.data.room).toEqual({ uid: "room-b", name: "Room B" });
    const a = (await api("/api/v1/rooms/room-a/readings")).body.data;
    const b = (await api("/api/v1/rooms/room-b/readings")).body.data;
    expect(a.map((r: { ts: string }) => r.ts)).toEqual(["2026-03-01T11:00:00.000Z", "2026-03-01T10:00:00.000Z"]);
    expect(b.map((r: { ts: string }) => r.ts)).toEqual(["2026-03-01T13:00:00.000Z", "2026-03-01T12:30:00.000Z"]);
    expect(b[0]).toEqual({ device_id: uid, ts: "2026-03-01T13:00:00.000Z", temperature: 23, humidity: 43, source: "mqtt" });

    const placements = (await api(`/api/v1/devices/${uid}/placements`)).body.data;
    expect(placements).toEqual([
      {
        device_uid: uid,
        room: { uid: "room-a", name: "Room A" },
        from_ts: "2026-03-01T09:00:00.000Z",
        to_ts: "2026-03-01T12:00:00.000Z",
        state: "closed",
      },
      {
        device_uid: uid,
        room: { uid: "room-b", name: "Room B" },
        from_ts: "2026-03-01T12:00:00.000Z",
        to_ts: null,
        state: "active",
      },
    ]);
    expect((await api("/api/v1/rooms/room-a/placements")).body.data).toHaveLength(1);
    // The latest reading belongs to the room the device was in when it was taken.
    expect(
      (await api(`/api/v1/readings/latest?roomId=room-b`)).body.data.map((r: { device_id: string }) => r.device_id),
    ).toContain(uid);
    // A room's aggregated history follows placements too.
    const hourly = (await api("/api/v1/rooms/room-a/readings?bucket=hour")).body.data;
    expect(hourly.map((r: { ts: string }) => r.ts)).toEqual(["2026-03-01T11:00:00.000Z", "2026-03-01T10:00:00.000Z"]);
  });

  test("moving to the room a device is already in changes nothing", async () => {
    const before = (await api(`/api/v1/devices/${uid}/placements`)).body.data;
    await api(`/api/v1/devices/${uid}`, { method: "PUT", body: { room_uid: "room-b" } });
    expect((await api(`/api/v1/devices/${uid}/placements`)).body.data).toEqual(before);
  });

  const badMoves: [string, unknown, string][] = [
    ["moved_at before the current placement began", { room_uid: "room-a", moved_at: "2026-03-01T11:00:00Z" }, "moved_at"],
    ["moved_at in the future", { room_uid: "room-a", moved_at: new Date(Date.now() + 86_400_000).toISOString() }, "moved_at"],
    ["moved_at that is not a time", { room_uid: "room-a", moved_at: "next tuesday" }, "moved_at"],
    ["moved_at without a room", { moved_at: "2026-03-01T13:00:00Z" }, "moved_at"],
    ["a room_uid that does not exist", { room_uid: "cellar" }, "room"],
    ["a label that is not text", { label: 5 }, "label"],
  ];
  for (const [name, body, field] of badMoves) {
    test(`PUT with ${name} is refused naming ${field} and changes nothing`, async () => {
      const before = (await api(`/api/v1/devices/${uid}/placements`)).body.data;
      const res = await api(`/api/v1/devices/${uid}`, { method: "PUT", body });
      expect(res.status).toBe(name.includes("does not exist") ? 404 : 400);
      expect(res.body.error).toContain(field);
      expect((await api(`/api/v1/devices/${uid}/placements`)).body.data).toEqual(before);
    });
  }

  test("room_uid null takes a device out of its room", async () => {
    await seed("aht20-unplc1", [[T0, 20, 40]]);
    await api("/api/v1/devices/aht20-unplc1", { method: "PUT", body: { room_uid: "room-a", moved_at: T0 - H } });
    const res = await api("/api/v1/devices/aht20-unplc1", { method: "PUT", body: { room_uid: null } });
    expect(res.body.data.room).toBeNull();
    expect((await api("/api/v1/devices/aht20-unplc1/placements")).body.data[0].state).toBe("closed");
  });
});

describe("rooms", () => {
  test("create, rename with floor and side, list, delete", async () => {
    const created = await api("/api/v1/rooms", { body: { name: "Chambre d'amis", floor: "1" } });
    expect(created).toEqual({
      status: 201,
      body: { data: { uid: "chambre-d-amis", name: "Chambre d'amis", floor: "1", side: null }, message: "Room created" },
    });
    const renamed = await api("/api/v1/rooms/chambre-d-amis", { method: "PUT", body: { name: "Guest room", side: "north" } });
    expect(renamed.body.data).toEqual({ uid: "chambre-d-amis", name: "Guest room", floor: "1", side: "north" });
    const list = (await api("/api/v1/rooms")).body.data;
    expect(list).toContainEqual({ uid: "chambre-d-amis", name: "Guest room", floor: "1", side: "north" });
    expect((await api("/api/v1/rooms/chambre-d-amis", { method: "DELETE" })).body).toEqual({
      message: "Room deleted",
      uid: "chambre-d-amis",
    });
    expect((await api("/api/v1/rooms/chambre-d-amis")).status).toBe(404);
  });

  test("a room with a device in it cannot be deleted", async () => {
    await api("/api/v1/devices", { body: { device_uid: "aht20-keeper", room_name: "Pantry" } });
    const res = await api("/api/v1/rooms/pantry", { method: "DELETE" });
    expect(res.status).toBe(409);
    expect(res.body.error).toContain("still has 1 device");
    expect((await api("/api/v1/rooms/pantry")).body.data.devices).toEqual([{ uid: "aht20-keeper", label: null }]);
  });

  test("bad room input is refused naming the field", async () => {
    expect((await api("/api/v1/rooms", { body: { name: "" } })).body.error).toStartWith("name");
    expect((await api("/api/v1/rooms", { body: { name: "X", uid: "no spaces allowed" } })).body.error).toStartWith("uid");
    expect((await api("/api/v1/rooms", { body: { name: "Pantry" } })).status).toBe(409);
    expect((await api("/api/v1/rooms/pantry", { method: "PUT", body: { floor: 3 } })).body.error).toStartWith("floor");
  });
});

describe("readings", () => {
  const uid = "aht20-series";
  beforeAll(async () => {
    // 3 days of hourly readings; one hot spike.
    const rows: [number, number, number][] = [];
    for (let i = 0; i < 72; i++) rows.push([T0 + i * H, i === 30 ? 35 : 20 + (i % 3), 50]);
    await seed(uid, rows);
  });

  test("the device's readings come newest first, 10 by default, with the earlier fields", async () => {
    const data = (await api(`/api/v1/devices/${uid}/readings`)).body.data;
    expect(data).toHaveLength(10);
    expect(data[0]).toEqual({
      ts: new Date(T0 + 71 * H).toISOString(),
      temperature: 20 + (71 % 3),
      humidity: 50,
      source: "mqtt",
    });
    expect(Date.parse(data[0].ts)).toBeGreaterThan(Date.parse(data[9].ts));
  });

  test("from and to are inclusive and accept ISO-8601 or epoch milliseconds", async () => {
    const iso = await api(`/api/v1/devices/${uid}/readings?from=2026-03-01T10:00:00Z&to=2026-03-01T12:00:00Z&limit=100`);
    const ms = await api(`/api/v1/devices/${uid}/readings?from=${T0 + H}&to=${T0 + 3 * H}&limit=100`);
    expect(iso.body.data).toHaveLength(3);
    expect(ms.body.data).toEqual(iso.body.data);
  });

  test("daily buckets carry mean, min and max, and keep the spike", async () => {
    const data = (await api(`/api/v1/devices/${uid}/readings?bucket=day&limit=100`)).body.data;
    expect(data.map((d: { ts: string }) => d.ts)).toEqual([
      "2026-03-04T00:00:00.000Z",
      "2026-03-03T00:00:00.000Z",
      "2026-03-02T00:00:00.000Z",
      "2026-03-01T00:00:00.000Z",
    ]);
    const day2 = data[2];
    expect(day2.temperature_max).toBe(35);
    expect(day2.temperature_min).toBe(20);
    expect(Object.keys(day2).sort()).toEqual([
      "count",
      "humidity",
      "humidity_max",
      "humidity_min",
      "temperature",
      "temperature_max",
      "temperature_min",
      "ts",
    ]);
  });

  test("the chart history comes oldest first with its tier", async () => {
    const res = await api(`/api/v1/devices/${uid}/history?from=${T0}&to=${T0 + 72 * H}&bucket=raw`);
    expect(res.body.data.bucket).toBe("raw");
    expect(res.body.data.points).toHaveLength(72);
    expect(Date.parse(res.body.data.points[0].ts)).toBe(T0);
    const hourly = await api(`/api/v1/devices/${uid}/history?from=${T0}&to=${T0 + 72 * H}&bucket=hour`);
    expect(hourly.body.data.bucket).toBe("hour");
  });

  const badQueries: [string, string][] = [
    ["limit=0", "limit"],
    ["limit=10001", "limit"],
    ["limit=abc", "limit"],
    ["limit=-5", "limit"],
    ["from=yesterday", "from"],
    ["to=2026-13-45T99:00:00Z", "to"],
    ["from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "from"],
    ["bucket=week", "bucket"],
  ];
  for (const [query, field] of badQueries) {
    test(`?${query} is a 400 that names ${field}`, async () => {
      const paths = [`/api/v1/devices/${uid}/readings`, "/api/v1/rooms/room-a/readings"];
      if (field !== "limit") paths.push(`/api/v1/devices/${uid}/history`, "/api/v1/rooms/room-a/history");
      for (const path of paths) {
        const res = await api(`${path}?${query}`);
        expect(res.status).toBe(400);
        expect(res.body.error).toStartWith(`${field}:`);
      }
    });
  }

  test("a bad query parameter's message says what to fix; an unknown device is still a 404 first", async () => {
    const cases: [string, string][] = [
      ["limit=abc", 'limit: "abc" is not a whole number (1-10000)'],
      ["limit=0", "limit: 0 is outside 1-10000"],
      ["from=yesterday", 'from: "yesterday" is not a time; use ISO-8601 (2026-11-28T12:00:00Z) or epoch milliseconds'],
      [
        "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
        "from: 2026-03-02T00:00:00.000Z is after to (2026-03-01T00:00:00.000Z)",
      ],
      ["bucket=week", 'bucket: "week" is not one of raw, hour, day'],
    ];
    for (const [query, message] of cases) {
      expect(await api(`/api/v1/devices/${uid}/readings?${query}`)).toEqual({ status: 400, body: { error: message } });
    }
    expect(await api("/api/v1/devices/nobody/readings?limit=abc")).toEqual({
      status: 404,
      body: { error: 'device "nobody" not found' },
    });
    expect((await api("/api/v1/rooms/nowhere/stats?period=year")).status).toBe(404);
  });

  test("?points out of range is a 400 that names points", async () => {
    expect((await api(`/api/v1/rooms/room-a/history?points=1`)).body.error).toStartWith("points:");
  });

  test("/readings/latest returns one reading per device; an unknown device gives an empty list", async () => {
    const all = (await api("/api/v1/readings/latest")).body.data;
    expect(all.find((r: { device_id: string }) => r.device_id === uid)).toEqual({
      device_id: uid,
      room_id: null,
      ts: new Date(T0 + 71 * H).toISOString(),
      temperature: 22,
      humidity: 50,
    });
    expect(new Set(all.map((r: { device_id: string }) => r.device_id)).size).toBe(all.length);
    expect((await api("/api/v1/readings/latest?deviceId=nobody")).body).toEqual({ data: [] });
  });
});

describe("the server around the API", () => {
  test("/health is ok", async () => {
    expect(await api("/health")).toEqual({ status: 200, body: { status: "ok" } });
  });

  test("reads allow any origin (dashboards and Grafana call from elsewhere), writes only the configured ones; OPTIONS answers 204", async () => {
    const res = await server.fetch("/api/v1/rooms", { as: "token" });
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const pre = await fetch(`${server.url}/api/v1/devices`, { method: "OPTIONS" });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-methods")).toContain("GET");
    expect(pre.headers.get("access-control-allow-headers")).toContain("Authorization");
    const err = await server.fetch("/api/v1/devices/nope", { as: "token" });
    expect(err.headers.get("access-control-allow-origin")).toBe("*");
    // A write is offered to no other origin unless it is configured (cors_origins), and then with a token, never a cookie.
    const write = { method: "OPTIONS", headers: { origin: "http://grafana.lan", "access-control-request-method": "PUT" } };
    const refused = await fetch(`${server.url}/api/v1/devices`, write);
    expect(refused.status).toBe(204);
    expect(refused.headers.get("access-control-allow-methods")).not.toContain("PUT");
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    const configured = await startServer({ cors_origins: "http://grafana.lan" });
    try {
      const allowed = await fetch(`${configured.url}/api/v1/devices`, write);
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get("access-control-allow-methods")).toContain("PUT");
      expect(allowed.headers.get("access-control-allow-origin")).toBe("http://grafana.lan");
      expect(allowed.headers.get("access-control-allow-credentials")).toBeNull();
    } finally {
      await configured.stop();
    }
  });

  test("an unknown route is a JSON 404", async () => {
    expect(await api("/api/v1/nothing-here")).toEqual({ status: 404, body: { error: "no route GET /api/v1/nothing-here" } });
  });

  test("/api/v1/stats reports broker and ingestion counters", async () => {
    const stats = (await api("/api/v1/stats")).body.data;
    expect(stats.broker.readingsAccepted).toBeGreaterThan(70);
    expect(stats.ingest.committed).toBe(stats.broker.readingsAccepted);
  });
});
