// The typecheck runs as a test, so `bun run test` is the one command that checks everything.
import { expect, test } from "bun:test";
import { run } from "./helpers.ts";

test("the whole tree typechecks (tsc --noEmit)", async () => {
  const { code, stdout, stderr } = await run(["bun", "x", "tsc", "--noEmit", "-p", "."], { timeoutMs: 120_000 });
  expect(stdout + stderr).toBe("");
  expect(code).toBe(0);
}, 130_000);
