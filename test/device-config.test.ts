// device.conf: the earlier agent's file read unchanged (the verbatim fixture),
// broken variants stopping the agent with one line naming key and value,
// environment overrides, the lookup order, and the uid derived from the MAC.

import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { topicFor } from "../lib/shared/contract.ts";
import { DeviceConfigError, loadDeviceConfig, outboxBound, parseDeviceConf } from "../lib/sensor/device-config.ts";
import { uidFromMac } from "../lib/sensor/device-uid.ts";
import { run, tempDir } from "./helpers.ts";

const FIXTURE = join(import.meta.dir, "fixtures", "device.conf");
const LEGACY = readFileSync(FIXTURE, "utf8");
const lineOf = (text: string, start: string) => text.split("\n").findIndex((l) => l.startsWith(start)) + 1;

/** Loads a config from text, with no environment and no other file. */
function load(text: string, env: Record<string, string> = {}) {
  const dir = tempDir();
  try {
    const path = join(dir.path, "device.conf");
    writeFileSync(path, text);
    return loadDeviceConfig({ path, env, sysRoot: join(dir.path, "no-sys") });
  } finally {
    dir.cleanup();
  }
}

function loadError(text: string, env: Record<string, string> = {}): string {
  try {
    load(text, env);
  } catch (err) {
    if (err instanceof DeviceConfigError) return err.message;
    throw err;
  }
  throw new Error("expected a DeviceConfigError");
}

describe("the earlier agent's device.conf", () => {
  test("is read unchanged: every value as the C agent read it", () => {
    const config = loadDeviceConfig({ path: FIXTURE, env: {} });
    expect(config).toMatchObject({
      device_uid: "aht20-b827eb123456",
      uid_source: "device.conf",
      home_id: "home-001",
      label: '"Capteur AHT20 Test"',
      driver: "aht20",
      i2c_address: 0x38,
      i2c_bus: 1,
      interval_s: 300,
      temperature_offset: 0,
      humidity_offset: 0,
      broker_host: "192.168.0.180",
      broker_port: 1883,
      username: "",
      password: "",
      qos: 1,
      keepalive_s: 60,
      log_level: "info",
      file: FIXTURE,
    });
    expect(topicFor(config.home_id, config.device_uid, "reading")).toBe("home/home-001/sensors/aht20-b827eb123456/reading");
  });

  test("its keys the C agent never parsed only warn, each with its line", () => {
    const { warnings } = loadDeviceConfig({ path: FIXTURE, env: {} });
    for (const key of ["topic_prefix", "reconnect_delay_seconds", "max_reconnect_attempts", "shutdown_timeout_seconds"]) {
      expect(warnings).toContainEqual(expect.stringContaining(`${FIXTURE}:${lineOf(LEGACY, key)}: unknown key ${key}`));
    }
    // The inline comment makes log_level unrecognised, as it did for the C agent: INFO, with a hint.
    expect(warnings).toContainEqual(expect.stringContaining("comments must be on their own line"));
    expect(warnings).toHaveLength(5);
  });

  test("the bootstrap-generated variant (home_id, unquoted label, lowercase log level, old room_id) is read too", () => {
    const text = LEGACY.replace("device_uid = aht20-b827eb123456", "device_uid = aht20-f49c53\nhome_id = maison\nroom_id = salon")
      .replace('label = "Capteur AHT20 Test"', "label = Salon")
      .replace("read_interval_seconds = 300", "read_interval_seconds = 30")
      .replace("log_level = DEBUG  # DEBUG, INFO, WARN, ERROR", "log_level = info");
    const config = load(text);
    expect(config).toMatchObject({
      device_uid: "aht20-f49c53",
      home_id: "maison",
      label: "Salon",
      interval_s: 30,
      log_level: "info",
    });
    expect(config.warnings).toContainEqual(expect.stringContaining("unknown key room_id in [device]"));
  });

  test("i2c_address is read like strtol(v, NULL, 0): 0x38, 56 and 070 are the same address", () => {
    for (const v of ["0x38", "56", "070"])
      expect(load(`[sensor]\ni2c_address = ${v}\n[device]\ndevice_uid = a\n`).i2c_address).toBe(0x38);
  });

  test("lines without '=', keys outside a section and unknown sections are warned about and skipped", () => {
    const parsed = parseDeviceConf("stray = 1\n[device]\njust words\n[extras]\nfoo = bar\n", "x.conf");
    expect(parsed.warnings).toEqual([
      "x.conf:1: stray is outside any [section], ignored",
      'x.conf:3: not "key = value", ignored: "just words"',
      "x.conf:4: unknown section [extras] (its keys are ignored)",
    ]);
  });

  test("our own keys: driver, [outbox], [clock] and reconnect_max_seconds", () => {
    const config = load(
      "[device]\ndevice_uid = d1\n[sensor]\ndriver = sim\n[mqtt]\nreconnect_max_seconds = 5\n" +
        "[outbox]\nmax_readings = 1000\ndrain_rate = 300\nmemory_readings = 50\n[clock]\nsync_wait_seconds = 0\n",
    );
    expect(config).toMatchObject({
      driver: "sim",
      reconnect_max_s: 5,
      outbox_max_readings: 1000,
      outbox_drain_rate: 300,
      outbox_memory_readings: 50,
      clock_sync_wait_s: 0,
    });
    expect(config.warnings).toEqual([]);
  });

  test("the outbox holds 30 days at the configured interval unless max_readings says otherwise", () => {
    expect(outboxBound({ outbox_max_readings: null, interval_s: 300 })).toBe(8640);
    expect(outboxBound({ outbox_max_readings: null, interval_s: 1 })).toBe(2_592_000);
    expect(outboxBound({ outbox_max_readings: 50, interval_s: 1 })).toBe(50);
  });
});

