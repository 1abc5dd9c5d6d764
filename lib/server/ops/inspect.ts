// `bun server.ts inspect`: what the database holds, for a person at a
// terminal: counts, rooms, devices and when they were last seen, placements,
// the last readings, and consistency checks. The store reads it on a
// read-only connection (lib/server/store/inspection.ts), so it is safe beside
// a running server; this module only lays it out.

import { existsSync, statSync } from "node:fs";
import { openInspection, type Inspection } from "../store/inspection.ts";
import { parseCommandArgs } from "./args.ts";

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
const lastSeen = (ms: number | null, now: number) => (ms == null ? "never" : `${when(ms)} (${ago(now - ms)})`);

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

/** Runs the consistency checks on what the inspection finds. */
export function consistencyChecks(db: Inspection, now: number): Check[] {
  const fk = db.foreignKeyViolations();
  const several = db.devicesInSeveralRooms();
  const overlapping = db.devicesWithOverlappingPlacements();
  const none = db.unplacedDevices();
  const silent = db.devicesSilentSince(now - DAY);
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
      items: overlapping,
    },
    { level: none.length ? "WARN" : "ok", what: "devices with no open placement (unplaced)", items: none },
    {
      level: silent.length ? "WARN" : "ok",
      what: "devices silent for over a day",
      items: silent.map((r) => `${r.uid} (last seen ${r.last_seen_at == null ? "never" : ago(now - r.last_seen_at)})`),
    },
  ];
}

const INSPECT_OPTIONS = { device: { type: "string" }, last: { type: "string", valid: (v: string) => /^\d+$/.test(v) } } as const;

/** Prints the report; returns the exit code (1 when a check fails, 2 for bad usage). */
export function runInspect(path: string, args: string[], out: (s: string) => void = console.log, now = Date.now()): number {
  const { values, unexpected } = parseCommandArgs(args, INSPECT_OPTIONS);
  if (unexpected !== undefined) {
    console.error(
      `inspect: unknown or incomplete argument ${JSON.stringify(unexpected)}; usage: inspect [--device UID] [--last N]`,
    );
    return 2;
  }
  if (!existsSync(path)) {
    console.error(`inspect: no database at ${path} (set TECHTEMP_DATA_DIR)`);
    return 1;
  }
  const db = openInspection(path);
  try {
    return values.device !== undefined
      ? inspectDevice(db, values.device, out, now)
      : inspectAll(db, path, Number(values.last ?? 10), out, now);
  } finally {
    db.close();
  }
}

function inspectAll(db: Inspection, path: string, last: number, out: (s: string) => void, now: number): number {
  const mb = (statSync(path).size / 1e6).toFixed(1);
  out(`TechTemp database ${path} (schema ${db.schemaVersion()}, ${mb} MB + WAL)`);
  out("");
  out("Counts");
  const n = db.counts();
  out(
    table([
      ["rooms", n.rooms],
      ["devices", n.devices],
      ["placements", `${n.placements} (${n.activePlacements} active)`],
      ["readings", n.readings],
      ["flagged readings", n.flaggedReadings],
    ]),
  );

  const rooms = db.rooms();
  out("");
  out("Rooms");
  out(
    rooms.length
      ? table([["UID", "NAME", "FLOOR", "SIDE", "DEVICES"], ...rooms.map((r) => [r.uid, r.name, r.floor, r.side, r.devices])])
      : "  (none)",
  );

  const devices = db.devices();
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
            lastSeen(d.last_seen_at, now),
            d.state,
            d.interval_s == null ? null : `${d.interval_s} s`,
            d.refused_count,
          ]),
        ])
      : "  (none)",
  );

  const placements = db.placements();
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

  const readings = db.lastReadings(last);
  out("");
  out(`Last ${last} readings`);
  out(
    readings.length
      ? table([
          ["TS", "DEVICE", "TEMPERATURE", "HUMIDITY"],
          ...readings.map((r) => [when(r.ts), r.device, `${r.temperature.toFixed(2)} °C`, `${r.humidity.toFixed(2)} %`]),
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

function inspectDevice(db: Inspection, uid: string, out: (s: string) => void, now: number): number {
  const d = db.device(uid);
  if (!d) {
    console.error(`inspect: no device ${JSON.stringify(uid)}`);
    return 1;
  }
  out(`Device ${d.uid}${d.label ? ` "${d.label}"` : ""}`);
  out(
    table([
      ["home", d.home_id],
      ["created", when(d.created_at)],
      ["last seen", lastSeen(d.last_seen_at, now)],
      ["state", d.state],
      ["interval", d.interval_s == null ? null : `${d.interval_s} s`],
      ["version", d.version],
      ["readings", d.readings],
      ["refused", `${d.refused_count}${d.last_refusal ? ` (last: ${d.last_refusal})` : ""}`],
    ]),
  );
  const placements = db.devicePlacements(uid);
  out("");
  out("Placement history");
  out(
    placements.length
      ? table([
          ["ROOM", "NAME", "FROM", "TO", "STATE"],
          ...placements.map((p) => [p.room, p.room_name, when(p.from_ts), when(p.to_ts), p.to_ts === null ? "ACTIVE" : "CLOSED"]),
        ])
      : "  (never placed)",
  );
  return 0;
}
