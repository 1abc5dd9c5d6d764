// TLS end to end: `techtemp-server tls` makes a local CA and a certificate for
// this machine's names and addresses; the server serves HTTPS and MQTT over
// TLS with it; curl --cacert, mosquitto_pub/mosquitto_sub --cafile and the
// agent (tls = true, ca_file) trust that CA only, and a client holding
// another CA is refused. Plain ports can be switched off. The certificate's
// expiry is known to the pages and warned about in the log 30 days ahead.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { certificateExpiry, expiryWarning, loadServerTls } from "../lib/server/tls/certificates.ts";
import { ensureCertificates, defaultNames } from "../lib/server/tls/local-ca.ts";
import { legacyPayload, readingTopic, run, startServer, tempDir, waitFor, type TestServer } from "./helpers.ts";
import { agentEnv, sensorLogin, spawnAgent, spawnWithLines, storedTs } from "./sensor-helpers.ts";

const REPO = join(import.meta.dir, "..");
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** `bun server.ts tls ARGS` on `dataDir`. */
const tlsCommand = (dataDir: string, args: string[] = []) =>
  run(["bun", "server.ts", "tls", ...args], { cwd: REPO, env: { TECHTEMP_CONFIG: "/dev/null", TECHTEMP_DATA_DIR: dataDir } });

/** A data dir with a local CA and certificate (made once for the file), and another CA no client should trust. */
let made: { path: string; cleanup(): void };
let stranger: { path: string; cleanup(): void };
beforeAll(async () => {
  made = tempDir();
  stranger = tempDir();
  const r = await tlsCommand(made.path);
  if (r.code !== 0) throw new Error(`tls command: ${r.stderr}`);
  ensureCertificates(join(stranger.path, "tls"), defaultNames());
}, 60_000);
afterAll(() => {
  made?.cleanup();
  stranger?.cleanup();
});

const caOf = (dir: string) => join(dir, "tls/ca.crt");

/** A server on a copy of the data dir that holds the certificate. */
async function tlsServer(overrides: Record<string, string | number> = {}): Promise<TestServer> {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  await run(["cp", "-a", join(made.path, "tls"), dir.path]);
  const server = await startServer({ https_port: 0, mqtts_port: 0, ...overrides }, { dataDir: dir.path });
  cleanups.push(() => server.stop());
  return server;
}

