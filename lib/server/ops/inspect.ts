// `bun server.ts inspect`: what the database holds, for a person at a
// terminal. Opens the database read-only, so it is safe beside a running
// server (WAL lets a reader see the last commit without blocking the writer).

import type { Database } from "bun:sqlite";
import { existsSync, statSync } from "node:fs";
import { openDatabase } from "../store/db.ts";

const DAY = 86_400_000;

/** Formats an age like "3 min ago". */
export function ago(ms: number): string {
  if (ms < 0) return "in the future";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const when = (ms: number | null) => (ms == null ? "-" : new Date(ms).toISOString().replace(".000Z", "Z"));

/** Left-aligned columns, like `column -t`. */
function table(rows: (string | number | null)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c == null ? "-" : String(c))));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells
    .map(
      (r) =>
        "  " +
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join("  ")
          .trimEnd(),
    )
    .join("\n");
}

/** One consistency check: its result and the items it found. */
interface Check {
  level: "ok" | "WARN" | "FAIL";
  what: string;
  items: string[];
}

/** Runs the consistency checks (also used by tests). */
export function consistencyChecks(db: Database, now: number): Check[] {
  const fk = db.query<{ table: string; rowid: number; parent: string }, []>("PRAGMA foreign_key_check").all();
  const several = db
    .query<{ uid: string; n: number }, []>(
      `SELECT d.uid, count(*) AS n FROM placements p JOIN devices d ON d.id = p.device_id
       WHERE p.to_ts IS NULL GROUP BY p.device_id HAVING n > 1`,
    )
    .all();
  const none = db
    .query<{ uid: string }, []>(
      "SELECT uid FROM devices d WHERE NOT EXISTS (SELECT 1 FROM placements p WHERE p.device_id = d.id AND p.to_ts IS NULL) ORDER BY uid",
    )
    .all();
  const overlapping = db
    .query<{ uid: string }, []>(
      `SELECT DISTINCT d.uid FROM placements a JOIN placements b ON a.device_id = b.device_id AND a.id < b.id
       JOIN devices d ON d.id = a.device_id
       WHERE a.from_ts < coalesce(b.to_ts, 9e15) AND b.from_ts < coalesce(a.to_ts, 9e15)`,
    )
    .all();
  const silent = db
    .query<{ uid: string; last_seen_at: number | null }, [number]>(
      "SELECT uid, last_seen_at FROM devices WHERE last_seen_at IS NULL OR last_seen_at < ? ORDER BY uid",
    )
    .all(now - DAY);
  return [
    {
      level: fk.length ? "FAIL" : "ok",
      what: "foreign keys",
      items: fk.map((r) => `${r.table} row ${r.rowid} points at a missing ${r.parent}`),
    },
    {
      level: several.length ? "FAIL" : "ok",
      what: "devices with several open placements",
      items: several.map((r) => `${r.uid} (${r.n})`),
    },
    {
      level: overlapping.length ? "FAIL" : "ok",
      what: "devices with overlapping placements",
      items: overlapping.map((r) => r.uid),
    },
    { level: none.length ? "WARN" : "ok", what: "devices with no open placement (unplaced)", items: none.map((r) => r.uid) },
    {
      level: silent.length ? "WARN" : "ok",
      what: "devices silent for over a day",
      items: silent.map((r) => `${r.uid} (last seen ${r.last_seen_at == null ? "never" : ago(now - r.last_seen_at)})`),
    },
  ];
}

/** Prints the report; returns the exit code (1 when a check fails). */
export function runInspect(path: string, args: string[], out: (s: string) => void = console.log, now = Date.now()): number {
  let device: string | undefined;
  let last = 10;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--device" && args[i + 1]) device = args[++i];
    else if (a === "--last" && args[i + 1] && /^\d+$/.test(args[i + 1]!)) last = Number(args[++i]);
    else {
      console.error(`inspect: unknown or incomplete argument ${JSON.stringify(a)}; usage: inspect [--device UID] [--last N]`);
      return 2;
    }
  }
  if (!existsSync(path)) {
    console.error(`inspect: no database at ${path} (set TECHTEMP_DATA_DIR)`);
    return 1;
  }
  const db = openDatabase(path, { readonly: true });
  try {
    return device ? inspectDevice(db, device, out, now) : inspectAll(db, path, last, out, now);
  } finally {
    db.close();
  }
}

