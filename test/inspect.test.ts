// `bun server.ts inspect` on a live server's database.

import { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { join } from "node:path";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  run,
  startServer,
  tempDir,
  type TestServer,
} from "./helpers.ts";

let server: TestServer;
const T0 = Date.parse("2026-03-01T09:00:00Z");

beforeEach(async () => {
  server = await startServer();
  await server.api("/api/v1/devices", { body: { device_uid: "aht20-insp01", room_name: "Kitchen", label: "by the window" } });
  await server.api("/api/v1/devices/aht20-insp01", { method: "PUT", body: { room_name: "Bedroom" } });
  const client = await connectMqtt(server.mqttPort);
  for (let i = 0; i < 15; i++)
    await publishAcked(client, readingTopic("aht20-insp01"), legacyPayload(20 + i / 10, 45, T0 + i * 60_000));
  await publishAcked(client, readingTopic("aht20-insp02"), legacyPayload(19, 55, T0)); // unplaced
  await endMqtt(client);
});
afterEach(async () => {
  await server.stop();
});

const inspect = (...args: string[]) =>
  run(["bun", "server.ts", "inspect", ...args], { env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: server.dataDir } });

test("inspect shows counts, rooms, devices, placements, the last readings and the checks of a live database", async () => {
  const r = await inspect("--last", "3");
  expect(r.code).toBe(0);
  const out = r.stdout;
  expect(out).toMatch(/rooms\s+2/);
  expect(out).toMatch(/devices\s+2/);
  expect(out).toMatch(/placements\s+2 \(1 active\)/);
  expect(out).toMatch(/readings\s+16/);
  expect(out).toMatch(/aht20-insp01\s+by the window\s+bedroom/);
  expect(out).toMatch(/aht20-insp02\s+-\s+\(unplaced\)/);
  expect(out).toMatch(/aht20-insp01\s+kitchen\s+\S+\s+\S+\s+CLOSED/);
  expect(out).toMatch(/aht20-insp01\s+bedroom\s+\S+\s+-\s+ACTIVE/);
  expect(out).toContain("Last 3 readings");
  expect(out).toContain("21.40 °C");
  expect(out).toMatch(/ok\s+foreign keys/);
  expect(out).toMatch(/WARN\s+devices with no open placement \(unplaced\): aht20-insp02/);
  // The server was not disturbed: it still stores readings.
  const client = await connectMqtt(server.mqttPort);
  await publishAcked(client, readingTopic("aht20-insp01"), legacyPayload(22, 45, T0 + 3600_000));
  await endMqtt(client);
});

test("inspect --device shows one device's placement history", async () => {
  const r = await inspect("--device", "aht20-insp01");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('Device aht20-insp01 "by the window"');
  expect(r.stdout).toMatch(/readings\s+15/);
  expect(r.stdout).toMatch(/kitchen\s+Kitchen\s+\S+\s+\S+\s+CLOSED/);
  expect(r.stdout).toMatch(/bedroom\s+Bedroom\s+\S+\s+-\s+ACTIVE/);
});

test("inspect reports a device with several open placements as a failed check (exit 1)", async () => {
  // Break the database the way an old bug or a hand edit could.
  const db = new Database(join(server.dataDir, "techtemp.db"));
  db.exec("DROP INDEX placements_one_open");
  db.exec(
    "INSERT INTO placements (device_id, room_id, from_ts) SELECT id, (SELECT id FROM rooms WHERE uid = 'kitchen'), 0 FROM devices WHERE uid = 'aht20-insp01'",
  );
  db.close();
  const r = await inspect();
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/FAIL\s+devices with several open placements: aht20-insp01 \(2\)/);
});

test("inspect refuses bad arguments and a missing database with a message", async () => {
  const bad = await inspect("--frobnicate");
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('unknown or incomplete argument "--frobnicate"');
  const noDevice = await inspect("--device", "nobody");
  expect(noDevice.code).toBe(1);
  expect(noDevice.stderr).toContain('no device "nobody"');
  const empty = tempDir();
  try {
    const none = await run(["bun", "server.ts", "inspect"], {
      env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: empty.path },
    });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no database at");
  } finally {
    empty.cleanup();
  }
});
