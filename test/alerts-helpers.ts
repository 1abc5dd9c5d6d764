// Helpers of the alert tests: real local stand-ins for what notifications go
// to (an HTTP receiver for ntfy and webhooks that can fail or hang, an SMTP
// receiver with STARTTLS, implicit TLS and login, certificates from a test CA
// made with openssl), mosquitto_sub on the alert topics, and readings
// published through the broker.

import type { MqttClient } from "mqtt";
import { createServer as netServer, type Server, type Socket } from "node:net";
import { createSecureContext, TLSSocket } from "node:tls";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { legacyPayload, publishAcked, readingTopic, run, waitFor, type TestServer } from "./helpers.ts";

/** One request an HTTP receiver got. */
export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  json: any;
}

/** A local HTTP receiver standing in for ntfy or a webhook. */
export interface HttpReceiver {
  url: string;
  got: Received[];
  /** Answer this status to the next `n` requests (then 200 again). */
  failNext(n: number, status?: number): void;
  /** Hold every request without answering until `release()` (or the receiver stops). */
  hang(): void;
  release(): void;
  /** Requests being held now. */
  readonly held: number;
  stop(): void;
}

/** Starts an HTTP receiver on 127.0.0.1, port 0. */
export function httpReceiver(): HttpReceiver {
  const got: Received[] = [];
  let failures = 0;
  let failStatus = 500;
  let hanging = false;
  const waiting = new Set<() => void>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const body = await req.text();
      if (hanging) {
        await new Promise<void>((resolve) => waiting.add(resolve));
        return new Response("late", { status: 503 });
      }
      if (failures > 0) {
        failures--;
        return new Response("try later", { status: failStatus });
      }
      let json: unknown = null;
      try {
        json = JSON.parse(body);
      } catch {}
      got.push({ path: new URL(req.url).pathname, headers: Object.fromEntries(req.headers.entries()), body, json });
      return Response.json({ ok: true });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    got,
    failNext(n, status = 500) {
      failures = n;
      failStatus = status;
    },
    hang() {
      hanging = true;
    },
    release() {
      hanging = false;
      for (const w of waiting) w();
      waiting.clear();
    },
    get held() {
      return waiting.size;
    },
    stop() {
      this.release();
      server.stop(true);
    },
  };
}

/** A test CA and a certificate for 127.0.0.1 and localhost signed by it (openssl), as PEM. */
export async function testCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = (name: string) => join(dir, name);
  const steps = [
    ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"].concat([
      "-subj",
      "/CN=TechTemp test CA",
      "-keyout",
      f("ca.key"),
      "-out",
      f("ca.pem"),
    ]),
    ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost"].concat([
      "-keyout",
      f("server.key"),
      "-out",
      f("server.csr"),
    ]),
    [
      "openssl",
      "x509",
      "-req",
      "-in",
      f("server.csr"),
      "-CA",
      f("ca.pem"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
    ].concat(["-out", f("server.pem"), "-extfile", f("ext.cnf")]),
  ];
  await Bun.write(f("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  for (const cmd of steps) {
    const r = await run(cmd);
    if (r.code !== 0) throw new Error(`${cmd.slice(0, 3).join(" ")}: ${r.stderr}`);
  }
  return {
    ca: readFileSync(f("ca.pem"), "utf8"),
    cert: readFileSync(f("server.pem"), "utf8"),
    key: readFileSync(f("server.key"), "utf8"),
  };
}

/** A message an SMTP receiver got. */
export interface Mail {
  from: string;
  to: string[];
  /** The raw message (headers and body). */
  data: string;
  /** Over TLS (implicit or after STARTTLS). */
  secure: boolean;
  /** The user that logged in, or null. */
  user: string | null;
  subject: string;
  /** The text, decoded from base64. */
  text: string;
}

