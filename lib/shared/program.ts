// How the two programs name themselves in their help and --version: the
// installed executable by its own name (`techtemp-server`, `techtemp-sensor`),
// a source checkout as it is run (`bun server.ts`).

import pkg from "../../package.json" with { type: "json" };

/** The version of this build (package.json's). */
export const VERSION: string = pkg.version;

/**
 * The command a person types to run this program: the executable's file name
 * when it is a compiled one (its entry point is then inside Bun's embedded
 * file system, /$bunfs/), else `bun <entry>`.
 */
export function programName(
  entry: "server.ts" | "sensor.ts",
  main: string = Bun.main,
  execPath: string = process.execPath,
): string {
  return main.startsWith("/$bunfs/") ? execPath.slice(execPath.lastIndexOf("/") + 1) : `bun ${entry}`;
}

/** Usage lines `[arguments, what they do]` as one text, the descriptions in one column (the 40th). */
export function usageText(prog: string, lines: [string, string][], footer: string): string {
  const width = 38;
  const out = ["usage:"];
  for (const [args, what] of lines) {
    const call = args ? `${prog} ${args}` : prog;
    if (!what) out.push(`  ${call}`);
    else if (call.length >= width) out.push(`  ${call}`, `  ${"".padEnd(width)}${what}`);
    else out.push(`  ${call.padEnd(width)}${what}`);
  }
  return `${out.join("\n")}\n${footer}`;
}
