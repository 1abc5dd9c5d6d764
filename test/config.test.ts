// Server configuration: env over file over defaults, and bad values stopping
// start-up with one line that names the setting and the value.

import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, defaults, loadConfig, parseConfigFile } from "../lib/server/config.ts";
import { run, tempDir } from "./helpers.ts";

const dirs: { cleanup(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d.path;
};

/** A valid value of each text setting (the rest take "7"). */
const TEXT_SAMPLES: Record<string, string> = {
  backup_time: "07:00",
  backup_dir: "./backups",
  backup_second_dir: "/mnt/usb",
  ha_discovery: "off",
  ha_discovery_prefix: "ha",
  bridge_url: "mqtt://127.0.0.1:1883",
  bridge_username: "u",
  bridge_password: "p",
  bridge_client_id: "c",
};

describe("loadConfig", () => {
  test("defaults apply when nothing is set (HTTP 3000, MQTT 1883, ./data)", () => {
    const d = dir();
    const c = loadConfig({ env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: d } });
    expect(c).toMatchObject({ http_port: 3000, mqtt_port: 1883, host: "0.0.0.0", data_dir: d, retention_raw_days: 730 });
  });

  test("the environment wins over the file, which wins over the defaults", () => {
    const d = dir();
    const file = join(d, "server.conf");
    writeFileSync(file, `# comment\nhttp_port = 8080\nmqtt_port = 1884\n\ndata_dir = ${d}\nlog_level = warn\n`);
    const c = loadConfig({ env: { TECHTEMP_CONFIG: file, TECHTEMP_MQTT_PORT: "1999" } });
    expect(c).toMatchObject({ http_port: 8080, mqtt_port: 1999, log_level: "warn", data_dir: d });
  });

  test("port 0 means any free port", () => {
    expect(
      loadConfig({ env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_HTTP_PORT: "0", TECHTEMP_DATA_DIR: dir() } }).http_port,
    ).toBe(0);
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    [
      "a port out of range",
      { TECHTEMP_HTTP_PORT: "70000" },
      /^config: http_port = "70000" \(TECHTEMP_HTTP_PORT\): must be a port number 0-65535$/,
    ],
    [
      "a port that is not a number",
      { TECHTEMP_MQTT_PORT: "eighteen" },
      /^config: mqtt_port = "eighteen" \(TECHTEMP_MQTT_PORT\): must be a whole number$/,
    ],
    [
      "an unknown log level",
      { TECHTEMP_LOG_LEVEL: "loud" },
      /^config: log_level = "loud" .*must be one of debug, info, warn, error$/,
    ],
    ["a negative retention", { TECHTEMP_RETENTION_RAW_DAYS: "-1" }, /^config: retention_raw_days = "-1" .*keep forever/],
    [
      "no room for any device",
      { TECHTEMP_MAX_DEVICES: "0" },
      /^config: max_devices = "0" \(TECHTEMP_MAX_DEVICES\): must be at least 1$/,
    ],
    [
      "no topic filter for any MQTT client",
      { TECHTEMP_MQTT_MAX_SUBSCRIPTIONS: "0" },
      /^config: mqtt_max_subscriptions = "0" \(TECHTEMP_MQTT_MAX_SUBSCRIPTIONS\): must be at least 1$/,
    ],
    [
      "a data dir that cannot be written",
      { TECHTEMP_DATA_DIR: "/etc/hostname/data" },
      /^config: data_dir = "\/etc\/hostname\/data" \(TECHTEMP_DATA_DIR\): cannot write there/,
    ],
    [
      "a missing config file",
      { TECHTEMP_CONFIG: "/nonexistent/server.conf" },
      /^config: TECHTEMP_CONFIG = "\/nonexistent\/server.conf": cannot read it/,
    ],
  ];
  for (const [name, env, message] of bad) {
    test(`${name} is refused with one line naming the setting and the value`, () => {
      expect(() => loadConfig({ env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: dir(), ...env } })).toThrow(message);
    });
  }

  test("an unknown setting in the file is refused with its line number", () => {
    expect(() => parseConfigFile("http_port = 3000\nhttp_prot = 3001\n", "/etc/techtemp/server.conf")).toThrow(
      /^config: \/etc\/techtemp\/server.conf:2: unknown setting "http_prot"/,
    );
  });

  test("a line that is not key = value is refused", () => {
    expect(() => parseConfigFile("just words\n", "f.conf")).toThrow(ConfigError);
  });

  test("values may be quoted, keys are any case, and '#' or ';' first on a line starts a comment", () => {
    expect(parseConfigFile('; ports\n  # host\nHOST = "127.0.0.1"\r\nhttp_port=8080\n', "f.conf")).toEqual({
      host: "127.0.0.1",
      http_port: 8080,
    });
  });

  test("a section header, a bad key or a stray carriage return inside a value is refused with its line", () => {
    for (const [text, line] of [
      ["[server]\n", "[server]"],
      ["http-port = 1\n", "http-port = 1"],
      ["host = a\rb\n", "host = a\rb"],
    ]) {
      expect(() => parseConfigFile(`# first\n${text}`, "f.conf")).toThrow(
        `config: f.conf:2: expected "key = value", got ${JSON.stringify(line)}`,
      );
    }
  });

  test("every setting can be set from the environment", () => {
    const d = dir();
    // Certificate settings name files (their content is checked at start, not here).
    writeFileSync(join(d, "cert.pem"), "");
    writeFileSync(join(d, "key.pem"), "");
    const text: Record<string, string> = {
      data_dir: d,
      host: "127.0.0.1",
      log_level: "debug",
      tls_cert: join(d, "cert.pem"),
      tls_key: join(d, "key.pem"),
      http_plain: "off",
      mqtt_plain: "off",
      cors_origins: "http://grafana.lan:3000",
      home_timezone: "Europe/Paris",
      weather_url: "http://127.0.0.1:7/v1/forecast",
    };
    const env: Record<string, string> = { TECHTEMP_CONFIG: "/dev/null" };
    for (const key of Object.keys(defaults)) env[`TECHTEMP_${key.toUpperCase()}`] = text[key] ?? TEXT_SAMPLES[key] ?? "7";
    const c = loadConfig({ env });
    expect(c.mqtt_max_clients).toBe(7);
    expect(c.host).toBe("127.0.0.1");
    expect(c).toMatchObject({
      https_port: 7,
      mqtts_port: 7,
      tls_cert: join(d, "cert.pem"),
      http_plain: "off",
      mqtt_plain: "off",
    });
  });

  test("without tls_cert and tls_key, the pair `techtemp-server tls` writes in the data dir is used when it is there", () => {
    const d = dir();
    const env = { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: d };
    expect(loadConfig({ env })).toMatchObject({ tls_cert: "", tls_key: "", https_port: 8443, mqtts_port: 8883 });
    mkdirSync(join(d, "tls"));
    writeFileSync(join(d, "tls/server.crt"), "");
    writeFileSync(join(d, "tls/server.key"), "");
    expect(loadConfig({ env })).toMatchObject({ tls_cert: join(d, "tls/server.crt"), tls_key: join(d, "tls/server.key") });
  });

  const badTls: [string, Record<string, string>, RegExp][] = [
    [
      "a plain switch that is neither on nor off",
      { TECHTEMP_MQTT_PLAIN: "no" },
      /^config: mqtt_plain = "no" \(TECHTEMP_MQTT_PLAIN\): must be on or off$/,
    ],
    [
      "plain HTTP off without a certificate",
      { TECHTEMP_HTTP_PLAIN: "off" },
      /^config: http_plain = "off" \(TECHTEMP_HTTP_PLAIN\): needs TLS: set tls_cert and tls_key, or run `techtemp-server tls`/,
    ],
    [
      "plain MQTT off without a certificate",
      { TECHTEMP_MQTT_PLAIN: "off" },
      /^config: mqtt_plain = "off" \(TECHTEMP_MQTT_PLAIN\): needs TLS/,
    ],
    [
      "a certificate without its key",
      { TECHTEMP_TLS_CERT: "/etc/hostname" },
      /^config: tls_key = "" \(default\): must be set too when tls_cert is$/,
    ],
    [
      "a certificate file that cannot be read",
      { TECHTEMP_TLS_CERT: "/nonexistent/server.crt", TECHTEMP_TLS_KEY: "/etc/hostname" },
      /^config: tls_cert = "\/nonexistent\/server.crt" \(TECHTEMP_TLS_CERT\): cannot read it \(ENOENT\)$/,
    ],
    [
      "an HTTPS port out of range",
      { TECHTEMP_HTTPS_PORT: "65536" },
      /^config: https_port = "65536" .*must be a port number 0-65535$/,
    ],
  ];
  for (const [name, env, message] of badTls) {
    test(`${name} is refused with one line naming the setting`, () => {
      expect(() => loadConfig({ env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: dir(), ...env } })).toThrow(message);
    });
  }
});