describe("techtemp-server tls", () => {
  test("makes a local CA and a certificate for the host name, <host>.local, localhost and the machine's addresses", async () => {
    const files = ["ca.key", "ca.crt", "server.key", "server.crt"].map((f) => join(made.path, "tls", f));
    expect(files.map((f) => (statSync(f).mode & 0o777).toString(8))).toEqual(["600", "644", "600", "644"]);
    expect((statSync(join(made.path, "tls")).mode & 0o777).toString(8)).toBe("700");
    const leaf = new X509Certificate(readFileSync(files[3]!));
    const ca = new X509Certificate(readFileSync(files[1]!));
    expect(leaf.checkIssued(ca)).toBe(true);
    for (const name of [
      `DNS:${hostname()}`,
      `DNS:${hostname()}.local`,
      "DNS:localhost",
      "IP Address:127.0.0.1",
      "IP Address:0:0:0:0:0:0:0:1",
    ]) {
      expect(leaf.subjectAltName).toContain(name);
    }
    // The CA vouches only for local names (a name constraint), so its key cannot impersonate other sites.
    const constraints = await run(["openssl", "x509", "-in", files[1]!, "-noout", "-ext", "nameConstraints"]);
    expect(constraints.stdout).toContain("DNS:local");
    expect(constraints.stdout).toContain("critical");
  });

  test("a second run changes nothing; new names get a new certificate from the same CA", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    await run(["cp", "-a", join(made.path, "tls"), dir.path]);
    const before = readFileSync(join(dir.path, "tls/server.crt"), "utf8");
    const again = await tlsCommand(dir.path);
    expect(again.stdout).toContain("TLS certificate up to date");
    expect(readFileSync(join(dir.path, "tls/server.crt"), "utf8")).toBe(before);

    const more = await tlsCommand(dir.path, ["--name", "techtemp.local,thermo.home.arpa", "--ip", "192.168.1.77"]);
    expect(more.stdout).toContain("TLS certificate issued (names or addresses were added)");
    expect(more.stdout).toContain("CA SHA-256");
    const leaf = new X509Certificate(readFileSync(join(dir.path, "tls/server.crt")));
    expect(leaf.subjectAltName).toContain("DNS:thermo.home.arpa");
    expect(leaf.subjectAltName).toContain("IP Address:192.168.1.77");
    expect(readFileSync(join(dir.path, "tls/ca.crt"), "utf8")).toBe(readFileSync(caOf(made.path), "utf8"));
  }, 60_000);

  test("bad arguments and names the CA may not sign are refused with what to do", async () => {
    const bad = await tlsCommand(made.path, ["--ip", "not-an-address"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('tls: unexpected argument "--ip"');
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    await run(["cp", "-a", join(made.path, "tls"), dir.path]);
    const outside = await tlsCommand(dir.path, ["--name", "www.example.com"]);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain("the local CA may not sign one of");
    expect(outside.stderr).toContain("--new-ca");
  }, 60_000);
});

describe("serving over TLS", () => {
  test("curl --cacert gets /health over HTTPS; without the CA, or with another, it is refused", async () => {
    const server = await tlsServer();
    const url = `https://localhost:${server.httpsPort}/health`;
    const ok = await run(["curl", "-sS", "--cacert", caOf(made.path), url]);
    expect(ok.stdout).toBe('{"status":"ok"}');
    const untrusted = await run(["curl", "-sS", url]);
    expect(untrusted.code).toBe(60); // curl: peer certificate cannot be authenticated
    const wrong = await run(["curl", "-sS", "--cacert", caOf(stranger.path), url]);
    expect(wrong.code).toBe(60);
    // By address too: the certificate names 127.0.0.1.
    expect((await run(["curl", "-sS", "--cacert", caOf(made.path), `https://127.0.0.1:${server.httpsPort}/health`])).stdout).toBe(
      '{"status":"ok"}',
    );
  });

  test("mosquitto_pub --cafile stores a reading and mosquitto_sub --cafile receives it; another CA is refused and logged", async () => {
    const server = await tlsServer();
    const uid = "aht20-7151c0";
    const login = sensorLogin(server, uid);
    const tls = ["-h", "localhost", "-p", String(server.mqttsPort)];
    // stdbuf: mosquitto_sub's output to a pipe would wait in its buffer.
    const sub = spawnWithLines([
      "stdbuf",
      "-oL",
      "mosquitto_sub",
      ...tls,
      "--cafile",
      caOf(made.path),
      "-u",
      server.mqttLogin!.username,
      "-P",
      server.mqttLogin!.password,
      "-t",
      "home/+/sensors/+/reading",
      "-v",
      "-d",
    ]);
    cleanups.push(async () => void (await sub.kill()));
    await sub.waitForLine(/received SUBACK/, 10_000);
    const pub = await run([
      "mosquitto_pub",
      ...tls,
      "--cafile",
      caOf(made.path),
      "-u",
      uid,
      "-P",
      login.TECHTEMP_MQTT_PASSWORD!,
      "-q",
      "1",
      "-t",
      readingTopic(uid),
      "-m",
      legacyPayload(21.5, 45, 1_725_427_200_000),
    ]);
    expect(pub.code).toBe(0);
    expect(await storedTs(server, uid)).toEqual([1_725_427_200_000]);
    await sub.waitForLine(new RegExp(`^${readingTopic(uid)} \\{"temperature_c":21.50`), 10_000);

    const wrong = await run([
      "mosquitto_pub",
      ...tls,
      "--cafile",
      caOf(stranger.path),
      "-u",
      uid,
      "-P",
      login.TECHTEMP_MQTT_PASSWORD!,
      "-t",
      readingTopic(uid),
      "-m",
      legacyPayload(30, 30, 1_725_427_260_000),
    ]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/TLS|certificate/i);
    expect(await storedTs(server, uid)).toHaveLength(1);
    await waitFor(
      () => server.logs.some((l) => l.includes("TLS handshake failed") && l.includes("address=127.0.0.1")),
      5000,
      "the log line",
    );
  });

  test("the agent with tls = true and ca_file stores readings over TLS; with another CA it says the certificate is not trusted", async () => {
    const server = await tlsServer();
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const uid = "aht20-a7151c";
    const tls = { TECHTEMP_MQTT_HOST: "localhost", TECHTEMP_MQTT_TLS: "true", TECHTEMP_MQTT_CA_FILE: caOf(made.path) };
    const good = spawnAgent(agentEnv(server.mqttsPort!, join(dir.path, "a"), uid, { ...sensorLogin(server, uid), ...tls }));
    cleanups.push(async () => void (await good.kill()));
    await waitFor(async () => (await storedTs(server, uid)).length >= 2, 20_000, "readings over TLS");
    expect(good.lines.some((l) => l.includes("connected broker=mqtts://localhost:"))).toBe(true);

    const bad = spawnAgent(
      agentEnv(server.mqttsPort!, join(dir.path, "b"), "aht20-bad7c5", {
        ...sensorLogin(server, "aht20-bad7c5"),
        ...tls,
        TECHTEMP_MQTT_CA_FILE: caOf(stranger.path),
      }),
    );
    cleanups.push(async () => void (await bad.kill()));
    const line = await bad.waitForLine(/cannot connect to the broker/, 20_000);
    expect(line).toContain("the server's certificate is not trusted: check ca_file in [mqtt] of device.conf");
    expect(await storedTs(server, "aht20-bad7c5")).toEqual([]);
  }, 60_000);

  test("an unreadable ca_file stops the agent with a line naming the key", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const r = await run(["bun", join(REPO, "sensor.ts"), "uid"], {
      env: agentEnv(8883, dir.path, "aht20-ca0000", { TECHTEMP_MQTT_TLS: "true", TECHTEMP_MQTT_CA_FILE: "/nonexistent/ca.crt" }),
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^config: ca_file = "\/nonexistent\/ca.crt" \(TECHTEMP_MQTT_CA_FILE\): cannot read it \(ENOENT\)/,
    );
    const typo = await run(["bun", join(REPO, "sensor.ts"), "uid"], {
      env: agentEnv(8883, dir.path, "aht20-ca0000", { TECHTEMP_MQTT_TLS: "ture" }),
    });
    expect(typo.code).toBe(2);
    expect(typo.stderr.trim()).toBe('config: TECHTEMP_MQTT_TLS = "ture" (environment): must be true or false');
  });

  test("plain ports switched off: only HTTPS and MQTT over TLS answer", async () => {
    const server = await tlsServer({ http_plain: "off", mqtt_plain: "off" });
    expect([server.httpPort, server.mqttPort]).toEqual([0, 0]);
    expect(server.logs.some((l) => /server running http=off mqtt=off https=\d+ mqtts=\d+/.test(l))).toBe(true);
    const ok = await run(["curl", "-sS", "--cacert", caOf(made.path), `https://localhost:${server.httpsPort}/health`]);
    expect(ok.stdout).toBe('{"status":"ok"}');
  });

  test("a key that is not the certificate's stops the start with a message naming the setting", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const err = await startServer(
      { tls_cert: join(made.path, "tls/server.crt"), tls_key: join(stranger.path, "tls/server.key") },
      { dataDir: dir.path },
    ).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toBe(
      `tls_key ${join(stranger.path, "tls/server.key")} is not the key of tls_cert ${join(made.path, "tls/server.crt")}`,
    );
  });
});

