// Notification channels as a person configures them: ntfy (server and
// topic), a webhook (URL and the HMAC secret it signs with) and e-mail (an
// SMTP server). The check turns input into a channel's config or a
// DomainError naming the field; secrets (ntfy token, webhook secret, SMTP
// password) are kept in the database and never shown again.

import { invalid } from "../../shared/errors.ts";
import { newSecret } from "../auth/secrets.ts";
import type { ChannelRow } from "../store/store.ts";
import { SEVERITIES, type Severity } from "./rules.ts";

/** The kinds of channel. (MQTT needs none: alert states are always published on the broker.) */
export const CHANNEL_KINDS = ["ntfy", "webhook", "email"] as const;
/** A channel's kind. */
export type ChannelKind = (typeof CHANNEL_KINDS)[number];
/** Most channels a home may have. */
export const MAX_CHANNELS = 50;

/** ntfy: POST to the server with the topic (a self-hosted server works the same); `token` = an access token. */
export interface NtfyConfig {
  url: string;
  topic: string;
  token: string | null;
  ca: string | null;
}
/** A webhook: JSON POSTed to `url`, signed with `secret` (HMAC-SHA256). */
export interface WebhookConfig {
  url: string;
  secret: string;
  ca: string | null;
}
/** E-mail over SMTP. */
export interface EmailConfig {
  host: string;
  port: number;
  security: "starttls" | "tls" | "none";
  username: string | null;
  password: string | null;
  from: string;
  to: string[];
  ca: string | null;
}
/** Any channel's config. */
export type ChannelConfig = NtfyConfig | WebhookConfig | EmailConfig;

/** What creating or changing a channel takes (fields of every kind; each kind reads its own). */
export type ChannelInput = Partial<
  Record<
    | "name"
    | "kind"
    | "min_severity"
    | "enabled"
    | "url"
    | "topic"
    | "token"
    | "secret"
    | "host"
    | "port"
    | "security"
    | "username"
    | "password"
    | "from"
    | "to"
    | "ca",
    unknown
  >
>;

/** A channel checked: what the store keeps. */
export interface CheckedChannel {
  name: string;
  kind: ChannelKind;
  min_severity: Severity;
  enabled: boolean;
  config: ChannelConfig;
  /** A webhook secret made up because none was given: shown once. */
  generatedSecret: string | null;
}

const EMAIL = /^[^\s@<>(),;:"\\]+@[A-Za-z0-9.-]+$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$|^\[?[0-9a-fA-F:.]+\]?$/;
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);
const DEFAULT_PORTS = { starttls: 587, tls: 465, none: 25 } as const;

/** Text of at most `max` characters, or null when absent or empty. */
function text(input: ChannelInput, field: keyof ChannelInput, max: number): string | null {
  const v = input[field];
  if (v === undefined || v === null || v === "") return null;
  if (typeof v !== "string") throw invalid(field, "must be text");
  const s = v.trim();
  if (s.length > max) throw invalid(field, `must be at most ${max} characters`);
  return s === "" ? null : s;
}

function required(input: ChannelInput, field: keyof ChannelInput, max: number, what: string): string {
  const v = text(input, field, max);
  if (v === null) throw invalid(field, what);
  return v;
}

