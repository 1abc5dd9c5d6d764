// The server for bench/ingest.ts: server.ts's `start` with the configuration
// from the environment, as `bun server.ts` runs it, and with `--open` MQTT
// authentication and the ACL turned off (start's insecureOpenMqtt, which no
// setting reaches): the reference the benchmark measures their cost against.
//
//   bun bench/ingest-server.ts [--open]

import { loadConfig } from "../lib/server/config.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";
import { start } from "../server.ts";

const open = commandLine("bun bench/ingest-server.ts [--open]", (args) => {
  const { values } = parseCommandLine(args, { open: { type: "boolean" } });
  return values.open === true;
});

const running = await start(loadConfig(), { insecureOpenMqtt: open });
await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
await running.close();
process.exit(0);
