// `techtemp-server tls` (`bun server.ts tls`): a local CA and a server
// certificate for HTTPS and MQTT over TLS, in <data_dir>/tls, where the
// server finds them at its next start. install.sh server --tls runs it.
//
//   techtemp-server tls [--name NAME[,NAME…]] [--ip ADDRESS[,ADDRESS…]] [--renew] [--new-ca]

import { join } from "node:path";
import { TLS_DIR, type Config } from "../config.ts";
import { parseCommandArgs } from "../ops/args.ts";
import { defaultNames, ensureCertificates, LocalCaError, tlsFiles, validAddress, validHostName } from "./local-ca.ts";

const USAGE = `usage: techtemp-server tls [--name NAME[,NAME...]] [--ip ADDRESS[,ADDRESS...]] [--renew] [--new-ca]
  makes a local CA and a server certificate (in <data_dir>/tls) for the host name, <host>.local,
  localhost and every address of this machine, plus the names and addresses given; restart the
  server to use a new certificate. Again later: a new certificate only when names were added or
  it expires within 30 days (--renew: now; --new-ca: a new CA too, which sensors must be given).`;

const list = (value: string | undefined) =>
  (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

const OPTIONS = {
  name: { type: "string", valid: (v: string) => list(v).length > 0 && list(v).every(validHostName) },
  ip: { type: "string", valid: (v: string) => list(v).length > 0 && list(v).every(validAddress) },
  renew: { type: "boolean" },
  "new-ca": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Runs the command; returns the exit code (2 = bad usage, 1 = it failed). */
export function runTlsCommand(config: Pick<Config, "data_dir">, args: string[], out = console.log, err = console.error): number {
  const { values, unexpected } = parseCommandArgs(args, OPTIONS);
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (unexpected !== undefined) {
    err(`tls: unexpected argument ${JSON.stringify(unexpected)} (names are host names, addresses IPv4 or IPv6)\n${USAGE}`);
    return 2;
  }
  const dir = join(config.data_dir, TLS_DIR);
  const wanted = defaultNames({ dns: list(values.name), ips: list(values.ip) });
  let result: ReturnType<typeof ensureCertificates>;
  try {
    result = ensureCertificates(dir, wanted, { renew: values.renew === true, newCa: values["new-ca"] === true });
  } catch (e) {
    if (e instanceof LocalCaError || (e as NodeJS.ErrnoException).code !== undefined) {
      err(`tls: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
  const files = tlsFiles(dir);
  const until = new Date(result.notAfter).toISOString().slice(0, 10);
  out(
    [
      result.issued
        ? `TLS certificate issued (${result.why}), valid until ${until}; restart the server to use it`
        : `TLS certificate up to date, valid until ${until}`,
      `  names        ${result.names.join(", ")}`,
      `  certificate  ${files.cert} (key ${files.key})`,
      `  local CA     ${files.caCert}${result.caCreated ? " (new)" : ""}`,
      `  CA SHA-256   ${result.caFingerprint}`,
      `  sensors:     install.sh sensor ... --tls --ca-fingerprint ${result.caFingerprint}`,
    ].join("\n"),
  );
  return 0;
}