describe("bad values stop the agent with one line naming key and value", () => {
  const cases: [string, string, string, string][] = [
    ["read_interval_seconds = 300", "read_interval_seconds = 0", "read_interval_seconds", "1-3600"],
    ["read_interval_seconds = 300", "read_interval_seconds = 3601", "read_interval_seconds", "1-3600"],
    ["read_interval_seconds = 300", "read_interval_seconds = five", "read_interval_seconds", "1-3600"],
    ["read_interval_seconds = 300", "read_interval_seconds = 1.5", "read_interval_seconds", "1-3600"],
    ["i2c_address = 0x38", "i2c_address = 0", "i2c_address", "0x08-0x77"],
    ["i2c_address = 0x38", "i2c_address = 0xZZ", "i2c_address", "0x08-0x77"],
    ["i2c_address = 0x38", "i2c_address = 0x80", "i2c_address", "0x08-0x77"],
    ["i2c_bus = 1", "i2c_bus = one", "i2c_bus", "/dev/i2c-N"],
    ["broker_port = 1883", "broker_port = 0", "broker_port", "1-65535"],
    ["broker_port = 1883", "broker_port = 65536", "broker_port", "1-65535"],
    ["broker_port = 1883", "broker_port = mqtt", "broker_port", "1-65535"],
    ["broker_host = 192.168.0.180", "broker_host =", "broker_host", "must not be empty"],
    ["device_uid = aht20-b827eb123456", "device_uid = aht20 b827", "device_uid", "A-Z a-z 0-9 _ -"],
    ["temperature_offset = 0.0", "temperature_offset = hot", "temperature_offset", "-20 to 20"],
    ["humidity_offset = 0.0", "humidity_offset = 50", "humidity_offset", "-20 to 20"],
    ["qos = 1", "qos = 5", "qos", "0, 1 or 2"],
  ];
  for (const [from, to, key, problem] of cases) {
    test(`${to.trim()}`, () => {
      const text = LEGACY.replace(from, to);
      const message = loadError(text);
      const value = to.slice(to.indexOf("=") + 1).trim();
      expect(message).toContain(`${key} = ${JSON.stringify(value)}`);
      expect(message).toMatch(new RegExp(`device\\.conf:${lineOf(text, to)}\\)`));
      expect(message).toContain(problem);
      expect(message).not.toContain("\n");
    });
  }

  test("[outbox] memory_readings must be a whole number 1-1000000", () => {
    for (const bad of ["0", "many", "1000001"]) {
      const message = loadError(`[device]\ndevice_uid = a\n[outbox]\nmemory_readings = ${bad}\n`);
      expect(message).toContain(`memory_readings = ${JSON.stringify(bad)}`);
      expect(message).toContain("1-1000000");
    }
  });

  test("[sensor] driver must be aht20 or sim", () => {
    expect(loadError("[device]\ndevice_uid = a\n[sensor]\ndriver = real\n")).toContain('driver = "real"');
  });
});

