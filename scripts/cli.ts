// Command lines of the scripts and benchmarks: node:util's parseArgs (strict),
// with messages that name the argument at fault, and exit code 2 for a
// command line that cannot be understood (1 stays for a run that failed).

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A command line that cannot be understood; the message names the argument at fault. */
export class UsageError extends Error {}

/** What node:util's parseArgs says, in our words: `unknown argument "--x"`, `--out needs a value`. */
function reword(err: Error & { code?: string }): Error {
  const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? "";
  switch (err.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new UsageError(`unknown argument ${JSON.stringify(quoted)}`);
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const option = quoted.split(" ")[0];
      return new UsageError(
        err.message.includes("does not take an argument") ? `${option} takes no value` : `${option} needs a value`,
      );
    }
    default:
      return err;
  }
}

/** Parses `args` against `options` (every other option refused); positionals only when `allowPositionals`. */
export function parseCommandLine<O extends ParseArgsOptionsConfig>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    throw reword(err as Error & { code?: string });
  }
}

/** The number an option gives (`fallback` when absent); anything but a positive number is refused, naming the option. */
export function positiveNumber(name: string, value: string | undefined, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number`);
  return n;
}

/**
 * Runs `parse` on the process's command line; a UsageError is printed with
 * `usage` to stderr and ends the process with exit code 2.
 */
export function commandLine<T>(usage: string, parse: (args: string[]) => T): T {
  try {
    return parse(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\nusage: ${usage}`);
    process.exit(2);
  }
}
