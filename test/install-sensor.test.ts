// install.sh sensor into temp trees (`--root`) with the stand-ins of
// test/fixtures/install/bin, against a real server: device.conf in the earlier
// format, the device placed in its room, and with `--start` the agent's first
// reading stored by the server.

import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, type TestServer } from "./helpers.ts";
import { passwdEntry, REPO } from "./fixtures/install/harness.ts";
import { installWorld, mode } from "./fixtures/install/world.ts";

const { newRoot } = installWorld();

/** install.sh's API calls with the server's write token (its owner account exists, so the API wants one). */
const asOwner = (server: TestServer) => ({ env: { TECHTEMP_API_TOKEN: server.token } });

describe("sensor role", () => {
  test("installs into a --root tree: user in group i2c, device.conf in the earlier format, device placed in its room", async () => {
    const server = await startServer();
    try {
      const root = newRoot();
      const r = await root.install(
        [
          "sensor",
          "--server",
          "127.0.0.1",
          "--mqtt-port",
          String(server.mqttPort),
          "--http-port",
          String(server.httpPort),
          "--room",
          "Salon d'été",
          "--interval",
          "120",
          "--home",
          "maison",
          "--device-uid",
          "aht20-c0ffee",
          "--simulated",
        ],
        asOwner(server),
      );
      expect(r.output).not.toMatch(/error|warning/);
      expect(r.code).toBe(0);
      expect(passwdEntry(root.path, "group", "i2c")![3]!.split(",")).toEqual(["pi", "techtemp"]);
      const conf = readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8");
      for (const line of [
        "device_uid = aht20-c0ffee",
        "home_id = maison",
        "read_interval_seconds = 120",
        "driver = sim",
        "broker_host = 127.0.0.1",
        `broker_port = ${server.mqttPort}`,
      ]) {
        expect(conf.split("\n")).toContain(line);
      }
      expect(conf).toMatch(/^\[device\][^[]*device_uid = aht20-c0ffee/m);
      expect(mode(join(root.path, "etc/techtemp/device.conf"))).toBe("640");
      expect(readFileSync(join(root.path, "etc/systemd/system/techtemp-sensor.service"), "utf8")).toBe(
        readFileSync(join(REPO, "systemd/techtemp-sensor.service"), "utf8"),
      );
      expect(readlinkSync(join(root.path, "etc/systemd/system/multi-user.target.wants/techtemp-sensor.service"))).toBe(
        "/etc/systemd/system/techtemp-sensor.service",
      );
      const device = await server.api("/api/v1/devices/aht20-c0ffee");
      expect(device.body.data.room).toEqual({ uid: "salon-d-ete", name: "Salon d'été" });
      expect(r.stdout).toContain("device     aht20-c0ffee");
      expect(r.stdout).toContain("room       Salon d'été");

      // Run again with another room: the device moves, no file changes but install.conf's room.
      const again = await root.install(["sensor", "--room", "Cuisine"], asOwner(server));
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("moved aht20-c0ffee to room 'Cuisine'");
      expect((await server.api("/api/v1/devices/aht20-c0ffee")).body.data.room.name).toBe("Cuisine");
      expect(readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8")).toBe(conf);
    } finally {
      await server.stop();
    }
  }, 120_000);

  test("a live install waits for the first reading stored by the server, and a second run changes nothing", async () => {
    const server = await startServer();
    const root = newRoot();
    try {
      // The test machine's clock may not report NTP sync: trust it (a key install.sh keeps).
      mkdirSync(join(root.path, "etc/techtemp"), { recursive: true });
      writeFileSync(join(root.path, "etc/techtemp/device.conf"), "[clock]\nsync_wait_seconds = 0\n");
      const args = [
        "sensor",
        "--server",
        "127.0.0.1",
        "--mqtt-port",
        String(server.mqttPort),
        "--http-port",
        String(server.httpPort),
        "--room",
        "Bureau",
        "--device-uid",
        "aht20-5e5e5e",
        "--simulated",
        "--start",
        "--wait",
        "60",
      ];
      const r = await root.install(args, { timeoutMs: 90_000, ...asOwner(server) });
      expect(r.output).toContain("techtemp-sensor.service is healthy");
      expect(r.code).toBe(0);
      const latest = await server.api("/api/v1/readings/latest?deviceId=aht20-5e5e5e");
      expect(latest.body.data).toHaveLength(1);
      expect(latest.body.data[0].room_id).toBe("bureau");
      expect(readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8")).toStartWith("[clock]\nsync_wait_seconds = 0\n");

      const callsBefore = root.calls().length;
      const again = await root.install(args, { timeoutMs: 90_000, ...asOwner(server) });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("no change: TechTemp");
      expect(
        root
          .calls()
          .slice(callsBefore)
          .filter((c) => /restart|start|stop|useradd|daemon-reload/.test(c)),
      ).toEqual([]);
    } finally {
      root.cleanup();
      await server.stop();
    }
  }, 120_000);
});

test("a sensor on a system without an i2c group gets one", async () => {
  const server = await startServer();
  try {
    const root = newRoot();
    const group = join(root.path, "etc/group");
    writeFileSync(group, readFileSync(group, "utf8").replace(/^i2c:.*\n/m, ""));
    const r = await root.install([
      "sensor",
      "--server",
      "127.0.0.1",
      "--mqtt-port",
      String(server.mqttPort),
      "--simulated",
      "--device-uid",
      "aht20-9e9e9e",
    ]);
    expect(r.code).toBe(0);
    expect(root.calls()).toContain(`groupadd --root ${root.path} --system i2c`);
    expect(passwdEntry(root.path, "group", "i2c")![3]).toBe("techtemp");
  } finally {
    await server.stop();
  }
}, 120_000);
