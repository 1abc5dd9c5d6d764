// Formatting is one style across the tree (Prettier, .prettierrc.json); `bun x prettier --write .` fixes it.
import { expect, test } from "bun:test";
import { run } from "./helpers.ts";

test("every source file is formatted (prettier --check)", async () => {
  const { code, stdout, stderr } = await run(["bun", "x", "prettier", "--check", "."], { timeoutMs: 120_000 });
  expect(stderr + stdout).toContain("All matched files use Prettier code style!");
  expect(code).toBe(0);
}, 130_000);
