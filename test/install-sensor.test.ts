// install.sh sensor into temp trees (`--root`) with the stand-ins of
// test/fixtures/install/bin, against a real server: enrollment with a token
// (the device's own MQTT credentials in device.conf, in the earlier format),
// the device placed in its room, and with `--start` the agent's first reading
// stored by the server. With --tls: the server's CA checked and trusted only.

import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { hashSecret, secretMatches } from "../lib/server/auth/secrets.ts";
import { defaultNames, ensureCertificates } from "../lib/server/tls/local-ca.ts";
import {
  connectMqtt,
  endMqtt,
  freePorts,
  legacyPayload,
  publishAcked,
  readingTopic,
  startServer,
  tempDir,
  waitFor,
  type TestServer,
} from "./helpers.ts";
import { enrollmentToken } from "./sensor-helpers.ts";
import { passwdEntry, REPO } from "./fixtures/install/harness.ts";
import { installWorld, mode } from "./fixtures/install/world.ts";

const { newRoot } = installWorld();

/** install.sh's API calls with the server's write token (its owner account exists, so the API wants one). */
const asOwner = (server: TestServer) => ({ env: { TECHTEMP_API_TOKEN: server.token } });
/** The password device.conf holds, and whether it is the device's secret on `server`. */
function credentials(conf: string, server: TestServer, uid: string) {
  const password = /^password = (\S+)$/m.exec(conf)?.[1] ?? "";
  const stored = server.store.auth.credentials.forDevice(uid);
  return { password, valid: stored !== null && secretMatches(password, stored.secret_hash) };
}

