// The agent for bench/writes.ts: sensor.ts's `run` with device.conf and the
// environment as `bun sensor.ts` reads them; `--before` deletes each
// acknowledged reading in its own fsync'd commit, as before issue 17 (the
// benchmark's reference; no setting reaches it).
//
//   bun bench/writes-agent.ts [--before]

import { loadDeviceConfig } from "../lib/sensor/device-config.ts";
import { commandLine, parseCommandLine } from "../scripts/cli.ts";
import { run } from "../sensor.ts";

const before = commandLine("bun bench/writes-agent.ts [--before]", (args) => {
  const { values } = parseCommandLine(args, { before: { type: "boolean" } });
  return values.before === true;
});

process.exit(await run(loadDeviceConfig({}), { outboxAcks: before ? "each" : "batched" }));
