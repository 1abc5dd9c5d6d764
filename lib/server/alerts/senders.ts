// Delivering one notification to one channel: ntfy (its JSON publish
// endpoint, priority and tags by severity), a webhook (the notification as
// JSON, signed with HMAC-SHA256 like GitHub's X-Hub-Signature-256) or e-mail
// (smtp.ts). A failure throws a SendError that says whether trying again can
// help (a refused login, a 404 cannot; a timeout, a 503 can).

import { createHmac } from "node:crypto";
import type { ChannelKind, ChannelConfig, EmailConfig, NtfyConfig, WebhookConfig } from "./channels.ts";
import type { Notification } from "./messages.ts";
import { sendMail, SmtpError } from "./smtp.ts";

/** A delivery that failed; `permanent` when trying again will not help. */
export class SendError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/** The header carrying a webhook's signature: `sha256=` + hex HMAC-SHA256 of the body with the channel's secret. */
export const SIGNATURE_HEADER = "X-TechTemp-Signature-256";

/** The signature of a webhook body. */
export const signBody = (secret: string, body: string): string =>
  `sha256=${createHmac("sha256", secret).update(body, "utf8").digest("hex")}`;

/** ntfy priority (1-5) and tags (emoji short codes) of a notification. */
export function ntfyLook(n: Pick<Notification, "event" | "severity">): { priority: number; tags: string[] } {
  if (n.event === "resolved") return { priority: 3, tags: ["white_check_mark"] };
  if (n.event === "digest") return { priority: 2, tags: ["clipboard"] };
  if (n.event === "test") return { priority: 3, tags: ["bell"] };
  if (n.severity === "critical") return { priority: 5, tags: ["rotating_light"] };
  if (n.severity === "warning") return { priority: 4, tags: ["warning"] };
  return { priority: 3, tags: ["information_source"] };
}

const USER_AGENT = "TechTemp-alerts";

/** POSTs and checks the answer: 2xx delivered; 408, 429 and 5xx worth another try; any other answer not. */
async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  ca: string | null,
  signal: AbortSignal,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "user-agent": USER_AGENT, ...headers },
      redirect: "manual",
      signal,
      ...(ca ? { tls: { ca } } : {}),
    } as RequestInit);
  } catch (err) {
    const e = err as Error;
    const why = e.name === "TimeoutError" || e.name === "AbortError" ? "no answer in time" : e.message;
    throw new SendError(`${url}: ${why}`, false);
  }
  // The body is read (and dropped) so the connection is freed; a hanging body is cut by the same signal.
  const text = await res.text().catch(() => "");
  if (res.ok) return;
  const retry = res.status === 408 || res.status === 429 || res.status >= 500;
  const detail = text.replace(/\s+/g, " ").trim().slice(0, 200);
  throw new SendError(`${url} answered ${res.status}${detail ? `: ${detail}` : ""}`, !retry);
}

function ntfy(c: NtfyConfig, n: Notification, signal: AbortSignal): Promise<void> {
  const { priority, tags } = ntfyLook(n);
  // The JSON form (POST to the server's root with the topic inside) carries any character; headers could not.
  const body = JSON.stringify({
    topic: c.topic,
    title: n.title,
    message: n.message,
    priority,
    tags,
    ...(n.link ? { click: n.link } : {}),
  });
  return post(`${c.url}/`, body, c.token ? { authorization: `Bearer ${c.token}` } : {}, c.ca, signal);
}

function webhook(c: WebhookConfig, n: Notification, signal: AbortSignal): Promise<void> {
  const body = JSON.stringify(n);
  const headers = { [SIGNATURE_HEADER]: signBody(c.secret, body), "X-TechTemp-Event": n.event, "X-TechTemp-Delivery": n.id };
  return post(c.url, body, headers, c.ca, signal);
}

async function email(c: EmailConfig, n: Notification, signal: AbortSignal): Promise<void> {
  const text = `${n.message}${n.link ? `\n\n${n.link}` : ""}\n\n-- \nTechTemp`;
  try {
    await sendMail(
      c,
      { from: c.from, to: c.to, subject: n.title, text, messageId: `${n.id}@techtemp`, headers: { "X-TechTemp-Event": n.event } },
      signal,
    );
  } catch (err) {
    if (err instanceof SmtpError) throw new SendError(`${c.host}:${c.port}: ${err.message}`, err.permanent);
    throw new SendError(`${c.host}:${c.port}: ${(err as Error).message}`, false);
  }
}

/** Delivers `n` to a channel of `kind` with `config`; resolves once the receiver accepted it. */
export function deliver(kind: ChannelKind, config: ChannelConfig, n: Notification, signal: AbortSignal): Promise<void> {
  switch (kind) {
    case "ntfy":
      return ntfy(config as NtfyConfig, n, signal);
    case "webhook":
      return webhook(config as WebhookConfig, n, signal);
    case "email":
      return email(config as EmailConfig, n, signal);
  }
}
