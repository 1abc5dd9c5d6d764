// `key = value` files: the agent's device.conf (the earlier C agent's format,
// with `[sections]`) and the server's server.conf (no sections). One reader
// for both; where the two formats differ, an option says which rule applies,
// so each keeps its own exactly. What a key means, and whether a line that is
// not `key = value` is an error or a warning, stays with the caller.
//
// Rules common to both: lines end at LF or CRLF and are numbered from 1;
// blank lines and comment lines are skipped; a comment marker counts only as
// the first character of a line (`a = b # c` has the value `b # c`); an
// entry is split at its first `=`, and its key and value are trimmed.

/** The rules that differ between the two formats. */
export interface IniRules {
  /** Characters that make a line a comment when one of them comes first. */
  comments: string;
  /** Whether `[name]` lines open sections; without sections such a line is one that is not `key = value`. */
  sections: boolean;
  /**
   * What is trimmed off both ends of each line before it is looked at:
   * `"c"` only space, tab, CR and LF (the C agent's isspace loop, so a
   * byte-order mark or a no-break space stays part of the line); `"unicode"`
   * every white space JavaScript's `trim()` knows.
   */
  trim: "c" | "unicode";
  /** Whether a value wrapped in double quotes loses them (`label = "x"` reads `x`). */
  unquote: boolean;
}

/**
 * One line that is neither blank nor a comment: a section, an entry (with the
 * section it is in, null before the first), or "other" (no `=`; `text` is the
 * trimmed line). `line` is its number, `raw` its text as in the file.
 */
export type IniLine =
  | { kind: "section"; name: string; line: number; raw: string }
  | { kind: "entry"; section: string | null; key: string; value: string; line: number; raw: string }
  | { kind: "other"; text: string; line: number; raw: string };

const C_SPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;

/** Reads `text` line by line with `rules`; blank lines and comments are left out. */
export function readIni(text: string, rules: IniRules): IniLine[] {
  const out: IniLine[] = [];
  let section: string | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const trimmed = rules.trim === "c" ? raw.replace(C_SPACE, "") : raw.trim();
    if (trimmed === "" || rules.comments.includes(trimmed[0]!)) return;
    if (rules.sections && trimmed.startsWith("[") && trimmed.endsWith("]")) {
      section = trimmed.slice(1, -1);
      out.push({ kind: "section", name: section, line, raw });
      return;
    }
    const eq = trimmed.indexOf("=");
    if (eq < 0) {
      out.push({ kind: "other", text: trimmed, line, raw });
      return;
    }
    const value = trimmed.slice(eq + 1).trim();
    out.push({
      kind: "entry",
      section,
      key: trimmed.slice(0, eq).trim(),
      value: rules.unquote ? value.replace(/^"(.*)"$/, "$1") : value,
      line,
      raw,
    });
  });
  return out;
}