function httpUrl(input: ChannelInput, field: keyof ChannelInput, what: string): string {
  const v = required(input, field, 500, what);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw invalid(field, `${JSON.stringify(v)} is not a URL; ${what}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalid(field, "must start with http:// or https://");
  if (url.username || url.password) throw invalid(field, "must not hold a user name or password (use the token or secret field)");
  return v.replace(/\/+$/, "");
}

function pem(input: ChannelInput): string | null {
  const v = text(input, "ca", 20_000);
  if (v !== null && !/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----$/.test(v)) {
    throw invalid("ca", "must be PEM certificates (-----BEGIN CERTIFICATE----- …), or empty to trust the system's CAs");
  }
  return v;
}

/**
 * Checks a channel: `input` over `base` (a channel being changed; its secrets
 * stay unless given anew, and its kind cannot change). Throws
 * `invalid(field, …)` naming the field at fault.
 */
export function checkChannel(
  input: ChannelInput,
  base?: { name: string; kind: ChannelKind; min_severity: string; enabled: boolean; config: ChannelConfig },
): CheckedChannel {
  const m: ChannelInput = base
    ? { ...base.config, name: base.name, min_severity: base.min_severity, enabled: base.enabled, ...input, kind: base.kind }
    : input;
  const kind = m.kind;
  if (typeof kind !== "string" || !(CHANNEL_KINDS as readonly string[]).includes(kind)) {
    throw invalid("kind", `give one of ${CHANNEL_KINDS.join(", ")}`);
  }
  const name = required(m, "name", 50, "give the channel a name");
  const sev = m.min_severity ?? "info";
  if (typeof sev !== "string" || !(SEVERITIES as readonly string[]).includes(sev)) {
    throw invalid("min_severity", `give one of ${SEVERITIES.join(", ")}`);
  }
  if (m.enabled !== undefined && typeof m.enabled !== "boolean") throw invalid("enabled", "give true or false");
  const enabled = m.enabled !== false;
  let config: ChannelConfig;
  let generatedSecret: string | null = null;
  switch (kind as ChannelKind) {
    case "ntfy": {
      const url = httpUrl(m, "url", "give the ntfy server, e.g. https://ntfy.sh");
      const topic = required(m, "topic", 64, "give the topic to publish to");
      if (!/^[-_A-Za-z0-9]{1,64}$/.test(topic)) throw invalid("topic", "must be 1-64 characters of A-Z a-z 0-9 _ -");
      config = { url, topic, token: text(m, "token", 200), ca: pem(m) };
      break;
    }
    case "webhook": {
      const url = httpUrl(m, "url", "give the URL to POST to");
      let secret = text(m, "secret", 200);
      if (secret === null) secret = generatedSecret = newSecret("whsec_");
      else if (secret.length < 16) throw invalid("secret", "must be at least 16 characters (or empty to have one made)");
      config = { url, secret, ca: pem(m) };
      break;
    }
    case "email": {
      const host = required(m, "host", 200, "give the mail server's name or address");
      if (!HOST.test(host)) throw invalid("host", `${JSON.stringify(host)} is not a host name or address`);
      const security = m.security ?? "starttls";
      if (security !== "starttls" && security !== "tls" && security !== "none") {
        throw invalid("security", "give starttls (port 587), tls (port 465) or none (a local relay)");
      }
      let port: number = DEFAULT_PORTS[security];
      if (m.port !== undefined && m.port !== null && m.port !== "") {
        const n = typeof m.port === "number" ? m.port : typeof m.port === "string" && /^\d+$/.test(m.port) ? Number(m.port) : NaN;
        if (!Number.isInteger(n) || n < 1 || n > 65535) throw invalid("port", "must be a port number 1-65535");
        port = n;
      }
      const username = text(m, "username", 200);
      const password = text(m, "password", 200);
      if (username !== null && password === null) throw invalid("password", "give the password for the user name");
      if (username !== null && security === "none" && !LOCAL_HOSTS.has(host)) {
        throw invalid("security", "a login needs starttls or tls: the password would cross the network in clear");
      }
      const from = required(m, "from", 200, "give the sender's address");
      if (!EMAIL.test(from)) throw invalid("from", `${JSON.stringify(from)} is not an e-mail address`);
      const toText = Array.isArray(m.to) ? m.to.join(",") : m.to;
      const to = (typeof toText === "string" ? toText : "")
        .split(/[,;\s]+/)
        .map((s) => s.trim())
        .filter(Boolean);
      if (to.length === 0) throw invalid("to", "give one or more addresses, separated by commas");
      if (to.length > 10) throw invalid("to", "at most 10 addresses");
      for (const a of to)
        if (!EMAIL.test(a) || a.length > 200) throw invalid("to", `${JSON.stringify(a)} is not an e-mail address`);
      config = { host, port, security, username, password, from, to, ca: pem(m) };
      break;
    }
  }
  return { name, kind: kind as ChannelKind, min_severity: sev as Severity, enabled, config, generatedSecret };
}

/** A stored channel's config. */
export const configOf = (row: Pick<ChannelRow, "config">): ChannelConfig => JSON.parse(row.config) as ChannelConfig;

/** A channel as the API and pages show it: every setting but its secrets, which show as `…_set`. */
export function channelJson(row: ChannelRow) {
  const c = configOf(row) as Partial<NtfyConfig & WebhookConfig & EmailConfig>;
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const shown =
    row.kind === "ntfy"
      ? { url: c.url, topic: c.topic, token_set: Boolean(c.token) }
      : row.kind === "webhook"
        ? { url: c.url, secret_set: Boolean(c.secret) }
        : {
            host: c.host,
            port: c.port,
            security: c.security,
            username: c.username,
            password_set: Boolean(c.password),
            from: c.from,
            to: c.to,
          };
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    min_severity: row.min_severity,
    enabled: row.enabled === 1,
    ...shown,
    ca_set: Boolean(c.ca),
    created_at: iso(row.created_at),
    last_ok_at: iso(row.last_ok_at),
    last_error: row.last_error,
    last_error_at: iso(row.last_error_at),
  };
}
