// The command lines of scripts/ and bench/ (scripts/cli.ts over node:util's
// parseArgs): a bad argument is named, with the usage, and exits with code 2.

import { expect, test } from "bun:test";
import { parseCommandLine, positiveNumber, UsageError } from "../scripts/cli.ts";
import { run } from "./helpers.ts";

test("parseCommandLine names what it cannot understand", () => {
  const options = { out: { type: "string" }, quiet: { type: "boolean" } } as const;
  expect(parseCommandLine(["--out", "x", "--quiet"], options).values).toEqual({ out: "x", quiet: true });
  expect(parseCommandLine(["a", "b"], {}, true).positionals).toEqual(["a", "b"]);
  const refused = (args: string[], allowPositionals = false) => {
    try {
      parseCommandLine(args, options, allowPositionals);
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      return (err as Error).message;
    }
    throw new Error(`${args.join(" ")} was accepted`);
  };
  expect(refused(["--bogus"])).toBe('unknown argument "--bogus"');
  expect(refused(["-x"])).toBe('unknown argument "-x"');
  expect(refused(["stray"])).toBe('unknown argument "stray"');
  expect(refused(["--out"])).toBe("--out needs a value");
  expect(refused(["--quiet=yes"])).toBe("--quiet takes no value");
  expect(positiveNumber("days", undefined, 365)).toBe(365);
  expect(positiveNumber("days", "7", 365)).toBe(7);
  expect(() => positiveNumber("days", "0", 365)).toThrow("--days must be a positive number");
  expect(() => positiveNumber("days", "many", 365)).toThrow("--days must be a positive number");
});

test("every script and benchmark refuses an unknown option with exit code 2, naming it and showing its usage", async () => {
  const scripts = [
    "scripts/build.ts",
    "bench/run.ts",
    "bench/agent.ts",
    "bench/writes.ts",
    "bench/writes-agent.ts",
    "bench/ingest.ts",
    "bench/ingest-load.ts",
    "bench/ingest-server.ts",
    "bench/history.ts",
    "bench/pages.ts",
    "bench/screenshots.ts",
    "bench/legacy-import.ts",
    "bench/alerts.ts",
    "bench/login.ts",
    "bench/backup.ts",
    "bench/chaos.ts",
    "bench/deploy.ts",
  ];
  const results = await Promise.all(
    scripts.map(async (script) => {
      const r = await run(["bun", script, "--bogus"], { cwd: `${import.meta.dir}/..`, timeoutMs: 60_000 });
      const usage = r.stderr.includes(`usage: bun `) ? "usage shown" : "no usage";
      return `${script}: exit ${r.code}, ${r.stderr.split("\n")[0]}, ${usage}`;
    }),
  );
  expect(results).toEqual(scripts.map((s) => `${s}: exit 2, unknown argument "--bogus", usage shown`));
}, 90_000);