describe("environment over device.conf over defaults", () => {
  test("TECHTEMP_* variables override the file", () => {
    const config = loadDeviceConfig({
      path: FIXTURE,
      env: {
        TECHTEMP_INTERVAL_S: "5",
        TECHTEMP_MQTT_HOST: "127.0.0.1",
        TECHTEMP_MQTT_PORT: "18830",
        TECHTEMP_DEVICE_UID: "aht20-override",
        TECHTEMP_HOME_ID: "home-002",
        TECHTEMP_SENSOR_DRIVER: "sim",
        TECHTEMP_I2C_BUS: "3",
        TECHTEMP_I2C_ADDRESS: "0x39",
        TECHTEMP_MQTT_USERNAME: "pi",
        TECHTEMP_MQTT_PASSWORD: "secret",
        TECHTEMP_DATA_DIR: "/var/lib/techtemp",
      },
    });
    expect(config).toMatchObject({
      interval_s: 5,
      broker_host: "127.0.0.1",
      broker_port: 18830,
      device_uid: "aht20-override",
      uid_source: "TECHTEMP_DEVICE_UID",
      home_id: "home-002",
      driver: "sim",
      i2c_bus: 3,
      i2c_address: 0x39,
      username: "pi",
      password: "secret",
      data_dir: "/var/lib/techtemp",
    });
  });

  test("a bad environment value names the variable and the value", () => {
    expect(() => loadDeviceConfig({ path: FIXTURE, env: { TECHTEMP_MQTT_PORT: "abc" } })).toThrow(
      'config: TECHTEMP_MQTT_PORT = "abc" (environment): must be a port number 1-65535',
    );
    expect(() => loadDeviceConfig({ path: FIXTURE, env: { TECHTEMP_INTERVAL_S: "0" } })).toThrow("TECHTEMP_INTERVAL_S");
  });

  test("defaults are the C agent's", () => {
    const config = loadDeviceConfig({ env: { TECHTEMP_DEVICE_UID: "x" }, candidates: [] });
    expect(config).toMatchObject({
      home_id: "home-001",
      interval_s: 30,
      broker_host: "localhost",
      broker_port: 1883,
      i2c_address: 0x38,
      i2c_bus: 1,
      data_dir: "./data",
      file: null,
    });
    expect(config.warnings[0]).toContain("no config file found");
  });
});