describe("bun server.ts", () => {
  const env = (extra: Record<string, string>) => ({
    TECHTEMP_CONFIG: "/dev/null",
    TECHTEMP_HTTP_PORT: "0",
    TECHTEMP_MQTT_PORT: "0",
    TECHTEMP_HOST: "127.0.0.1",
    ...extra,
  });

  test("a bad setting stops start-up with one line and exit code 2", async () => {
    const r = await run(["bun", "server.ts"], { env: env({ TECHTEMP_DATA_DIR: dir(), TECHTEMP_HTTP_PORT: "99999" }) });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('config: http_port = "99999" (TECHTEMP_HTTP_PORT): must be a port number 0-65535');
  });

  test("a port that is taken stops start-up with a message naming it", async () => {
    const blocker = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await run(["bun", "server.ts"], {
        env: env({ TECHTEMP_DATA_DIR: dir(), TECHTEMP_MQTT_PORT: String(blocker.port) }),
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot start: listen MQTT on 127.0.0.1:${blocker.port}`);
    } finally {
      blocker.stop(true);
    }
  });

  test("an unknown command prints the usage and exits 2", async () => {
    const r = await run(["bun", "server.ts", "serve-please"], { env: env({ TECHTEMP_DATA_DIR: dir() }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "serve-please"');
    expect(r.stderr).toContain("usage:");
  });

  test("--help prints the usage", async () => {
    const r = await run(["bun", "server.ts", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("bun server.ts inspect");
  });
});
