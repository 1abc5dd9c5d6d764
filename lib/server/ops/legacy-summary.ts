// What an import of the earlier database did, counted as it goes and told to
// the person who ran it: rows found, added, already here and unusable per
// table, every unusable row counted with its reason and a few examples, and
// notes on what was changed on the way in.

/** Counts for one kind of row. */
export interface ImportCounts {
  found: number;
  added: number;
  /** Already in our database (an earlier import, or the same uid). */
  present: number;
  unusable: number;
}

/** Rows that could not be used, per table and reason. */
export interface Unusable {
  table: string;
  reason: string;
  count: number;
  examples: string[];
}

/** The outcome of an import. */
export interface ImportSummary {
  rooms: ImportCounts;
  devices: ImportCounts;
  placements: ImportCounts;
  readings: ImportCounts & {
    /** Older than the raw horizon: kept in the hourly/daily rollups only. */
    rollupsOnly: number;
    /** NULL values imported as 0 (the earlier NULL-for-zero bug). */
    nullTemperatureAsZero: number;
    nullHumidityAsZero: number;
  };
  unusable: Unusable[];
  /** Other facts worth telling (renamed uids, derived placements, ignored columns). */
  notes: string[];
}

/** A table of the earlier database whose rows are counted. */
export type ImportTable = "rooms" | "devices" | "placements" | "readings";

/** An import's summary as it fills, with the one way to count an unusable row. */
export interface Tally {
  summary: ImportSummary;
  /** Counts a row of `table` that cannot be used, with the reason and an example of it. */
  reject(table: ImportTable, reason: string, example: string): void;
}

/** An empty summary to fill. */
export function createTally(): Tally {
  const counts = (): ImportCounts => ({ found: 0, added: 0, present: 0, unusable: 0 });
  const summary: ImportSummary = {
    rooms: counts(),
    devices: counts(),
    placements: counts(),
    readings: { ...counts(), rollupsOnly: 0, nullTemperatureAsZero: 0, nullHumidityAsZero: 0 },
    unusable: [],
    notes: [],
  };
  const byReason = new Map<string, Unusable>();
  return {
    summary,
    reject(table, reason, example) {
      summary[table].unusable++;
      const key = `${table}\u0000${reason}`;
      let u = byReason.get(key);
      if (!u) {
        u = { table, reason, count: 0, examples: [] };
        byReason.set(key, u);
        summary.unusable.push(u);
      }
      u.count++;
      if (u.examples.length < 3) u.examples.push(example);
    },
  };
}

const num = (n: number) => n.toLocaleString("en-US");

/** The summary a person reads after an import. */
export function formatSummary(s: ImportSummary, from: string, into: string): string {
  const line = (name: string, c: ImportCounts) =>
    `  ${name.padEnd(11)} ${num(c.found).padStart(11)} found: ${num(c.added)} added, ${num(c.present)} already here, ${num(c.unusable)} unusable`;
  const out = [
    `imported ${from}`,
    `    into   ${into}`,
    line("rooms", s.rooms),
    line("devices", s.devices),
    line("placements", s.placements),
    line("readings", s.readings),
  ];
  if (s.readings.rollupsOnly > 0) {
    out.push(
      `  ${num(s.readings.rollupsOnly)} readings older than the raw retention were kept in the hourly and daily rollups only`,
    );
  }
  if (s.readings.nullTemperatureAsZero + s.readings.nullHumidityAsZero > 0) {
    out.push(
      `  NULL values imported as 0: ${num(s.readings.nullTemperatureAsZero)} temperatures, ${num(s.readings.nullHumidityAsZero)} humidities` +
        " (the earlier server stored a reading of exactly 0 as NULL; --nulls=skip refuses them instead)",
    );
  }
  if (s.unusable.length > 0) {
    out.push("unusable rows (not imported):");
    for (const u of s.unusable) out.push(`  ${u.table}: ${num(u.count)} × ${u.reason}  (e.g. ${u.examples.join("; ")})`);
  }
  for (const note of s.notes) out.push(`note: ${note}`);
  return out.join("\n");
}

/** A progress bar on a terminal: `readings [#####-----] 45%  1,234 / 2,742`, redrawn at most every 100 ms. */
export function progressBar(write: (s: string) => void) {
  let last = 0;
  return (done: number, total: number) => {
    const at = performance.now();
    if (done < total && at - last < 100) return;
    last = at;
    const share = total === 0 ? 1 : done / total;
    const width = 30;
    const filled = Math.round(share * width);
    write(
      `\rreadings [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${Math.floor(share * 100)}%  ${num(done)} / ${num(total)}`,
    );
    if (done >= total) write("\n");
  };
}
