// The architecture, checked by reading the imports of every module of the
// two programs (lib/, views/, server.ts, sensor.ts): lib/shared imports
// nothing of ours; lib/sensor and lib/server import only lib/shared, never
// each other; lib/demo.ts is the one module that uses both programs; views
// import only types from lib/; only the store holds a SQLite Database (in the
// server lib/server/store/**, in the sensor lib/sensor/outbox.ts).

import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const REPO = resolve(import.meta.dir, "..");

/** One import (or re-export) of a module. */
interface Import {
  /** As written: "../shared/log.ts", "bun:sqlite", "elysia". */
  specifier: string;
  /** The repository path it resolves to ("lib/shared/log.ts"), or null for a package or a built-in. */
  target: string | null;
  /** `import type`, `export type`, or braces holding only `type` specifiers. */
  typeOnly: boolean;
}

/** A module of the programs: its imports and its code without comments and string contents. */
interface Module {
  path: string;
  imports: Import[];
  /** The code with comments and the contents of strings and template literals blanked out. */
  bareCode: string;
}

const REGEX_BEFORE = new Set([..."(,=:[!&|?{};+-*%<>~^"]);
const KEYWORDS_BEFORE_REGEX = /\b(return|typeof|case|do|else|in|of|new|delete|void|throw|yield|await)$/;

/**
 * The code without comments (`withStrings`), and also without the contents of
 * strings and template literals (`bare`). A small scanner for our own code:
 * a `/` starts a regular expression after an operator or a keyword.
 */
function stripComments(code: string): { withStrings: string; bare: string } {
  let withStrings = "";
  let bare = "";
  let i = 0;
  const emit = (text: string, blankInBare: boolean, blankInBoth = false) => {
    const blank = text.replace(/[^\n]/g, " ");
    withStrings += blankInBoth ? blank : text;
    bare += blankInBare || blankInBoth ? blank : text;
  };
  const lastSignificant = () => withStrings.trimEnd();
  while (i < code.length) {
    const c = code[i]!;
    const next = code[i + 1];
    if (c === "/" && next === "/") {
      const end = code.indexOf("\n", i);
      const stop = end === -1 ? code.length : end;
      emit(code.slice(i, stop), true, true);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = code.indexOf("*/", i + 2);
      const stop = end === -1 ? code.length : end + 2;
      emit(code.slice(i, stop), true, true);
      i = stop;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < code.length && code[j] !== c && code[j] !== "\n") j += code[j] === "\\" ? 2 : 1;
      emit(c, false);
      emit(code.slice(i + 1, j), true);
      emit(code[j] === c ? c : "", false);
      i = code[j] === c ? j + 1 : j;
    } else if (c === "`") {
      // Template literals are blanked whole in `bare`, their ${…} included (nested templates counted).
      let j = i + 1;
      let depth = 0;
      while (j < code.length && !(code[j] === "`" && depth === 0)) {
        if (code[j] === "\\") j++;
        else if (code[j] === "$" && code[j + 1] === "{") depth++;
        else if (code[j] === "}" && depth > 0) depth--;
        j++;
      }
      emit(code.slice(i, j + 1), true);
      i = j + 1;
    } else if (c === "/") {
      const before = lastSignificant();
      if (before === "" || REGEX_BEFORE.has(before.at(-1)!) || KEYWORDS_BEFORE_REGEX.test(before)) {
        let j = i + 1;
        let inClass = false;
        while (j < code.length && code[j] !== "\n" && (inClass || code[j] !== "/")) {
          if (code[j] === "\\") j++;
          else if (code[j] === "[") inClass = true;
          else if (code[j] === "]") inClass = false;
          j++;
        }
        emit(code.slice(i, j + 1), true);
        i = j + 1;
      } else {
        emit(c, false);
        i++;
      }
    } else {
      emit(c, false);
      i++;
    }
  }
  return { withStrings, bare };
}

