// `bun run bench`: every benchmark, one after the other (they would skew each
// other if run together), each printing its own figures beside its reference.
//   bun run bench            all of them
//   bun run bench ingest     only bench/ingest.ts (names: ingest, agent, writes, server-memory, pages, history, legacy-import, login, alerts, backup, chaos, deploy)

import { existsSync } from "node:fs";
import { join } from "node:path";
import { commandLine, parseCommandLine, UsageError } from "../scripts/cli.ts";

const ALL = [
  "ingest",
  "agent",
  "writes",
  "server-memory",
  "pages",
  "history",
  "legacy-import",
  "login",
  "alerts",
  "backup",
  "chaos",
  "deploy",
];
const wanted = commandLine(
  "bun run bench [ingest|agent|writes|server-memory|pages|history|legacy-import|login|alerts|backup|chaos|deploy ...]",
  (args) => {
    const names = parseCommandLine(args, {}, true).positionals;
    const unknown = names.filter((w) => !ALL.includes(w));
    if (unknown.length) throw new UsageError(`unknown benchmark ${unknown.join(", ")}; known: ${ALL.join(", ")}`);
    return names;
  },
);

let failed = 0;
for (const name of wanted.length ? wanted : ALL) {
  const file = join(import.meta.dir, `${name}.ts`);
  if (!existsSync(file)) {
    console.log(`\n== ${name}: bench/${name}.ts does not exist yet`);
    continue;
  }
  console.log(`\n== ${name} (bench/${name}.ts)`);
  const proc = Bun.spawn(["bun", file], { stdout: "inherit", stderr: "inherit" });
  if ((await proc.exited) !== 0) failed++;
}
process.exit(failed ? 1 : 0);
