// The Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE`,
// then one line per sample, `name{label="value"} number`. Label values are
// escaped (backslash, double quote, newline); histograms are written as
// cumulative `_bucket{le=…}` lines with `_sum` and `_count`.
// `promtool check metrics` reads our output in test/metrics.test.ts.

/** Label names to values; the caller keeps the set of values bounded. */
export type Labels = Record<string, string>;

/** A histogram's state: counts per upper bound (not cumulative), the sum and the count of observations. */
export interface HistogramData {
  bounds: readonly number[];
  counts: readonly number[];
  sum: number;
  count: number;
}

/** The content type of the format. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/** A sample value as the format writes it. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function labelText(labels: Labels | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return "";
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

/** Builds one exposition: families in the order they are added. */
export function createExposition() {
  const lines: string[] = [];
  const names = new Set<string>();

  function family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    if (names.has(name)) throw new Error(`metric ${name} written twice`);
    names.add(name);
    lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  /** Writes a family of one type with samples (a single unlabelled value, or [labels, value] pairs). */
  function simple(type: "counter" | "gauge", name: string, help: string, samples: number | [Labels, number][]): void {
    family(name, type, help);
    if (typeof samples === "number") lines.push(`${name} ${formatValue(samples)}`);
    else for (const [labels, value] of samples) lines.push(`${name}${labelText(labels)} ${formatValue(value)}`);
  }

  return {
    /** A counter (its name ends in `_total`). */
    counter: (name: string, help: string, samples: number | [Labels, number][]) => simple("counter", name, help, samples),
    /** A gauge. */
    gauge: (name: string, help: string, samples: number | [Labels, number][]) => simple("gauge", name, help, samples),
    /** A histogram from its bucket counts. */
    histogram(name: string, help: string, data: HistogramData, labels?: Labels): void {
      family(name, "histogram", help);
      let cumulative = 0;
      data.bounds.forEach((bound, i) => {
        cumulative += data.counts[i]!;
        lines.push(`${name}_bucket${labelText(labels, ["le", formatValue(bound)])} ${cumulative}`);
      });
      lines.push(`${name}_bucket${labelText(labels, ["le", "+Inf"])} ${data.count}`);
      lines.push(`${name}_sum${labelText(labels)} ${formatValue(data.sum)}`);
      lines.push(`${name}_count${labelText(labels)} ${data.count}`);
    },
    /** The exposition's text. */
    text: () => lines.join("\n") + "\n",
  };
}

/** A histogram that counts observations into fixed buckets (cheap enough for the ingest path). */
export function createHistogram(bounds: readonly number[]) {
  const counts = new Array<number>(bounds.length).fill(0);
  const data = { bounds, counts, sum: 0, count: 0 };
  return {
    /** Counts one observation. */
    observe(value: number): void {
      data.sum += value;
      data.count++;
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          counts[i] = counts[i]! + 1;
          return;
        }
      }
    },
    /** The state, for the exposition. */
    data: data as HistogramData,
  };
}

/** A histogram's interface. */
export type Histogram = ReturnType<typeof createHistogram>;