/** A small SMTP server written for the tests: STARTTLS or implicit TLS, AUTH PLAIN and LOGIN. */
export interface SmtpReceiver {
  port: number;
  mails: Mail[];
  /** Every command line received (passwords included: it is a test). */
  commands: string[];
  stop(): void;
}

/** Starts an SMTP receiver on 127.0.0.1 (port 0): `mode` starttls offers STARTTLS, tls speaks TLS from the first byte. */
export async function smtpReceiver(opts: {
  mode: "starttls" | "tls";
  cert: string;
  key: string;
  user: string;
  password: string;
}): Promise<SmtpReceiver> {
  const context = createSecureContext({ cert: opts.cert, key: opts.key });
  const mails: Mail[] = [];
  const commands: string[] = [];
  const sockets = new Set<Socket>();

  function session(raw: Socket): void {
    sockets.add(raw);
    raw.on("error", () => {});
    let sock: Socket = raw;
    let secure = false;
    let user: string | null = null;
    let from = "";
    let to: string[] = [];
    let data: string[] | null = null;
    let authLogin: "user" | "pass" | null = null;
    let loginUser = "";
    let buffer = "";
    const say = (line: string): void => void sock.write(`${line}\r\n`);
    const decodeSubject = (s: string) =>
      s.replace(/=\?UTF-8\?B\?([^?]+)\?=/g, (_, b) => Buffer.from(b, "base64").toString("utf8"));
    function finishMail(lines: string[]) {
      const text = lines.map((l) => (l.startsWith("..") ? l.slice(1) : l)).join("\r\n");
      const [head, ...rest] = text.split("\r\n\r\n");
      const subject = decodeSubject(/^Subject: (.*)$/m.exec(head!)?.[1] ?? "");
      mails.push({
        from,
        to,
        data: text,
        secure,
        user,
        subject,
        text: Buffer.from(rest.join("\r\n\r\n"), "base64").toString("utf8"),
      });
    }
    function onLine(line: string): void {
      if (data !== null) {
        if (line === ".") {
          finishMail(data);
          data = null;
          return say("250 queued");
        }
        data.push(line);
        return;
      }
      commands.push(line);
      if (authLogin === "user") {
        loginUser = Buffer.from(line, "base64").toString();
        authLogin = "pass";
        return say(`334 ${Buffer.from("Password:").toString("base64")}`);
      }
      if (authLogin === "pass") {
        authLogin = null;
        const ok = loginUser === opts.user && Buffer.from(line, "base64").toString() === opts.password;
        if (ok) user = loginUser;
        return say(ok ? "235 ok" : "535 5.7.8 authentication failed");
      }
      const [verb = "", ...args] = line.split(" ");
      switch (verb.toUpperCase()) {
        case "EHLO": {
          const ext = secure ? ["AUTH PLAIN LOGIN", "8BITMIME"] : opts.mode === "starttls" ? ["STARTTLS"] : [];
          sock.write(
            ["250-test.local hello", ...ext.map((e, i) => `250${i === ext.length - 1 ? " " : "-"}${e}`)].join("\r\n") + "\r\n",
          );
          if (ext.length === 0) say("250 ok");
          return;
        }
        case "STARTTLS": {
          say("220 go ahead");
          raw.removeAllListeners("data");
          const tls = new TLSSocket(raw, { isServer: true, secureContext: context });
          tls.on("error", () => {});
          sock = tls;
          secure = true;
          tls.on("data", feed);
          return;
        }
        case "AUTH": {
          if (!secure) return say("538 5.7.11 encryption required");
          if (args[0]?.toUpperCase() === "PLAIN") {
            const [, u, p] = Buffer.from(args[1] ?? "", "base64")
              .toString()
              .split("\0");
            const ok = u === opts.user && p === opts.password;
            if (ok) user = u!;
            return say(ok ? "235 ok" : "535 5.7.8 authentication failed");
          }
          authLogin = "user";
          return say(`334 ${Buffer.from("Username:").toString("base64")}`);
        }
        case "MAIL":
          if (user === null) return say("530 5.7.0 authentication required");
          from = /<(.*)>/.exec(line)?.[1] ?? "";
          to = [];
          return say("250 ok");
        case "RCPT":
          to.push(/<(.*)>/.exec(line)?.[1] ?? "");
          return say("250 ok");
        case "DATA":
          data = [];
          return say("354 go on");
        case "QUIT":
          say("221 bye");
          return void sock.end();
        default:
          return say("502 not implemented");
      }
    }
    function feed(chunk: Buffer): void {
      buffer += chunk.toString("utf8");
      let i: number;
      while ((i = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        onLine(line);
      }
    }
    if (opts.mode === "tls") {
      const tls = new TLSSocket(raw, { isServer: true, secureContext: context });
      tls.on("error", () => {});
      sock = tls;
      secure = true;
      tls.on("data", feed);
    } else raw.on("data", feed);
    say("220 test.local ESMTP");
  }

  const server: Server = netServer(session);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    mails,
    commands,
    stop() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** mosquitto_sub on a topic filter, collecting `topic payload` lines until stopped. */
export function mosquittoSub(server: Pick<TestServer, "mqttPort" | "mosquittoLogin">, topic: string) {
  const proc = Bun.spawn(
    ["mosquitto_sub", "-h", "127.0.0.1", "-p", String(server.mqttPort), ...server.mosquittoLogin, "-t", topic, "-v", "-q", "1"],
    {
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const lines: string[] = [];
  void (async () => {
    let rest = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      rest += new TextDecoder().decode(chunk);
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts.filter(Boolean));
    }
  })();
  return {
    lines,
    /** The alert states received, parsed: [topic, payload or null for a cleared one]. */
    states: () =>
      lines.map((l) => {
        const i = l.indexOf(" ");
        const payload = i < 0 ? "" : l.slice(i + 1);
        return [i < 0 ? l : l.slice(0, i), payload ? JSON.parse(payload) : null] as [string, any];
      }),
    stop: () => proc.kill(),
  };
}

/** Publishes readings of one device one after the other (each acknowledged = stored): [minutes after `base`, temperature, humidity?]. */
export async function feed(
  client: MqttClient,
  uid: string,
  base: number,
  readings: [minute: number, t: number, h?: number][],
): Promise<void> {
  for (const [minute, t, h = 50] of readings)
    await publishAcked(client, readingTopic(uid), legacyPayload(t, h, base + minute * 60_000));
}

/** Waits until the receiver got `n` requests (or more), then returns them. */
export const received = (r: HttpReceiver, n: number, what = `${n} notifications`): Promise<Received[]> =>
  waitFor(() => r.got.length >= n, 15_000, what).then(() => r.got);

/**
 * The scripted scenario of issue 12, one reading a minute: the temperature
 * rises past 26 °C, hovers around it (dipping below resets the wait), stays
 * above for more than 10 minutes, hovers again above 25.5 (the hysteresis)
 * and drops. A rule "above 26 °C for 10 min, hysteresis 0.5" must fire once
 * (at minute 20) and resolve once (at minute 25).
 */
export const SCENARIO: [number, number][] = [
  [0, 24],
  [1, 24.5],
  [2, 25],
  [3, 25.5],
  [4, 25.8],
  [5, 26.2],
  [6, 26.4],
  [7, 25.9],
  [8, 26.1],
  [9, 25.95],
  [10, 26.3],
  [11, 26.5],
  [12, 26.8],
  [13, 27.1],
  [14, 27.4],
  [15, 27.2],
  [16, 27],
  [17, 26.9],
  [18, 26.7],
  [19, 26.6],
  [20, 26.4],
  [21, 25.9],
  [22, 26.1],
  [23, 25.7],
  [24, 26.2],
  [25, 25.4],
  [26, 25],
  [27, 24.8],
];
