// The one `key = value` reader behind device.conf and server.conf: the rules
// both share, and each option that keeps one format's own rule.

import { describe, expect, test } from "bun:test";
import { readIni, type IniRules } from "../lib/shared/ini.ts";

const DEVICE: IniRules = { comments: "#", sections: true, trim: "c", unquote: false };
const SERVER: IniRules = { comments: "#;", sections: false, trim: "unicode", unquote: true };

describe("both formats", () => {
  test("an entry splits at its first '=', key and value trimmed; blank lines and comments are skipped", () => {
    for (const rules of [DEVICE, SERVER]) {
      expect(readIni("\n  # note\n  a = b = c  \r\n\t\n", rules)).toEqual([
        { kind: "entry", section: null, key: "a", value: "b = c", line: 3, raw: "  a = b = c  " },
      ]);
    }
  });

  test("a comment marker counts only first on a line: there are no inline comments", () => {
    for (const rules of [DEVICE, SERVER]) {
      expect(readIni("level = INFO # the default\n", rules)).toMatchObject([{ key: "level", value: "INFO # the default" }]);
    }
  });

  test("a line without '=' is handed back trimmed, with its number, for the caller to judge", () => {
    expect(readIni("a = 1\n  just words  \n", SERVER)[1]).toEqual({
      kind: "other",
      text: "just words",
      line: 2,
      raw: "  just words  ",
    });
  });
});

describe("the options", () => {
  test("sections: [name] opens one for the entries after it; without sections it is a line without '='", () => {
    expect(readIni("top = 0\n[mqtt]\nqos = 1\n", DEVICE)).toMatchObject([
      { kind: "entry", section: null, key: "top" },
      { kind: "section", name: "mqtt", line: 2 },
      { kind: "entry", section: "mqtt", key: "qos", value: "1" },
    ]);
    expect(readIni("[mqtt]\n", SERVER)).toMatchObject([{ kind: "other", text: "[mqtt]" }]);
  });

  test("comments: ';' starts a comment in server.conf only", () => {
    expect(readIni("; note\n", SERVER)).toEqual([]);
    expect(readIni("; note\n", DEVICE)).toMatchObject([{ kind: "other", text: "; note" }]);
  });

  test("unquote: server.conf drops the double quotes around a value, device.conf keeps them", () => {
    expect(readIni('label = "Capteur AHT20"\n', SERVER)).toMatchObject([{ value: "Capteur AHT20" }]);
    expect(readIni('label = "Capteur AHT20"\n', DEVICE)).toMatchObject([{ value: '"Capteur AHT20"' }]);
  });

  test("trim: the C agent's trims only space, tab, CR and LF, so a byte-order mark stays part of the line", () => {
    expect(readIni("\ufeff# note\n", SERVER)).toEqual([]);
    expect(readIni("\ufeff# note\n", DEVICE)).toMatchObject([{ kind: "other", text: "\ufeff# note" }]);
    expect(readIni("\ufeff[device]\n", DEVICE)).toMatchObject([{ kind: "other" }]);
  });
});
