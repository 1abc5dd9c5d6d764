// A small SMTP client (RFC 5321) for alert e-mails: implicit TLS (port
// 465), STARTTLS (587; refused when the server does not offer it, so a
// password never crosses the network in clear by accident) or plain (a local
// relay), AUTH PLAIN or LOGIN, one message to a few recipients. Certificates
// are checked against the system's CAs, or only against `ca` when given (a
// home mail server with its own CA). Every step waits at most until `signal`
// aborts; a 5xx answer is permanent (retrying will not help), anything else
// may be tried again.

import { createConnection, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";

/** How to reach the mail server. */
export interface SmtpOptions {
  host: string;
  port: number;
  security: "tls" | "starttls" | "none";
  username: string | null;
  password: string | null;
  /** PEM certificates to trust instead of the system's. */
  ca: string | null;
}

/** One message. */
export interface Mail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  /** Stable per notification, so a receiver can tell a repeat. */
  messageId: string;
  headers?: Record<string, string>;
}

/** A refusal or failure of the mail server; `permanent` when trying again will not help. */
export class SmtpError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

interface Reply {
  code: number;
  text: string;
}

/** Reads SMTP replies (multi-line ones joined) from a socket that may be swapped for its TLS upgrade. */
function replyReader() {
  let buffer = "";
  let lines: string[] = [];
  const ready: Reply[] = [];
  let waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void } | null = null;
  let failure: Error | null = null;

  function feed(chunk: Buffer | string): void {
    buffer += chunk.toString("utf8");
    let i: number;
    while ((i = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, i).replace(/\r$/, "");
      buffer = buffer.slice(i + 1);
      lines.push(line);
      // "250-…" continues a reply, "250 …" ends it.
      if (/^\d{3}(?: |$)/.test(line)) {
        const reply = { code: Number(line.slice(0, 3)), text: lines.map((l) => l.slice(4)).join("\n") };
        lines = [];
        if (waiting) {
          const w = waiting;
          waiting = null;
          w.resolve(reply);
        } else ready.push(reply);
      }
    }
  }

  return {
    feed,
    fail(err: Error): void {
      failure ??= err;
      if (waiting) {
        const w = waiting;
        waiting = null;
        w.reject(failure);
      }
    },
    next(): Promise<Reply> {
      const r = ready.shift();
      if (r) return Promise.resolve(r);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
  };
}

/** RFC 2047: a header value that may hold any character (and never a line break). */
export const encodeWord = (s: string): string =>
  /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s).toString("base64")}?=`;

/** The message as sent: headers, then the text in base64 (no line of it can be a lone "."). */
export function formatMail(mail: Mail, date: Date): string {
  const body = Buffer.from(mail.text.replace(/\r?\n/g, "\r\n")).toString("base64").replace(/.{76}/g, "$&\r\n");
  const headers = {
    From: `TechTemp <${mail.from}>`,
    To: mail.to.join(", "),
    Subject: encodeWord(mail.subject.replace(/[\r\n]+/g, " ")),
    Date: date.toUTCString().replace("GMT", "+0000"),
    "Message-ID": `<${mail.messageId}>`,
    "MIME-Version": "1.0",
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Transfer-Encoding": "base64",
    ...mail.headers,
  };
  return `${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v.replace(/[\r\n]+/g, " ")}`)
    .join("\r\n")}\r\n\r\n${body.replace(/\r\n$/, "")}\r\n`;
}

/** Sends one message; resolves once the server accepted it (250 after DATA). */
export async function sendMail(options: SmtpOptions, mail: Mail, signal: AbortSignal): Promise<void> {
  const servername = isIP(options.host) ? undefined : options.host;
  const tlsOptions = { servername, ca: options.ca ?? undefined, rejectUnauthorized: true };
  const reader = replyReader();
  let socket: Socket | TLSSocket;
  const attach = (s: Socket | TLSSocket) => {
    s.on("data", reader.feed);
    s.on("error", (e) => reader.fail(new SmtpError(`${options.host}:${options.port}: ${e.message}`, false)));
    s.on("close", () => reader.fail(new SmtpError(`${options.host}:${options.port} closed the connection`, false)));
  };
  const onAbort = () => {
    reader.fail(new SmtpError(`no answer from ${options.host}:${options.port} in time`, false));
    socket.destroy();
  };
  if (signal.aborted) throw new SmtpError("aborted before connecting", false);
  socket =
    options.security === "tls"
      ? tlsConnect({ host: options.host, port: options.port, ...tlsOptions })
      : createConnection({ host: options.host, port: options.port });
  attach(socket);
  signal.addEventListener("abort", onAbort, { once: true });

  /** Sends a command (null: only reads) and expects one of `codes`. */
  async function step(command: string | null, codes: number[], what: string): Promise<Reply> {
    if (command !== null) socket.write(`${command}\r\n`);
    const reply = await reader.next();
    if (!codes.includes(reply.code)) {
      throw new SmtpError(`${what}: the server answered ${reply.code} ${reply.text.split("\n")[0]}`, reply.code >= 500);
    }
    return reply;
  }

  try {
    await step(null, [220], "greeting");
    let ehlo = await step("EHLO techtemp", [250], "EHLO");
    if (options.security === "starttls") {
      if (!/^STARTTLS$/im.test(ehlo.text)) {
        throw new SmtpError(`${options.host} does not offer STARTTLS; use security "tls" (port 465) or a server that does`, true);
      }
      await step("STARTTLS", [220], "STARTTLS");
      socket.removeAllListeners("data");
      socket.removeAllListeners("close");
      const plain = socket;
      const secure = tlsConnect({ socket: plain as Socket, ...tlsOptions });
      await new Promise<void>((resolve, reject) => {
        secure.once("secureConnect", resolve);
        secure.once("error", (e) => reject(new SmtpError(`TLS with ${options.host}: ${e.message}`, false)));
      });
      socket = secure;
      attach(socket);
      ehlo = await step("EHLO techtemp", [250], "EHLO after STARTTLS");
    }
    if (options.username !== null) {
      const auth = /^AUTH[ =](.*)$/im.exec(ehlo.text)?.[1]?.toUpperCase().split(/\s+/) ?? [];
      const user = options.username;
      const pass = options.password ?? "";
      try {
        if (auth.includes("PLAIN") || !auth.includes("LOGIN")) {
          await step(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString("base64")}`, [235], "login");
        } else {
          await step("AUTH LOGIN", [334], "login");
          await step(Buffer.from(user).toString("base64"), [334], "login");
          await step(Buffer.from(pass).toString("base64"), [235], "login");
        }
      } catch (err) {
        // 535: the name or password is wrong; retrying would only lock the account.
        if (err instanceof SmtpError && /answered 5/.test(err.message))
          throw new SmtpError(`${err.message} (check the user name and password)`, true);
        throw err;
      }
    }
    await step(`MAIL FROM:<${mail.from}>`, [250], "sender");
    for (const to of mail.to) await step(`RCPT TO:<${to}>`, [250, 251], `recipient ${to}`);
    await step("DATA", [354], "DATA");
    await step(`${formatMail(mail, new Date()).replace(/^\./gm, "..")}.`, [250], "message");
    socket.write("QUIT\r\n");
  } finally {
    signal.removeEventListener("abort", onAbort);
    socket.end();
    // The QUIT answer is not awaited; the connection is closed soon after either way.
    setTimeout(() => socket.destroy(), 1000).unref?.();
  }
}
