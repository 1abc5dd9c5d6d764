// One line per event, to stdout (journald keeps it), with a level:
//   2026-11-28T04:10:54.123Z INFO  broker: client connected id=techtemp-aht20-f49c53
// Values that may contain spaces are JSON-quoted so a line stays one line.

/** Log levels, lowest first. */
export const LEVELS = ["debug", "info", "warn", "error"] as const;
export type Level = (typeof LEVELS)[number];

/** A logger bound to one component name. */
export interface Log {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger for a sub-component, e.g. `log.child("broker")`. */
  child(name: string): Log;
}

/** Where lines go; tests pass their own to read what was logged. */
export type Sink = (line: string, level: Level) => void;

/**
 * Bun's console.log prints one string as it is (no %-formatting) and, unlike
 * process.stdout.write, loads no Node stream: 4.7 MB less RSS in the compiled
 * agent (bench/agent.ts; the README's sensor agent section).
 */
const stdoutSink: Sink = (line) => console.log(line);

function formatValue(v: unknown): string {
  // A control character (a NUL in a client id) is written escaped, never raw into the journal.
  if (typeof v === "string") return /^[^\s"=\u0000-\u001f\u007f-\u009f]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Error) return JSON.stringify(v.message);
  return String(v);
}

/** Formats one log line (exported for the agent, which logs the same way). */
export function formatLine(level: Level, name: string, msg: string, fields?: Record<string, unknown>): string {
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${name}: ${msg.replace(/\n/g, " ")}`;
  if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
  return line;
}

/** Creates a logger that drops lines below `level`. */
export function createLog(options: { level?: Level; sink?: Sink; name?: string } = {}): Log {
  const min = LEVELS.indexOf(options.level ?? "info");
  const sink = options.sink ?? stdoutSink;
  const make = (name: string): Log => {
    const emit = (level: Level) => (msg: string, fields?: Record<string, unknown>) => {
      if (LEVELS.indexOf(level) >= min) sink(formatLine(level, name, msg, fields), level);
    };
    return {
      debug: emit("debug"),
      info: emit("info"),
      warn: emit("warn"),
      error: emit("error"),
      child: (sub) => make(`${name}.${sub}`),
    };
  };
  return make(options.name ?? "techtemp");
}
