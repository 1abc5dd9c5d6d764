// The server's command line and its operator commands' arguments
// (node:util's parseArgs through lib/server/ops/args.ts): bad usage exits 2
// with a message naming the argument as it was typed. In process: each case
// returns before the configuration or a database is read.

import { afterEach, beforeEach, expect, spyOn, test } from "bun:test";
import { parseCommandArgs } from "../lib/server/ops/args.ts";
import { runInspect } from "../lib/server/ops/inspect.ts";
import { runImportLegacy } from "../lib/server/ops/legacy-import.ts";
import { main } from "../server.ts";

let printed: { out: string; err: string };
let spies: { mockRestore(): void }[] = [];
beforeEach(() => {
  printed = { out: "", err: "" };
  spies = [
    spyOn(console, "log").mockImplementation((s: unknown) => void (printed.out += `${s}\n`)),
    spyOn(console, "error").mockImplementation((s: unknown) => void (printed.err += `${s}\n`)),
  ];
});
afterEach(() => {
  for (const spy of spies) spy.mockRestore();
});

test("the argument reader names the first argument that does not fit, as typed", () => {
  const options = {
    name: { type: "string" },
    count: { type: "string", valid: (v: string) => /^\d+$/.test(v) },
    quiet: { type: "boolean", short: "q" },
  } as const;
  const read = (...args: string[]) => parseCommandArgs(args, options, 1);
  expect(read("--name", "a", "--count=3", "-q", "path")).toEqual({
    values: { name: "a", count: "3", quiet: true },
    positionals: ["path"],
    unexpected: undefined,
  });
  expect(read("--frobnicate").unexpected).toBe("--frobnicate");
  expect(read("--name").unexpected).toBe("--name");
  expect(read("--name=").unexpected).toBe("--name=");
  expect(read("--count", "x").unexpected).toBe("--count");
  expect(read("--count=x").unexpected).toBe("--count=x");
  expect(read("--quiet=yes").unexpected).toBe("--quiet=yes");
  expect(read("a", "b").unexpected).toBe("b");
  expect(read("-").unexpected).toBe("-");
  expect(read("--", "a").unexpected).toBe("--");
});

test("the server refuses what it does not know, naming it, and prints its usage on -h", async () => {
  expect(await main(["--demo", "extra"])).toBe(2);
  expect(printed.err).toContain('unexpected argument "extra"');
  expect(printed.err).toContain("usage:");
  expect(await main(["--demo=yes"])).toBe(2);
  expect(printed.err).toContain('unknown command "--demo=yes"');
  expect(await main(["-h"])).toBe(0);
  expect(printed.out).toContain("bun server.ts import-legacy PATH [--nulls=zero|skip]");
});

test("inspect names a bad or incomplete option", () => {
  for (const [args, named] of [
    [["--last", "-1"], "--last"],
    [["--last=abc"], "--last=abc"],
    [["--device"], "--device"],
    [["kitchen"], "kitchen"],
  ] as const) {
    printed.err = "";
    expect(runInspect("/nonexistent/techtemp.db", [...args])).toBe(2);
    expect(printed.err).toContain(`inspect: unknown or incomplete argument ${JSON.stringify(named)}; usage: inspect`);
  }
});

test("import-legacy names a bad argument, and wants a path", async () => {
  expect(await runImportLegacy("/nonexistent/techtemp.db", ["--nulls=maybe", "old.db"])).toBe(2);
  expect(printed.err).toContain('import-legacy: unexpected argument "--nulls=maybe"');
  expect(await runImportLegacy("/nonexistent/techtemp.db", ["old.db", "other.db"])).toBe(2);
  expect(printed.err).toContain('import-legacy: unexpected argument "other.db"');
  printed.err = "";
  expect(await runImportLegacy("/nonexistent/techtemp.db", ["--nulls", "skip"])).toBe(2);
  expect(printed.err).toBe("usage: bun server.ts import-legacy PATH [--nulls=zero|skip]\n");
});
