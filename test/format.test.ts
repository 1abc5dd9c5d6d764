// Formatting is one style across the tree (Prettier, .prettierrc.json); `bun x prettier --write .` fixes it.
import { expect, test } from "bun:test";
import { run } from "./helpers.ts";

test("every source file is formatted (prettier --check)", async () => {
  // The cache (node_modules/.cache/prettier, by content hash) re-checks only the files changed since the last check.
  const { code, stdout, stderr } = await run(["bun", "x", "prettier", "--check", "--cache", "--cache-strategy", "content", "."], {
    timeoutMs: 120_000,
  });
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  expect(stdout).toContain("All matched files use Prettier code style!");
}, 130_000);
