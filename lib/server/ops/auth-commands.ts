// Operator commands for accounts and credentials, run on the server as
// `techtemp-server COMMAND` (or `bun server.ts COMMAND`) with the server's own
// settings. They open the database like the server does and work while it
// runs (SQLite WAL). Each prints exactly one thing on stdout (a link, a token,
// a secret) so a script can take it, and its explanations on stderr:
//
//   setup-link                         the owner's first-start link (exit 1 once an owner exists)
//   reset-password NAME                a one-time link that sets NAME's password
//   token create NAME --scope read|write   an API token, shown once
//   enroll-token [--ttl MINUTES] [--uses N] a token that enrolls sensors
//   device-password UID                a new MQTT password for a device (an earlier agent's device.conf)
//
// Exit codes: 0 done, 1 refused (an owner exists, no such account or device,
// a name taken), 2 bad usage.

import { join } from "node:path";
import { DomainError } from "../../shared/errors.ts";
import { createLog } from "../../shared/log.ts";
import { createAuth } from "../auth/auth.ts";
import { ENROLL_MAX_USES, ENROLL_TTL_MINUTES } from "../auth/enrollment.ts";
import { reachableHost, secretLink } from "../auth/setup.ts";
import type { Config } from "../config.ts";
import { DB_FILE } from "../store/db.ts";
import { openStore } from "../store/store.ts";
import { parseCommandArgs, type OptionSpec } from "./args.ts";

/** The commands this module runs. */
export const AUTH_COMMANDS = ["setup-link", "reset-password", "token", "enroll-token", "device-password"] as const;

/** One of them. */
export type AuthCommand = (typeof AUTH_COMMANDS)[number];

const USAGE: Record<AuthCommand, string> = {
  "setup-link": "usage: techtemp-server setup-link",
  "reset-password": "usage: techtemp-server reset-password NAME",
  token: "usage: techtemp-server token create NAME --scope read|write",
  "enroll-token": `usage: techtemp-server enroll-token [--ttl MINUTES (${ENROLL_TTL_MINUTES.min}-${ENROLL_TTL_MINUTES.max}, default ${ENROLL_TTL_MINUTES.default})] [--uses N (${ENROLL_MAX_USES.min}-${ENROLL_MAX_USES.max}, default ${ENROLL_MAX_USES.default})]`,
  "device-password": "usage: techtemp-server device-password UID",
};

const whole = (value: string) => /^\d+$/.test(value);

/** What each option's value must be, for the message when it is not. */
const NEEDS: Record<string, string> = {
  scope: "must be read or write",
  ttl: "must be a whole number of minutes",
  uses: "must be a whole number",
};

const OPTIONS: Record<AuthCommand, { options: OptionSpec; positionals: number }> = {
  "setup-link": { options: {}, positionals: 0 },
  "reset-password": { options: {}, positionals: 1 },
  token: { options: { scope: { type: "string", valid: (v) => v === "read" || v === "write" } }, positionals: 2 },
  "enroll-token": { options: { ttl: { type: "string", valid: whole }, uses: { type: "string", valid: whole } }, positionals: 0 },
  "device-password": { options: {}, positionals: 1 },
};

/** Runs one of the commands with the server's config; returns the exit code. */
export async function runAuthCommand(command: string, args: string[], config: Config): Promise<number> {
  const name = command as AuthCommand;
  const spec = OPTIONS[name];
  const { values, positionals, unexpected } = parseCommandArgs(args, spec.options, spec.positionals);
  const usage = (problem: string) => {
    console.error(`${problem}\n${USAGE[name]}`);
    return 2;
  };
  if (unexpected !== undefined) {
    // A known option with a bad value says what it takes.
    const option = /^--(\w+)/.exec(unexpected)?.[1];
    if (option !== undefined && option in NEEDS && option in spec.options) return usage(`--${option} ${NEEDS[option]}`);
    return usage(`unexpected argument ${JSON.stringify(unexpected)}`);
  }
  if (positionals.length < spec.positionals) return usage("missing argument");
  if (name === "token" && positionals[0] !== "create") return usage(`unknown token command ${JSON.stringify(positionals[0])}`);
  if (name === "token" && values.scope === undefined) return usage("--scope read|write is required");

  // Warnings only: the commands' own output is what the person reads.
  const log = createLog({ level: "warn", sink: (line) => console.error(line) });
  const store = openStore(join(config.data_dir, DB_FILE), { log });
  try {
    const auth = createAuth({ store, settings: config, log });
    const base = `http://${reachableHost(config.host)}:${config.http_port}`;
    switch (name) {
      case "setup-link":
        console.log(secretLink(base, "/setup", auth.accounts.newSetupToken()));
        console.error("Open it within 24 hours to create the owner account; an earlier setup link no longer works.");
        return 0;
      case "reset-password": {
        const { token, user } = auth.accounts.newResetToken(positionals[0]!);
        console.log(secretLink(base, "/reset", token));
        console.error(`Open it within an hour to set a new password for ${user.name} (${user.role}).`);
        return 0;
      }
      case "token": {
        const { token, row } = auth.tokens.create(positionals[1]!, String(values.scope) as "read" | "write");
        console.log(token);
        console.error(`API token ${row.name} (${row.scope}); shown only now. MQTT tools: user ${row.name}, password the token.`);
        return 0;
      }
      case "enroll-token": {
        const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
        const uses = values.uses === undefined ? undefined : Number(values.uses);
        const { token, row } = auth.enrollment.createToken({ ttlMinutes: ttl, maxUses: uses });
        console.log(token);
        console.error(
          `Enrollment token for ${row.max_uses} sensor${row.max_uses === 1 ? "" : "s"}, valid until ${new Date(row.expires_at).toISOString()}: ` +
            `sudo ./install.sh sensor --server ${reachableHost(config.host)} --enroll TOKEN`,
        );
        return 0;
      }
      case "device-password": {
        const { device, secret } = auth.enrollment.newDeviceSecret(positionals[0]!);
        console.log(secret);
        console.error(
          `New MQTT password for ${device.uid} (the previous one stops working). In its /etc/techtemp/device.conf, [mqtt]:\n` +
            `  username = ${device.uid}\n  password = <the line above>`,
        );
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof DomainError) {
      console.error(err.message);
      return err.kind === "invalid" ? 2 : 1;
    }
    throw err;
  } finally {
    store.close();
  }
}