describe("certificate expiry", () => {
  test("the pages get notAfter and names; the log warns 30 days ahead with how to renew", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    ensureCertificates(join(dir.path, "tls"), defaultNames(), { days: 10 });
    const server = await startServer({ https_port: 0, mqtts_port: 0 }, { dataDir: dir.path });
    cleanups.push(() => server.stop());
    expect(server.tls!.names).toContain("localhost");
    expect(server.tls!.caPem).toBe(readFileSync(join(dir.path, "tls/ca.crt"), "utf8"));
    expect(certificateExpiry(server.tls, Date.now())).toMatchObject({ daysLeft: 9, expired: false, warn: true });
    const warning = server.logs.find((l) => l.includes("WARN") && l.includes("the TLS certificate"))!;
    expect(warning).toMatch(/expires on \d{4}-\d\d-\d\dT.* \(in 9 days\): renew it with `techtemp-server tls --renew`/);
  });

  test("expiry from the certificate's dates (pure)", () => {
    const tls = loadServerTls({
      tls_cert: join(made.path, "tls/server.crt"),
      tls_key: join(made.path, "tls/server.key"),
      data_dir: made.path,
    })!;
    const day = 86_400_000;
    expect(certificateExpiry(tls.info, tls.info.notAfter - 31 * day)).toEqual({ daysLeft: 31, expired: false, warn: false });
    expect(certificateExpiry(tls.info, tls.info.notAfter - 30 * day)).toMatchObject({ warn: true });
    expect(certificateExpiry(tls.info, tls.info.notAfter + day)).toMatchObject({ expired: true, warn: true });
    expect(certificateExpiry(null, 0)).toBeNull();
    expect(expiryWarning(tls.info, tls.info.notAfter - 40 * day, made.path)).toBeNull();
    expect(expiryWarning(tls.info, tls.info.notAfter + day, made.path)).toContain("expired on");
  });
});
