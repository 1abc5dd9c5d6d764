// The server's certificate: loaded once at start for HTTPS and MQTT over TLS,
// checked (parses, matches its key, not expired), described for the pages
// (when it expires, which names it covers) and for enrollment (the local CA
// a sensor should trust, when `techtemp-server tls` made one).

import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TLS_DIR, type Config } from "../config.ts";

/** Days before expiry from which the log and the pages warn. */
export const EXPIRY_WARNING_DAYS = 30;

const DAY_MS = 86_400_000;

/** What the pages and the enrollment endpoint know of the certificate (createHttp's `tls`). */
export interface TlsInfo {
  /** When the certificate expires, epoch ms. */
  notAfter: number;
  /** The names and addresses it covers (its subjectAltName). */
  names: string[];
  /** The local CA that issued it (`techtemp-server tls`), PEM, for sensors to trust; null for a certificate from elsewhere. */
  caPem: string | null;
  /** SHA-256 fingerprint of that CA (`AB:CD:…`), to compare on a sensor; null without a local CA. */
  caFingerprint: string | null;
}

/** The certificate and key to serve, and what is known about them. */
export interface ServerTls {
  /** PEM: the certificate, then its chain. */
  cert: string;
  key: string;
  info: TlsInfo;
}

/** A certificate problem at start; its message names the setting. */
export class TlsError extends Error {}

/** The names of a certificate's subjectAltName (`DNS:a, IP Address:1.2.3.4` → `["a", "1.2.3.4"]`). */
export function certificateNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? "")
    .split(/,\s*/)
    .map((entry) => entry.replace(/^(DNS|IP Address):/, ""))
    .filter((name) => name !== "");
}

/** The PEM blocks of a file, in order. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Loads the configured certificate and key (config.ts resolved which), or
 * null when TLS is not configured. Throws TlsError naming the setting when
 * the files do not hold a certificate or the key is not its key. An expired
 * certificate is still served (the server keeps storing readings over the
 * plain port); the log and the pages say so (expiryWarning).
 */
export function loadServerTls(config: Pick<Config, "tls_cert" | "tls_key" | "data_dir">): ServerTls | null {
  if (config.tls_cert === "") return null;
  const certText = readFileSync(config.tls_cert, "utf8");
  const keyText = readFileSync(config.tls_key, "utf8");
  const blocks = pemBlocks(certText);
  if (blocks.length === 0) throw new TlsError(`tls_cert ${config.tls_cert}: no PEM certificate in it`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(blocks[0]!);
  } catch (err) {
    throw new TlsError(`tls_cert ${config.tls_cert}: not a certificate (${(err as Error).message})`);
  }
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(keyText))) {
      throw new TlsError(`tls_key ${config.tls_key} is not the key of tls_cert ${config.tls_cert}`);
    }
  } catch (err) {
    if (err instanceof TlsError) throw err;
    throw new TlsError(`tls_key ${config.tls_key}: not a private key (${(err as Error).message})`);
  }
  const notAfter = Date.parse(leaf.validTo);
  const ca = localCa(config.data_dir, leaf);
  // Clients need the chain up to the CA they trust; `tls` writes it, and a CA
  // sent along lets a sensor's installer see which CA it is asked to trust.
  const chain = ca && blocks.length === 1 ? `${blocks[0]}\n${ca.pem}` : certText;
  return {
    cert: chain,
    key: keyText,
    info: { notAfter, names: certificateNames(leaf), caPem: ca?.pem ?? null, caFingerprint: ca?.fingerprint ?? null },
  };
}

/** The local CA in the data directory, when it is the one that issued `leaf`. */
function localCa(dataDir: string, leaf: X509Certificate): { pem: string; fingerprint: string } | null {
  const path = join(dataDir, TLS_DIR, "ca.crt");
  if (!existsSync(path)) return null;
  try {
    const pem = pemBlocks(readFileSync(path, "utf8"))[0];
    if (!pem) return null;
    const ca = new X509Certificate(pem);
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey) ? { pem: `${pem}\n`, fingerprint: ca.fingerprint256 } : null;
  } catch {
    return null;
  }
}

/** How to renew: the local CA's command, or replacing the configured files. */
function renewAdvice(dataDir: string): string {
  return existsSync(join(dataDir, TLS_DIR, "ca.key"))
    ? "renew it with `techtemp-server tls --renew` (as the service user; or sudo /opt/techtemp/install.sh server --tls), then restart"
    : "put a new certificate and key in place (tls_cert, tls_key), then restart";
}

/** How far a certificate is from expiring, for the pages and the log. */
export interface Expiry {
  /** Whole days left (negative once expired). */
  daysLeft: number;
  expired: boolean;
  /** Whether to warn now: expired, or within EXPIRY_WARNING_DAYS. */
  warn: boolean;
}

/** How far the certificate is from expiring at `now`; null without TLS. */
export function certificateExpiry(tls: Pick<TlsInfo, "notAfter"> | null, now: number): Expiry | null {
  if (tls === null) return null;
  const daysLeft = Math.floor((tls.notAfter - now) / DAY_MS);
  const expired = tls.notAfter <= now;
  return { daysLeft, expired, warn: expired || tls.notAfter - now <= EXPIRY_WARNING_DAYS * DAY_MS };
}

/** The warning to log (and show) when the certificate expires within EXPIRY_WARNING_DAYS, else null. */
export function expiryWarning(tls: TlsInfo | null, now: number, dataDir: string): string | null {
  const expiry = certificateExpiry(tls, now);
  if (!expiry?.warn) return null;
  const when = new Date(tls!.notAfter).toISOString();
  const what = expiry.expired ? `expired on ${when}` : `expires on ${when} (in ${expiry.daysLeft} days)`;
  return `the TLS certificate (${tls!.names.join(", ")}) ${what}: ${renewAdvice(dataDir)}`;
}