function inspectAll(db: Database, path: string, last: number, out: (s: string) => void, now: number): number {
  const count = (sql: string) => (db.query(sql).get() as { n: number }).n;
  const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  const mb = (statSync(path).size / 1e6).toFixed(1);
  out(`TechTemp database ${path} (schema ${version}, ${mb} MB + WAL)`);
  out("");
  out("Counts");
  out(
    table([
      ["rooms", count("SELECT count(*) AS n FROM rooms")],
      ["devices", count("SELECT count(*) AS n FROM devices")],
      [
        "placements",
        `${count("SELECT count(*) AS n FROM placements")} (${count("SELECT count(*) AS n FROM placements WHERE to_ts IS NULL")} active)`,
      ],
      ["readings", count("SELECT count(*) AS n FROM readings")],
      ["flagged readings", count("SELECT count(*) AS n FROM reading_flags")],
    ]),
  );

  const rooms = db
    .query<{ uid: string; name: string; floor: string | null; side: string | null; n: number }, []>(
      `SELECT r.uid, r.name, r.floor, r.side, (SELECT count(*) FROM placements p WHERE p.room_id = r.id AND p.to_ts IS NULL) AS n
       FROM rooms r ORDER BY r.name COLLATE NOCASE`,
    )
    .all();
  out("");
  out("Rooms");
  out(
    rooms.length
      ? table([["UID", "NAME", "FLOOR", "SIDE", "DEVICES"], ...rooms.map((r) => [r.uid, r.name, r.floor, r.side, r.n])])
      : "  (none)",
  );

  const devices = db
    .query<
      {
        uid: string;
        label: string | null;
        room: string | null;
        last_seen_at: number | null;
        state: string | null;
        interval_s: number | null;
        refused_count: number;
      },
      []
    >(
      `SELECT d.uid, d.label, r.uid AS room, d.last_seen_at, d.state, d.interval_s, d.refused_count
       FROM devices d LEFT JOIN placements p ON p.device_id = d.id AND p.to_ts IS NULL LEFT JOIN rooms r ON r.id = p.room_id
       ORDER BY d.uid`,
    )
    .all();
  out("");
  out("Devices");
  out(
    devices.length
      ? table([
          ["UID", "LABEL", "ROOM", "LAST SEEN", "STATE", "INTERVAL", "REFUSED"],
          ...devices.map((d) => [
            d.uid,
            d.label,
            d.room ?? "(unplaced)",
            d.last_seen_at == null ? "never" : `${when(d.last_seen_at)} (${ago(now - d.last_seen_at)})`,
            d.state,
            d.interval_s == null ? null : `${d.interval_s} s`,
            d.refused_count,
          ]),
        ])
      : "  (none)",
  );

  const placements = db
    .query<{ device: string; room: string; from_ts: number; to_ts: number | null }, []>(
      `SELECT d.uid AS device, r.uid AS room, p.from_ts, p.to_ts FROM placements p
       JOIN devices d ON d.id = p.device_id JOIN rooms r ON r.id = p.room_id ORDER BY d.uid, p.from_ts`,
    )
    .all();
  out("");
  out("Placements");
  out(
    placements.length
      ? table([
          ["DEVICE", "ROOM", "FROM", "TO", "STATE"],
          ...placements.map((p) => [p.device, p.room, when(p.from_ts), when(p.to_ts), p.to_ts === null ? "ACTIVE" : "CLOSED"]),
        ])
      : "  (none)",
  );

  const readings = db
    .query<{ device: string; ts: number; t: number; h: number }, [number]>(
      "SELECT d.uid AS device, r.ts, r.t, r.h FROM readings r JOIN devices d ON d.id = r.device_id ORDER BY r.ts DESC LIMIT ?",
    )
    .all(last);
  out("");
  out(`Last ${last} readings`);
  out(
    readings.length
      ? table([
          ["TS", "DEVICE", "TEMPERATURE", "HUMIDITY"],
          ...readings.map((r) => [when(r.ts), r.device, `${(r.t / 100).toFixed(2)} °C`, `${(r.h / 100).toFixed(2)} %`]),
        ])
      : "  (none)",
  );

  const checks = consistencyChecks(db, now);
  out("");
  out("Checks");
  for (const c of checks) {
    out(`  ${c.level.padEnd(4)}  ${c.what}${c.items.length ? `: ${c.items.join(", ")}` : ""}`);
  }
  return checks.some((c) => c.level === "FAIL") ? 1 : 0;
}

function inspectDevice(db: Database, uid: string, out: (s: string) => void, now: number): number {
  const d = db
    .query<
      {
        id: number;
        uid: string;
        label: string | null;
        home_id: string | null;
        created_at: number;
        last_seen_at: number | null;
        state: string | null;
        interval_s: number | null;
        version: string | null;
        refused_count: number;
        last_refusal: string | null;
      },
      [string]
    >("SELECT * FROM devices WHERE uid = ?")
    .get(uid);
  if (!d) {
    console.error(`inspect: no device ${JSON.stringify(uid)}`);
    return 1;
  }
  const n = (db.query("SELECT count(*) AS n FROM readings WHERE device_id = ?").get(d.id) as { n: number }).n;
  out(`Device ${d.uid}${d.label ? ` "${d.label}"` : ""}`);
  out(
    table([
      ["home", d.home_id],
      ["created", when(d.created_at)],
      ["last seen", d.last_seen_at == null ? "never" : `${when(d.last_seen_at)} (${ago(now - d.last_seen_at)})`],
      ["state", d.state],
      ["interval", d.interval_s == null ? null : `${d.interval_s} s`],
      ["version", d.version],
      ["readings", n],
      ["refused", `${d.refused_count}${d.last_refusal ? ` (last: ${d.last_refusal})` : ""}`],
    ]),
  );
  const placements = db
    .query<{ room: string; name: string; from_ts: number; to_ts: number | null }, [number]>(
      `SELECT r.uid AS room, r.name, p.from_ts, p.to_ts FROM placements p JOIN rooms r ON r.id = p.room_id
       WHERE p.device_id = ? ORDER BY p.from_ts`,
    )
    .all(d.id);
  out("");
  out("Placement history");
  out(
    placements.length
      ? table([
          ["ROOM", "NAME", "FROM", "TO", "STATE"],
          ...placements.map((p) => [p.room, p.name, when(p.from_ts), when(p.to_ts), p.to_ts === null ? "ACTIVE" : "CLOSED"]),
        ])
      : "  (never placed)",
  );
  return 0;
}