describe("lookup order and device uid", () => {
  test("the argument first, else ./config/device.conf, else /etc/techtemp/device.conf", () => {
    const dir = tempDir();
    try {
      const local = join(dir.path, "local.conf");
      const etc = join(dir.path, "etc.conf");
      writeFileSync(etc, "[device]\ndevice_uid = from-etc\n");
      const candidates = [local, etc];
      expect(loadDeviceConfig({ env: {}, candidates }).device_uid).toBe("from-etc");
      writeFileSync(local, "[device]\ndevice_uid = from-local\n");
      expect(loadDeviceConfig({ env: {}, candidates }).device_uid).toBe("from-local");
      expect(loadDeviceConfig({ path: FIXTURE, env: {}, candidates }).device_uid).toBe("aht20-b827eb123456");
    } finally {
      dir.cleanup();
    }
  });

  test("a config file given but missing is an error naming it", () => {
    expect(() => loadDeviceConfig({ path: "/nonexistent/device.conf", env: {} })).toThrow(
      "config: cannot open config file /nonexistent/device.conf (ENOENT)",
    );
  });

  test("without device_uid the uid is aht20- and the last 6 hex digits of eth0's MAC, lowercase", () => {
    const dir = tempDir();
    try {
      mkdirSync(join(dir.path, "class/net/eth0"), { recursive: true });
      mkdirSync(join(dir.path, "class/net/wlan0"), { recursive: true });
      writeFileSync(join(dir.path, "class/net/wlan0/address"), "dc:a6:32:01:02:03\n");
      writeFileSync(join(dir.path, "class/net/eth0/address"), "B8:27:EB:F4:9C:53\n");
      expect(uidFromMac(dir.path)).toEqual({ uid: "aht20-f49c53", source: "MAC of eth0" });
      writeFileSync(join(dir.path, "class/net/eth0/address"), "00:00:00:00:00:00\n");
      expect(uidFromMac(dir.path)).toEqual({ uid: "aht20-010203", source: "MAC of wlan0" });
      const config = loadDeviceConfig({ env: {}, candidates: [], sysRoot: dir.path });
      expect(config.device_uid).toBe("aht20-010203");
      expect(config.uid_source).toBe("MAC of wlan0");
    } finally {
      dir.cleanup();
    }
  });

  test("without eth0 and wlan0 the first hardware interface gives the uid, wired before wireless (end0, enx…, enp0s3)", () => {
    const dir = tempDir();
    try {
      const iface = (name: string, mac: string, kind: "wired" | "wireless" | "virtual") => {
        mkdirSync(join(dir.path, "class/net", name), { recursive: true });
        writeFileSync(join(dir.path, "class/net", name, "address"), `${mac}\n`);
        if (kind !== "virtual") mkdirSync(join(dir.path, "class/net", name, "device"));
        if (kind === "wireless") mkdirSync(join(dir.path, "class/net", name, "wireless"));
      };
      iface("lo", "00:00:00:00:00:00", "virtual");
      iface("br0", "02:42:aa:bb:cc:dd", "virtual");
      iface("wlp1s0", "dc:a6:32:0a:0b:0c", "wireless");
      expect(uidFromMac(dir.path)).toEqual({ uid: "aht20-0a0b0c", source: "MAC of wlp1s0" });
      iface("end0", "D8:3A:DD:12:34:56", "wired");
      expect(uidFromMac(dir.path)).toEqual({ uid: "aht20-123456", source: "MAC of end0" });
      iface("eth0", "b8:27:eb:f4:9c:53", "wired");
      expect(uidFromMac(dir.path)).toEqual({ uid: "aht20-f49c53", source: "MAC of eth0" });
    } finally {
      dir.cleanup();
    }
  });

  test("no device_uid and no MAC is an error saying to set device_uid", () => {
    expect(() => loadDeviceConfig({ env: {}, candidates: [], sysRoot: "/nonexistent" })).toThrow(
      "no network interface has a MAC address to derive it from: set device_uid in [device]",
    );
  });
});

describe("bun sensor.ts on the command line", () => {
  const sensor = (args: string[], env: Record<string, string> = {}) =>
    run(["bun", join(import.meta.dir, "..", "sensor.ts"), ...args], {
      env: { TECHTEMP_DEVICE_UID: undefined, ...env },
      timeoutMs: 20_000,
    });

  test("`uid` prints the uid of the earlier device.conf (its unknown keys only warn)", async () => {
    const { code, stdout, stderr } = await sensor(["uid", FIXTURE]);
    expect(stderr).toBe("");
    expect(stdout).toBe("aht20-b827eb123456\n");
    expect(code).toBe(0);
  });

  test("`uid` follows TECHTEMP_DEVICE_UID", async () => {
    const { stdout } = await sensor(["uid", FIXTURE], { TECHTEMP_DEVICE_UID: "aht20-0a0b0c" });
    expect(stdout).toBe("aht20-0a0b0c\n");
  });

  test("a bad value stops the agent with exactly one line and exit code 2", async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, "device.conf");
      writeFileSync(path, LEGACY.replace("read_interval_seconds = 300", "read_interval_seconds = 0"));
      const { code, stdout, stderr } = await sensor([path]);
      expect(code).toBe(2);
      expect(stdout).toBe("");
      expect(stderr.trimEnd().split("\n")).toEqual([
        `config: read_interval_seconds = "0" (${path}:${lineOf(LEGACY, "read_interval_seconds")}): must be a whole number of seconds 1-3600`,
      ]);
    } finally {
      dir.cleanup();
    }
  });

  test("unknown arguments stop it with one line", async () => {
    for (const args of [["--verbose"], [FIXTURE, "extra"], ["check", "--bus=1"]]) {
      const { code, stderr } = await sensor(args);
      expect(code).toBe(2);
      expect(stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(stderr).toContain("unknown argument");
    }
  });

  test("--help prints the usage", async () => {
    const { code, stdout } = await sensor(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("bun sensor.ts check [device.conf]");
  });
});
