// Upgrading must not cut off working sensors. A database of the previous
// version (schema 2: the migrations that shipped before accounts, which are
// never edited) with devices, placements and readings is opened by this
// server: every existing anonymous sensor keeps storing readings, and only
// readings, while `accept_anonymous_sensors` is on, which the upgrade turned
// on. A new install refuses the same clients. An earlier agent given its
// credentials in two lines of device.conf publishes as itself.

import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { DB_FILE } from "../lib/server/store/db.ts";
import { migrations } from "../lib/server/store/migrations.ts";
import {
  connectMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  run,
  startServer,
  tempDir,
  waitFor,
  withTimeout,
  type TestServer,
} from "./helpers.ts";
import { agentEnv, sensorLogin, spawnAgent, storedTs } from "./sensor-helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** The sensors of the earlier install, each with a placement and a reading. */
const OLD = ["aht20-b827eb111111", "aht20-b827eb222222", "aht20-b827eb333333"];
const T0 = Date.parse("2026-06-01T00:00:00Z");

/**
 * A database as the previous version left it: only its two migrations
 * (user_version 2), rows written with its SQL (values in hundredths).
 */
function previousVersionDatabase(dir: string): void {
  const db = new Database(join(dir, DB_FILE), { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  for (const [i, step] of migrations.slice(0, 2).entries()) {
    db.transaction(() => {
      step(db);
      db.exec(`PRAGMA user_version = ${i + 1}`);
    })();
  }
  db.run("INSERT INTO rooms (uid, name, created_at) VALUES ('salon', 'Salon', ?)", [T0]);
  for (const [i, uid] of OLD.entries()) {
    const id = db
      .query<{ id: number }, [string, number]>(
        "INSERT INTO devices (uid, home_id, created_at) VALUES (?, 'home-001', ?) RETURNING id",
      )
      .get(uid, T0)!.id;
    db.run("INSERT INTO placements (device_id, room_id, from_ts) VALUES (?, 1, ?)", [id, T0]);
    db.run("INSERT INTO readings (device_id, ts, t, h) VALUES (?, ?, ?, ?)", [id, T0 + i, 2000 + i, 4000]);
  }
  expect((db.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(2);
  db.close();
}

async function upgradedServer(): Promise<TestServer> {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  previousVersionDatabase(dir.path);
  const server = await startServer({}, { dataDir: dir.path });
  cleanups.push(() => server.stop({ keepData: true }));
  return server;
}

/** An anonymous client, as an earlier sensor connects (no username, no password). */
async function anonymous(server: TestServer, clientId: string): Promise<MqttClient> {
  const c = await connectMqtt(server.mqttPort, { username: undefined, password: undefined, clientId });
  cleanups.push(() => void c.end(true));
  return c;
}

const mosquittoPub = (port: number, uid: string, payload: string) =>
  run([
    "mosquitto_pub",
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-i",
    `techtemp-${uid}`,
    "-q",
    "1",
    "-t",
    readingTopic(uid),
    "-m",
    payload,
    "-d",
  ]);

describe("an install upgraded from the previous version", () => {
  test("turns accept_anonymous_sensors on, and every existing anonymous sensor keeps storing readings", async () => {
    const server = await upgradedServer();
    expect(server.store.auth.settings.get("accept_anonymous_sensors")).toBe("1");
    for (const [i, uid] of OLD.entries()) {
      // The earlier C agent's way: anonymous, its client id, QoS 1, the earlier payload.
      const pub = await mosquittoPub(server.mqttPort, uid, legacyPayload(21 + i, 50, T0 + 3_600_000));
      expect(pub.stdout).toContain("received PUBACK");
      expect(pub.code).toBe(0);
      expect(await storedTs(server, uid)).toEqual([T0 + i, T0 + 3_600_000]);
    }
    // Kept in their rooms, with the history they had.
    const devices = (await server.api("/api/v1/devices")).body.data;
    expect(devices.map((d: any) => [d.uid, d.room?.uid])).toEqual(OLD.map((uid) => [uid, "salon"]));
    // A sensor of the earlier kind added later registers as before (unplaced).
    const added = await mosquittoPub(server.mqttPort, "aht20-b827eb444444", legacyPayload(19, 45, T0));
    expect(added.code).toBe(0);
    expect((await server.api("/api/v1/devices/aht20-b827eb444444")).body.data.room).toBeNull();
  });

  test("an anonymous sensor publishes readings and nothing else: no status, no config, no subscription, not as an enrolled device", async () => {
    const server = await upgradedServer();
    const enrolled = "aht20-b827eb222222";
    sensorLogin(server, enrolled); // this one got credentials since
    const a = await anonymous(server, "techtemp-aht20-b827eb111111");
    await publishAcked(a, readingTopic(OLD[0]!), legacyPayload(21, 50, T0 + 60_000));

    const refused = async (topic: string, payload: string) => {
      const c = await anonymous(server, `anon-${topic.length}-${payload.length}`);
      const closed = new Promise((resolve) => c.once("close", () => resolve(null)));
      c.publish(topic, payload, { qos: 1 });
      await withTimeout(closed, 5000, `the connection of a refused publish to ${topic}`);
    };
    await refused("home/home-001/sensors/aht20-b827eb111111/status", '{"state":"offline"}');
    await refused("home/home-001/sensors/aht20-b827eb111111/config", '{"interval_s":2,"temperature_offset":20}');
    await refused(readingTopic(enrolled), legacyPayload(99, 99, T0 + 60_000));
    await refused("somewhere/else", "x");

    const sub = await new Promise<number>((resolve) =>
      a.subscribe("home/#", { qos: 1 }, (err) =>
        resolve((err as { packet?: { granted?: number[] } })?.packet?.granted?.[0] ?? 0),
      ),
    );
    expect(sub).toBe(128);
    expect(await storedTs(server, OLD[0]!)).toEqual([T0, T0 + 60_000]);
    expect(await storedTs(server, enrolled)).toEqual([T0 + 1]);
    expect((await server.api(`/api/v1/devices/${OLD[0]}`)).body.data.state).toBeNull();
    expect(server.logs.some((l) => l.includes("refused publish") && l.includes(`has its own MQTT secret`))).toBe(true);
  });

  test("turning accept_anonymous_sensors off refuses anonymous sensors and ends their connections", async () => {
    const server = await upgradedServer();
    const a = await anonymous(server, "techtemp-aht20-b827eb111111");
    server.store.auth.settings.set("accept_anonymous_sensors", "0");
    expect(server.broker.recheck()).toBe(1);
    await waitFor(() => !a.connected, 5000, "the anonymous connection closed");
    const pub = await mosquittoPub(server.mqttPort, OLD[0]!, legacyPayload(21, 50, T0 + 60_000));
    expect(pub.code).not.toBe(0);
    expect(pub.stderr.toLowerCase()).toContain("not authori");
    expect(await storedTs(server, OLD[0]!)).toEqual([T0]);
  });

  test("an earlier agent given username and password in device.conf publishes as itself", async () => {
    const server = await upgradedServer();
    const uid = OLD[2]!;
    const login = sensorLogin(server, uid); // what `techtemp-server device-password UID` prints
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const conf = join(dir.path, "device.conf");
    writeFileSync(conf, `[device]\ndevice_uid = ${uid}\n[mqtt]\nusername = ${uid}\npassword = ${login.TECHTEMP_MQTT_PASSWORD}\n`);
    const agent = spawnAgent(agentEnv(server.mqttPort, join(dir.path, "data"), uid), { args: [conf] });
    cleanups.push(async () => void (await agent.kill()));
    await waitFor(async () => (await storedTs(server, uid)).length >= 3, 20_000, "the agent's readings");
    expect(server.logs.some((l) => l.includes("client authenticated") && l.includes(`as="device ${uid}"`))).toBe(true);
  }, 40_000);
});

test("a new install refuses the same anonymous sensors", async () => {
  const server = await startServer();
  cleanups.push(() => server.stop());
  expect(server.store.auth.settings.get("accept_anonymous_sensors")).toBe("0");
  const pub = await mosquittoPub(server.mqttPort, OLD[0]!, legacyPayload(21, 50, T0));
  expect(pub.code).not.toBe(0);
  expect(pub.stderr.toLowerCase()).toContain("not authori");
  expect((await server.api("/api/v1/devices")).body.data).toEqual([]);
});
