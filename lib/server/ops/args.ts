// The command line of the server and its operator commands, read with
// node:util's parseArgs. Not in its strict mode: its errors name the problem
// in its own words, and the commands answer a bad argument with their own
// message naming the argument as it was typed.

import { parseArgs } from "node:util";

/** The options a command knows: a string option takes a value (`--last 5` or `--last=5`), a boolean none. */
export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

/** A command line read against its options. */
export interface ParsedArgs<O extends OptionSpec> {
  /** The options given (the last one wins when an option is repeated). */
  values: { [K in keyof O]?: O[K]["type"] extends "string" ? string : boolean };
  positionals: string[];
  /**
   * The first argument that does not fit, as it was typed: an unknown option,
   * a string option without its value (or with an empty one), a boolean one
   * with a value, `--`, a positional beyond `maxPositionals`, or one that
   * starts with a dash (a path never does). Undefined when every argument fits.
   */
  unexpected?: string;
}

/** Reads `args` against `options`, allowing at most `maxPositionals` positionals. */
export function parseCommandArgs<O extends OptionSpec>(args: string[], options: O, maxPositionals = 0): ParsedArgs<O> {
  const { values, positionals, tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  let seen = 0;
  const misfit = tokens.find((t) => {
    if (t.kind === "option-terminator") return true;
    if (t.kind === "positional") return t.value.startsWith("-") || ++seen > maxPositionals;
    const spec = options[t.name];
    if (spec === undefined) return true;
    return spec.type === "string" ? !t.value : t.value !== undefined;
  });
  return {
    values: values as ParsedArgs<O>["values"],
    positionals,
    unexpected: misfit === undefined ? undefined : args[misfit.index],
  };
}
