// A local certificate authority for a home without public names: a CA made
// once, and a server certificate it signs for the server's names and
// addresses, both with `openssl` (present on Raspberry Pi OS and Debian).
// Sensors enrolled with `--tls` trust this CA only.
//
// The CA may sign only local names (a name constraint: the server's own
// names, .local, localhost, home.arpa, lan, internal), so its key, should it
// leak with the SD card, cannot vouch for anyone's bank in a browser that
// trusts it. Addresses are not constrained: Bun's TLS library (BoringSSL)
// refuses certificates from a CA with address constraints.

import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import { certificateNames, EXPIRY_WARNING_DAYS, pemBlocks } from "./certificates.ts";

/** Days a server certificate is valid: the longest Apple's systems accept from a locally trusted CA. */
export const SERVER_CERT_DAYS = 825;
/** Days the CA is valid. */
export const CA_DAYS = 3650;

/** Name suffixes the local CA may always sign for. */
const LOCAL_DOMAINS = ["local", "localhost", "home.arpa", "lan", "internal"];

/** The files of a local CA directory (`<data_dir>/tls`). */
export const tlsFiles = (dir: string) => ({
  caKey: join(dir, "ca.key"),
  caCert: join(dir, "ca.crt"),
  key: join(dir, "server.key"),
  cert: join(dir, "server.crt"),
});

/** A problem making certificates; its message says what to do. */
export class LocalCaError extends Error {}

/** The names and addresses a server certificate should cover. */
export interface Wanted {
  dns: string[];
  ips: string[];
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Whether `name` is a host name a certificate can carry. */
export const validHostName = (name: string) => HOST_NAME.test(name);
/** Whether `address` is an IPv4 or IPv6 address. */
export const validAddress = (address: string) =>
  IPV4.test(address) || (address.includes(":") && /^[0-9A-Fa-f:.]+$/.test(address));

/**
 * The server's own names and addresses: its host name (and `<host>.local`
 * for mDNS), localhost, and every address of its interfaces but IPv6
 * link-local ones (they need a zone, which no certificate can name), plus
 * the extra ones given.
 */
export function defaultNames(extra: Partial<Wanted> = {}, host = hostname(), interfaces = networkInterfaces()): Wanted {
  const dns = new Set<string>();
  if (validHostName(host)) {
    dns.add(host.toLowerCase());
    if (!host.includes(".")) dns.add(`${host.toLowerCase()}.local`);
  }
  dns.add("localhost");
  for (const n of extra.dns ?? []) dns.add(n.toLowerCase());
  const ips = new Set<string>(["127.0.0.1", "::1"]);
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) if (!/^fe80:/i.test(a.address)) ips.add(a.address);
  }
  for (const ip of extra.ips ?? []) ips.add(ip);
  return { dns: [...dns], ips: [...ips] };
}

/** How an address appears in a certificate's names (IPv6 written out in full, as X509Certificate shows it). */
function canonicalIp(ip: string): string {
  if (!ip.includes(":")) return ip;
  const [head, tail = ""] = ip.split("::") as [string, string?];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return groups.map((g) => parseInt(g, 16).toString(16).toUpperCase()).join(":");
}

/** Whether a certificate's names cover every wanted one. */
export function covers(names: string[], wanted: Wanted): boolean {
  const have = new Set(names.map((n) => (n.includes(":") ? canonicalIp(n) : n.toLowerCase())));
  return wanted.dns.every((n) => have.has(n.toLowerCase())) && wanted.ips.every((ip) => have.has(canonicalIp(ip)));
}

