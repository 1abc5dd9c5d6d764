// The server for bench/ingest.ts: server.ts's `start` with the configuration
// from the environment, as `bun server.ts` runs it, and with `--open` MQTT
// authentication and the ACL turned off (start's insecureOpenMqtt, which no
// setting reaches): the reference the benchmark measures their cost against.
// `--before` writes as before issue 17 (start's writesAsBefore: rollups in every
// commit, SQLite's default checkpoints): bench/writes.ts's reference, with
// ingest_commit_window_ms = 0 from the environment.
//
//   bun bench/ingest-server.ts [--open] [--before]

import { loadConfig } from "../lib/server/config.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";
import { compileWhenBusy, interpretUntilBusy } from "../lib/server/jit.ts";
import { createLog } from "../lib/shared/log.ts";
import { start } from "../server.ts";

const { open, before } = commandLine("bun bench/ingest-server.ts [--open] [--before]", (args) => {
  const { values } = parseCommandLine(args, { open: { type: "boolean" }, before: { type: "boolean" } });
  return { open: values.open === true, before: values.before === true };
});

// As the server's command line runs it: idle code in the interpreter until busy (lib/server/jit.ts).
interpretUntilBusy();
const config = loadConfig();
const log = createLog({ level: config.log_level });
const running = await start(config, { log, insecureOpenMqtt: open, writesAsBefore: before });
compileWhenBusy(running.store, log);
await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
await running.close();
process.exit(0);
