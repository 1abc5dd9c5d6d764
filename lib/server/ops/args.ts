// The command line of the server and its operator commands, read with
// node:util's parseArgs. Not in its strict mode: its errors name the problem
// in its own words, and the commands answer a bad argument with their own
// message naming the argument as it was typed.

import { parseArgs } from "node:util";

/**
 * The options a command knows: a string option takes a value (`--last 5` or
 * `--last=5`) that `valid`, when given, accepts; a boolean one takes none.
 */
export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; valid?: (value: string) => boolean }>;

/** A command line read against its options. */
export interface ParsedArgs<O extends OptionSpec> {
  /** The options given (the last one wins when an option is repeated). */
  values: { [K in keyof O]?: O[K]["type"] extends "string" ? string : boolean };
  positionals: string[];
  /**
   * The first argument that does not fit, as it was typed: an unknown option,
   * a string option without its value (or with an empty or invalid one), a
   * boolean one with a value, `--`, a positional beyond `maxPositionals`, or
   * one that starts with a dash (a path never does). Undefined when every
   * argument fits.
   */
  unexpected?: string;
}

/** Reads `args` against `options`, allowing at most `maxPositionals` positionals. */
export function parseCommandArgs<O extends OptionSpec>(args: string[], options: O, maxPositionals = 0): ParsedArgs<O> {
  // parseArgs knows only type and short (and refuses an undefined short).
  const known = Object.fromEntries(
    Object.entries(options).map(([name, { type, short }]) => [name, short === undefined ? { type } : { type, short }]),
  );
  const { values, positionals, tokens } = parseArgs({
    args,
    options: known,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  let seen = 0;
  const misfit = tokens.find((t) => {
    if (t.kind === "option-terminator") return true;
    if (t.kind === "positional") return t.value.startsWith("-") || ++seen > maxPositionals;
    const spec = options[t.name];
    if (spec === undefined) return true;
    if (spec.type === "boolean") return t.value !== undefined;
    return !t.value || (spec.valid !== undefined && !spec.valid(t.value));
  });
  return {
    values: values as ParsedArgs<O>["values"],
    positionals,
    unexpected: misfit === undefined ? undefined : args[misfit.index],
  };
}