const CLAUSE = String.raw`(?:\*\s*(?:as\s+[\w$]+)?|[\w$]+(?:\s*,\s*(?:\{[^}]*\}|\*\s*as\s+[\w$]+))?|\{[^}]*\})`;
// Matched against the code with string contents blanked (so that nothing inside a string counts);
// the specifier is then read at the same place in the code that still has them.
const STATIC = new RegExp(String.raw`\b(import|export)\s+(type\s+)?(${CLAUSE})\s*from\s*(["'])([^"']*)\4`, "gd");
const SIDE_EFFECT = /\bimport\s*(["'])([^"']*)\1/dg;
const DYNAMIC = /\bimport\s*\(\s*(["'])([^"']*)\1\s*\)/dg;

/** Every import and re-export of a file, type-only ones included. */
function readImports(path: string, code: string): Import[] {
  const { withStrings, bare } = stripComments(code);
  const at = (m: RegExpExecArray, group: number) => {
    const [start, end] = m.indices![group]!;
    return withStrings.slice(start, end);
  };
  const target = (specifier: string) => {
    if (!specifier.startsWith(".") && !specifier.startsWith("/")) return null;
    const rel = relative(REPO, resolve(REPO, dirname(path), specifier));
    return rel.startsWith("..") ? null : rel;
  };
  const imports: Import[] = [];
  for (const m of bare.matchAll(STATIC)) {
    const clause = m[3]!;
    const specifier = at(m, 5);
    const braces = /^\{([^}]*)\}$/.exec(clause.trim());
    const names = braces
      ? braces[1]!
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
    const onlyTypeNames = names.length > 0 && names.every((s) => s.startsWith("type "));
    imports.push({ specifier, target: target(specifier), typeOnly: m[2] !== undefined || onlyTypeNames });
  }
  for (const re of [SIDE_EFFECT, DYNAMIC]) {
    for (const m of bare.matchAll(re)) {
      const specifier = at(m, 2);
      imports.push({ specifier, target: target(specifier), typeOnly: false });
    }
  }
  return imports;
}

/** The modules of the two programs and what they share. */
function modules(): Module[] {
  const paths = [...new Glob("{lib,views}/**/*.{ts,tsx}").scanSync(REPO), "server.ts", "sensor.ts"].sort();
  return paths.map((path) => {
    const code = readFileSync(join(REPO, path), "utf8");
    return { path, imports: readImports(path, code), bareCode: stripComments(code).bare };
  });
}

const under = (dir: string) => (path: string) => path.startsWith(dir);
const isShared = under("lib/shared/");
const isSensor = (p: string) => p.startsWith("lib/sensor/") || p === "sensor.ts";
const isServer = (p: string) => p.startsWith("lib/server/") || p === "server.ts";
/** Project metadata any module may read (the agent reports package.json's version). */
const isMetadata = (p: string) => p === "package.json";

/** A rule over the imports (or the code) of each module; `check` returns what breaks it, empty when kept. */
interface Rule {
  id: string;
  description: string;
  applies(path: string): boolean;
  check(module: Module): string[];
}

/** The repository files `module` imports (types included) that `allowed` does not accept. */
const importsOutside = (module: Module, allowed: (target: string) => boolean) =>
  module.imports.filter((i) => i.target !== null && !allowed(i.target)).map((i) => `imports ${i.target}`);

const RULES: Rule[] = [
  {
    id: "shared-alone",
    description: "lib/shared imports nothing of ours",
    applies: isShared,
    check: (m) => importsOutside(m, (t) => isShared(t) || isMetadata(t)),
  },
  {
    id: "sensor-shared-only",
    description: "the sensor (lib/sensor, sensor.ts) imports only lib/shared besides itself",
    applies: isSensor,
    check: (m) => importsOutside(m, (t) => isSensor(t) || isShared(t) || isMetadata(t)),
  },
  {
    id: "server-shared-only",
    description:
      "the server (lib/server, server.ts) imports only lib/shared besides itself, its views and static files, and lib/demo.ts",
    applies: isServer,
    check: (m) =>
      importsOutside(
        m,
        (t) =>
          isServer(t) ||
          isShared(t) ||
          isMetadata(t) ||
          t.startsWith("views/") ||
          t.startsWith("static/") ||
          // Only the entry point starts the demo, the one module that uses both programs.
          (m.path === "server.ts" && t === "lib/demo.ts"),
      ),
  },
  {
    id: "demo-only-both",
    description: "lib/demo.ts is the only module that imports both programs",
    applies: (p) => p !== "lib/demo.ts",
    check: (m) => {
      const targets = m.imports.flatMap((i) => (i.target ? [i.target] : []));
      return targets.some(isSensor) && targets.some(isServer) ? ["imports both lib/sensor and lib/server"] : [];
    },
  },
  {
    id: "views-types-only",
    description: "views import only types from lib/",
    applies: under("views/"),
    check: (m) =>
      m.imports.filter((i) => i.target?.startsWith("lib/") && !i.typeOnly).map((i) => `imports values of ${i.target}`),
  },
  {
    id: "database-in-store",
    description: "only the store holds a Database: lib/server/store/** in the server, lib/sensor/outbox.ts in the sensor",
    applies: (p) => !p.startsWith("lib/server/store/") && p !== "lib/sensor/outbox.ts",
    check: (m) => [
      ...m.imports.filter((i) => i.specifier === "bun:sqlite").map(() => "imports bun:sqlite"),
      ...(/\bDatabase\b/.test(m.bareCode) ? ["names Database"] : []),
      // The store's handle taken from it (`store.db`): the Database reached without naming it.
      ...(/\.db\b/.test(m.bareCode) ? ["takes .db (the store's Database)"] : []),
    ],
  },
];

const all = modules();

test("the import reader sees every value import Bun's parser sees", () => {
  // Bun's scanImports drops type-only imports: what it finds must be exactly our value imports.
  for (const m of all) {
    const transpiler = new Bun.Transpiler({ loader: m.path.endsWith(".tsx") ? "tsx" : "ts" });
    const bun = transpiler
      .scanImports(readFileSync(join(REPO, m.path), "utf8"))
      .map((i) => i.path)
      .filter((p) => !p.startsWith("react")); // the JSX runtime Bun adds to .tsx files
    const ours = m.imports.filter((i) => !i.typeOnly).map((i) => i.specifier);
    expect(`${m.path}: ${[...new Set(ours)].sort().join(" ")}`).toBe(`${m.path}: ${[...new Set(bun)].sort().join(" ")}`);
  }
});

describe("boundaries", () => {
  for (const rule of RULES) {
    test(`${rule.description} (${rule.id})`, () => {
      const broken = all.filter((m) => rule.applies(m.path)).map((m) => ({ file: m.path, why: rule.check(m) }));
      const violations = broken.filter((b) => b.why.length > 0).map((b) => `${b.file}: ${b.why.join(", ")}`);
      expect(violations).toEqual([]);
    });
  }
});

describe("the import reader", () => {
  test("tells type-only imports from value imports", () => {
    const code = `import type { A } from "./a.ts";
import { type B, type C } from "./b.ts";
import { type D, e } from "./d.ts";
export type { F } from "./f.ts";
export { g } from "./g.ts";
import * as h from "./h.ts";
import i, { j } from "./i.ts";
import "./side.ts";
const k = await import("./k.ts");`;
    expect(readImports("lib/x.ts", code).map((i) => `${i.target}${i.typeOnly ? " (type)" : ""}`)).toEqual([
      "lib/a.ts (type)",
      "lib/b.ts (type)",
      "lib/d.ts",
      "lib/f.ts (type)",
      "lib/g.ts",
      "lib/h.ts",
      "lib/i.ts",
      "lib/side.ts",
      "lib/k.ts",
    ]);
  });

  test("ignores comments and strings, and keeps regular expressions apart from them", () => {
    const code = `// import { x } from "./commented.ts";
/* import "./block.ts"; */
const s = "import './in-a-string.ts'";
const re = /\\/\\/ not a comment/;
const url = "http://example.org";
import { y } from "./real.ts";
const t = \`a Database in a template\`;
let db: Database;`;
    expect(readImports("lib/x.ts", code).map((i) => i.target)).toEqual(["lib/real.ts"]);
    const { bare } = stripComments(code);
    expect(bare.match(/\bDatabase\b/g)).toEqual(["Database"]);
    expect(bare).not.toContain("example.org");
  });
});