/** Runs openssl; throws LocalCaError with its message when it fails. */
function openssl(args: string[], cwd: string): void {
  let proc: ReturnType<typeof Bun.spawnSync>;
  try {
    proc = Bun.spawnSync(["openssl", ...args], {
      cwd,
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
  } catch {
    throw new LocalCaError("openssl is not installed: sudo apt-get install openssl");
  }
  if (proc.exitCode !== 0) {
    throw new LocalCaError(
      `openssl ${args[0]} failed: ${(proc.stderr ?? "").toString().trim().split("\n").slice(-3).join("; ")}`,
    );
  }
}

/** Makes a new CA in `dir` (its key mode 0600): P-256, name-constrained to local names and `dns`. */
function makeCa(dir: string, dns: string[], label: string): void {
  const files = tlsFiles(dir);
  const permitted = [
    ...new Set([...dns.filter((n) => !LOCAL_DOMAINS.some((d) => n === d || n.endsWith(`.${d}`))), ...LOCAL_DOMAINS]),
  ];
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${files.caKey}.new`,
      "-out",
      `${files.caCert}.new`,
      "-days",
      String(CA_DAYS),
      "-subj",
      `/O=TechTemp/CN=TechTemp local CA (${label.replace(/[/=\\]/g, "-")})`,
      "-addext",
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-addext",
      `nameConstraints=critical,${permitted.map((n) => `permitted;DNS:${n}`).join(",")}`,
    ],
    dir,
  );
  chmodSync(`${files.caKey}.new`, 0o600);
  renameSync(`${files.caKey}.new`, files.caKey);
  renameSync(`${files.caCert}.new`, files.caCert);
}

/** Signs a new server certificate for `wanted` with the CA in `dir`, checks it against the CA, then puts it in place. */
function issue(dir: string, wanted: Wanted, days: number): void {
  const files = tlsFiles(dir);
  const san = [...wanted.dns.map((n) => `DNS:${n}`), ...wanted.ips.map((ip) => `IP:${ip}`)].join(",");
  writeFileSync(
    join(dir, "server.ext.new"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=${san}`,
    ].join("\n") + "\n",
  );
  try {
    openssl(
      [
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key.new",
        "-out",
        "server.csr.new",
        "-subj",
        `/CN=${wanted.dns[0] ?? "localhost"}`,
      ],
      dir,
    );
    chmodSync(join(dir, "server.key.new"), 0o600);
    const serial = `0x${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex")}`;
    openssl(
      [
        "x509",
        "-req",
        "-in",
        "server.csr.new",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        serial,
        "-days",
        String(days),
      ].concat(["-extfile", "server.ext.new", "-out", "server.leaf.new"]),
      dir,
    );
    try {
      openssl(["verify", "-CAfile", "ca.crt", "server.leaf.new"], dir);
    } catch (err) {
      throw new LocalCaError(
        `${(err as Error).message}: the local CA may not sign one of ${wanted.dns.join(", ")}; make a new CA with --new-ca (sensors enrolled with --tls must then be given the new ca.crt)`,
      );
    }
    // The file clients get: the server's certificate, then the CA's (the chain).
    writeFileSync(
      join(dir, "server.crt.new"),
      readFileSync(join(dir, "server.leaf.new"), "utf8") + readFileSync(files.caCert, "utf8"),
    );
    renameSync(join(dir, "server.key.new"), files.key);
    renameSync(join(dir, "server.crt.new"), files.cert);
  } finally {
    for (const f of ["server.ext.new", "server.csr.new", "server.leaf.new", "server.key.new", "server.crt.new"])
      rmSync(join(dir, f), { force: true });
  }
}

/** What `ensureCertificates` did and what there is now. */
export interface LocalCaResult {
  caCreated: boolean;
  issued: boolean;
  /** Why a certificate was issued (or why not). */
  why: string;
  names: string[];
  notAfter: number;
  caFingerprint: string;
}

/**
 * Makes sure `dir` holds a local CA and a server certificate from it that
 * covers `wanted` and has more than EXPIRY_WARNING_DAYS left. Changes
 * nothing when all is so (a second run is a no-op), unless `renew` (a new
 * server certificate) or `newCa` (a new CA, then a new certificate).
 */
export function ensureCertificates(
  dir: string,
  wanted: Wanted,
  options: { renew?: boolean; newCa?: boolean; days?: number; now?: number } = {},
): LocalCaResult {
  const now = options.now ?? Date.now();
  const files = tlsFiles(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  let caCreated = false;
  if (options.newCa || !existsSync(files.caKey) || !existsSync(files.caCert)) {
    makeCa(dir, wanted.dns, wanted.dns[0] ?? "localhost");
    caCreated = true;
  }
  const ca = new X509Certificate(readFileSync(files.caCert));
  let why = "";
  if (caCreated) why = "a new CA";
  else if (options.renew) why = "--renew";
  else if (!existsSync(files.cert) || !existsSync(files.key)) why = "no server certificate yet";
  else {
    const current = new X509Certificate(pemBlocks(readFileSync(files.cert, "utf8"))[0] ?? "");
    if (!current.checkIssued(ca) || !current.verify(ca.publicKey)) why = "the certificate is not from this CA";
    else if (!covers(certificateNames(current), wanted)) why = "names or addresses were added";
    else if (Date.parse(current.validTo) - now <= EXPIRY_WARNING_DAYS * 86_400_000) why = "it expires within 30 days";
  }
  if (why !== "") issue(dir, wanted, options.days ?? SERVER_CERT_DAYS);
  const leaf = new X509Certificate(pemBlocks(readFileSync(files.cert, "utf8"))[0]!);
  return {
    caCreated,
    issued: why !== "",
    why: why || "up to date",
    names: certificateNames(leaf),
    notAfter: Date.parse(leaf.validTo),
    caFingerprint: ca.fingerprint256,
  };
}
