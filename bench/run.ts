// `bun run bench`: every benchmark, one after the other (they would skew each
// other if run together), each printing its own figures beside its reference.
//   bun run bench            all of them
//   bun run bench ingest     only bench/ingest.ts (names: ingest, agent, pages, history)

import { existsSync } from "node:fs";
import { join } from "node:path";

const ALL = ["ingest", "agent", "pages", "history"];
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !ALL.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(", ")}; known: ${ALL.join(", ")}`);
  process.exit(2);
}

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