describe("sensor role", () => {
  test("installs into a --root tree: user in group i2c, device.conf in the earlier format, device placed in its room", async () => {
    const server = await startServer();
    try {
      const root = newRoot();
      const r = await root.install([
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
        "--enroll",
        enrollmentToken(server),
      ]);
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
        "username = aht20-c0ffee",
      ]) {
        expect(conf.split("\n")).toContain(line);
      }
      expect(conf).toMatch(/^\[device\][^[]*device_uid = aht20-c0ffee/m);
      // Its own secret, as the server stored it (hashed), in [mqtt]; never in the output or the log.
      const first = credentials(conf, server, "aht20-c0ffee");
      expect(first.valid).toBe(true);
      expect(conf).toMatch(/^\[mqtt\][^[]*password = /m);
      expect(r.output).not.toContain(first.password);
      expect(readFileSync(join(root.path, "var/log/techtemp-install.log"), "utf8")).not.toContain(first.password);
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

      // Another room without a new enrollment token: the server would not take the move; nothing changes.
      const refused = await root.install(["sensor", "--room", "Cuisine"]);
      expect(refused.code).toBe(0);
      expect(refused.output).toContain("warning: the room is set when enrolling");
      expect((await server.api("/api/v1/devices/aht20-c0ffee")).body.data.room.name).toBe("Salon d'été");
      expect(readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8")).toBe(conf);

      // Run again with another room and a new token: the device moves; device.conf changes only in its new password.
      const again = await root.install(["sensor", "--room", "Cuisine", "--enroll", enrollmentToken(server)]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(
        "enrolled aht20-c0ffee: its MQTT username and password go to /etc/techtemp/device.conf; placed in room 'Cuisine'",
      );
      expect((await server.api("/api/v1/devices/aht20-c0ffee")).body.data.room.name).toBe("Cuisine");
      const moved = readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8");
      const second = credentials(moved, server, "aht20-c0ffee");
      expect(second.valid).toBe(true);
      expect(second.password).not.toBe(first.password);
      expect(moved.replace(second.password, "SECRET")).toBe(conf.replace(first.password, "SECRET"));
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
        "--enroll",
        enrollmentToken(server),
        "--start",
        "--wait",
        "60",
      ];
      const r = await root.install(args, { timeoutMs: 90_000, ...asOwner(server) });
      expect(r.output).toContain("techtemp-sensor.service is healthy");
      expect(r.code).toBe(0);
      expect(server.logs.some((l) => l.includes("client authenticated") && l.includes('as="device aht20-5e5e5e"'))).toBe(true);
      const latest = await server.api("/api/v1/readings/latest?deviceId=aht20-5e5e5e");
      expect(latest.body.data).toHaveLength(1);
      expect(latest.body.data[0].room_id).toBe("bureau");
      expect(readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8")).toStartWith("[clock]\nsync_wait_seconds = 0\n");

      // The same command again (the same token, used up by now): nothing to do.
      const callsBefore = root.calls().length;
      const again = await root.install(args, { timeoutMs: 90_000, ...asOwner(server) });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("enrolled already with this token");
      expect(again.stdout).toContain("no change: TechTemp");
      const status = await root.install(["status", "--start"]);
      expect(status.stdout).toMatch(
        /aht20-5e5e5e: last reading stored by the server at \d{4}-.*Z; \d+ in the outbox \(acknowledged ones leave it with the next reading\)/,
      );
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

/** install.sh sensor's arguments for `uid` against `server` (plain MQTT and HTTP, a simulated AHT20). */
const base = (server: TestServer, uid: string) => [
  "sensor",
  "--server",
  "127.0.0.1",
  "--mqtt-port",
  String(server.mqttPort),
  "--http-port",
  String(server.httpPort),
  "--device-uid",
  uid,
  "--simulated",
];

describe("enrollment", () => {
  test("a token the server refuses (used up) stops the install with what to do; no credentials are written", async () => {
    const server = await startServer();
    try {
      const token = enrollmentToken(server);
      expect(server.store.auth.enrollment.use(hashSecret(token))).toBe(true); // another sensor used it
      const root = newRoot();
      const r = await root.install([...base(server, "aht20-0b0b0b"), "--enroll", token]);
      // Exit code 7: the server refused.
      expect(r.code).toBe(7);
      expect(r.output).toContain("error: the server refused the enrollment token: it is unknown, expired, used up or revoked");
      expect(r.output).toContain(
        "fix: make a new one on the server (sudo -u techtemp /opt/techtemp/techtemp-server enroll-token",
      );
      expect(existsSync(join(root.path, "etc/techtemp/device.conf"))).toBe(false);
      expect(server.store.auth.credentials.forDevice("aht20-0b0b0b")).toBeNull();
    } finally {
      await server.stop();
    }
  }, 120_000);

  test("a token that is not one is refused before anything is done", async () => {
    const root = newRoot();
    const r = await root.install(["sensor", "--server", "10.0.0.1", "--enroll", "short"]);
    expect(r.code).toBe(2);
    expect(r.output).toContain("error: --enroll needs the enrollment token the server printed");
  });

  describe("--tls", () => {
    async function tlsServer(): Promise<{ server: TestServer; fingerprint: string; ca: string; cleanup(): Promise<void> }> {
      const dir = tempDir();
      ensureCertificates(join(dir.path, "tls"), defaultNames());
      const server = await startServer({ https_port: 0, mqtts_port: 0 }, { dataDir: dir.path });
      const ca = readFileSync(join(dir.path, "tls/ca.crt"), "utf8");
      return {
        server,
        ca,
        fingerprint: new X509Certificate(ca).fingerprint256,
        async cleanup() {
          await server.stop();
          dir.cleanup();
        },
      };
    }
    const tlsArgs = (server: TestServer, uid: string) => [
      "sensor",
      "--server",
      "localhost",
      "--tls",
      "--https-port",
      String(server.httpsPort),
      "--mqtts-port",
      String(server.mqttsPort),
      "--device-uid",
      uid,
      "--simulated",
      "--room",
      "Grenier",
    ];

    test("enrolls over HTTPS after checking the server's CA against --ca-fingerprint; device.conf trusts that CA only", async () => {
      const { server, fingerprint, ca, cleanup } = await tlsServer();
      try {
        const root = newRoot();
        const r = await root.install([
          ...tlsArgs(server, "aht20-7157a1"),
          "--enroll",
          enrollmentToken(server),
          "--ca-fingerprint",
          fingerprint,
        ]);
        expect(r.output).not.toMatch(/error|warning/);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("ok  the server's CA matches --ca-fingerprint");
        expect(r.stdout).toContain(`server     mqtts://localhost:${server.mqttsPort}   https://localhost:${server.httpsPort}/`);
        const conf = readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8");
        for (const line of [
          "tls = true",
          "ca_file = /etc/techtemp/ca.crt",
          `broker_port = ${server.mqttsPort}`,
          "username = aht20-7157a1",
        ]) {
          expect(conf.split("\n")).toContain(line);
        }
        expect(credentials(conf, server, "aht20-7157a1").valid).toBe(true);
        expect(readFileSync(join(root.path, "etc/techtemp/ca.crt"), "utf8")).toBe(ca);
        expect(`${mode(join(root.path, "etc/techtemp/ca.crt"))} ${mode(join(root.path, "etc/techtemp/device.conf"))}`).toBe(
          "640 640",
        );
        expect((await server.api("/api/v1/devices/aht20-7157a1")).body.data.room.name).toBe("Grenier");
      } finally {
        await cleanup();
      }
    }, 120_000);

    test("a CA that is not the one --ca-fingerprint names: the token is never sent", async () => {
      const { server, cleanup } = await tlsServer();
      try {
        const root = newRoot();
        const token = enrollmentToken(server);
        const r = await root.install([
          ...tlsArgs(server, "aht20-7157a2"),
          "--enroll",
          token,
          "--ca-fingerprint",
          "AB:".repeat(31) + "AB",
        ]);
        expect(r.code).toBe(7);
        expect(r.output).toContain("error: the server's CA is not the one --ca-fingerprint names");
        expect(r.output).toContain("nothing was sent to it");
        // The token is still unused: it never reached the server.
        expect(server.store.auth.enrollment.live()[0]!.uses).toBe(0);
      } finally {
        await cleanup();
      }
    }, 120_000);

    test("an enrolled sensor moves to TLS with --tls --ca-fingerprint, keeping its credentials", async () => {
      const { server, fingerprint, cleanup } = await tlsServer();
      try {
        const root = newRoot();
        const plain = await root.install([...base(server, "aht20-7157a4"), "--enroll", enrollmentToken(server)]);
        expect(plain.code).toBe(0);
        const before = readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8");
        const r = await root.install([
          "sensor",
          "--server",
          "localhost",
          "--tls",
          "--https-port",
          String(server.httpsPort),
          "--mqtts-port",
          String(server.mqttsPort),
          "--ca-fingerprint",
          fingerprint,
        ]);
        expect(r.code).toBe(0);
        const after = readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8");
        expect(credentials(after, server, "aht20-7157a4").password).toBe(credentials(before, server, "aht20-7157a4").password);
        for (const line of ["tls = true", "ca_file = /etc/techtemp/ca.crt", `broker_port = ${server.mqttsPort}`]) {
          expect(after.split("\n")).toContain(line);
        }
        expect(existsSync(join(root.path, "etc/techtemp/ca.crt"))).toBe(true);
      } finally {
        await cleanup();
      }
    }, 120_000);

    test("without --ca-fingerprint the CA is trusted on first use and its fingerprint shown to compare", async () => {
      const { server, fingerprint, cleanup } = await tlsServer();
      try {
        const root = newRoot();
        const r = await root.install([...tlsArgs(server, "aht20-7157a3"), "--enroll", enrollmentToken(server)]);
        expect(r.code).toBe(0);
        expect(r.output).toContain(`warning: trusting the server's CA on first use: SHA-256 ${fingerprint}`);
        expect(credentials(readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8"), server, "aht20-7157a3").valid).toBe(
          true,
        );
      } finally {
        await cleanup();
      }
    }, 120_000);
  });
});

describe("uninstall --unregister", () => {
  test("the server withdraws the sensor's MQTT credentials (device and readings kept); refused or unreachable: uninstalled all the same, exit 7", async () => {
    const server = await startServer();
    try {
      const uid = "aht20-5701e0";
      const root = newRoot();
      const installed = await root.install([...base(server, uid), "--enroll", enrollmentToken(server)]);
      expect(installed.code).toBe(0);
      const conf = readFileSync(join(root.path, "etc/techtemp/device.conf"), "utf8");
      const { password, valid } = credentials(conf, server, uid);
      expect(valid).toBe(true);
      const sensor = await connectMqtt(server.mqttPort, { username: uid, password });
      await publishAcked(sensor, readingTopic(uid), legacyPayload(20.5, 41, 1_725_427_200_000));
      await endMqtt(sensor);
      const readings = async () => (await server.api(`/api/v1/devices/${uid}/readings`)).body.data ?? [];
      await waitFor(async () => (await readings()).length === 1, 5000, "the sensor's reading stored");

      // The server cannot be reached (a port nobody listens on): uninstalled here all the same, exit 7, the secret still works.
      const [closed] = freePorts(1);
      const unreachable = await root.install(["uninstall", "--unregister", "--http-port", String(closed)], asOwner(server));
      expect(unreachable.code).toBe(7);
      expect(unreachable.output).toContain(
        `warning: cannot reach the server at http://127.0.0.1:${closed} to withdraw ${uid}'s MQTT credentials; uninstalling this machine all the same`,
      );
      expect(unreachable.output).toContain(
        "TechTemp was removed from this machine all the same, but its MQTT credentials still work on the server",
      );
      expect(unreachable.output).toContain(
        `curl -X DELETE -H 'authorization: Bearer TOKEN' http://127.0.0.1:${closed}/api/v1/devices/${uid}/mqtt-password`,
      );
      expect(existsSync(join(root.path, "opt/techtemp"))).toBe(false);
      expect(credentials(conf, server, uid).valid).toBe(true);

      // No API token: the server (it has an owner) refuses; named with what to do.
      const refused = await root.install(["uninstall", "--unregister"], { env: { TECHTEMP_API_TOKEN: "" } });
      expect(refused.code).toBe(7);
      expect(refused.output).toContain(`the server refused to withdraw ${uid}'s MQTT credentials (HTTP 401`);
      expect(refused.output).toContain(
        "fix: give a write API token: sudo TECHTEMP_API_TOKEN=tt_... install.sh uninstall --unregister",
      );
      expect(credentials(conf, server, uid).valid).toBe(true);

      // With the owner's write token: withdrawn; the device and its reading stay; the old secret is refused.
      const done = await root.install(["uninstall", "--unregister"], asOwner(server));
      expect(done.code).toBe(0);
      expect(done.output).toContain(`the server withdrew ${uid}'s MQTT credentials: nothing can publish as it any more`);
      expect(done.output).not.toMatch(/error|warning/);
      expect(done.output).toContain("nothing else to remove: TechTemp is not installed here");
      expect(credentials(conf, server, uid).valid).toBe(false);
      expect((await server.api(`/api/v1/devices/${uid}`)).status).toBe(200);
      expect(await readings()).toHaveLength(1);
      const err = (await connectMqtt(server.mqttPort, { username: uid, password }).then(
        (c) => (c.end(true), null),
        (e: Error & { code?: number }) => e,
      )) as (Error & { code?: number }) | null;
      expect(err?.code).toBe(5);

      // Without a sensor here: nothing to unregister, said before anything is done.
      const serverOnly = newRoot();
      const none = await serverOnly.install(["uninstall", "--unregister"]);
      expect(none.code).toBe(3);
      expect(none.output).toContain("--unregister: this machine has no sensor");
      expect((await serverOnly.install(["sensor", "--unregister"])).output).toContain("--unregister goes with uninstall");
    } finally {
      await server.stop();
    }
  }, 180_000);
});
