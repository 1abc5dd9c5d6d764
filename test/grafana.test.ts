// The Grafana dashboard in docs/grafana: valid JSON of the shape Grafana
// provisions, every panel on the Prometheus datasource variable, and every
// metric it queries present on a real server's /metrics; the Prometheus scrape
// configuration beside it passes `promtool check config`.

import { afterEach, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, startServer, tempDir } from "./helpers.ts";

const DIR = join(import.meta.dir, "..", "docs", "grafana");

let cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource: { type: string; uid: string } }[];
}

const dashboard = JSON.parse(readFileSync(join(DIR, "techtemp.json"), "utf8")) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
};

test("the dashboard is a Grafana dashboard: unique panel ids inside a 24-column grid, each query on the datasource variable", () => {
  expect(dashboard.uid).toBe("techtemp");
  expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
  const ids = dashboard.panels.map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  const datasource = dashboard.templating.list.find((v) => v.name === "datasource")!;
  expect(datasource).toMatchObject({ type: "datasource", query: "prometheus" });
  for (const p of dashboard.panels) {
    expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    if (p.type === "row") continue;
    expect({ title: p.title, ds: p.datasource }).toEqual({ title: p.title, ds: { type: "prometheus", uid: "${datasource}" } });
    expect(p.targets!.length).toBeGreaterThan(0);
    for (const t of p.targets!) expect(t.datasource.uid).toBe("${datasource}");
  }
  const provisioning = readFileSync(join(DIR, "provisioning", "dashboards", "techtemp.yaml"), "utf8");
  expect(provisioning).toContain("apiVersion: 1");
  expect(provisioning).toMatch(/type: file/);
});

test("every metric the dashboard queries exists on /metrics", async () => {
  const s = await startServer({ backup_time: "off", bridge_url: "mqtt://127.0.0.1:1" });
  cleanup.push(() => s.stop());
  const text = await (await s.fetch("/metrics", { as: "token" })).text();
  const families = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const queried = new Set<string>();
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  for (const v of dashboard.templating.list) if (typeof v.query === "object") exprs.push((v.query as { query: string }).query);
  for (const expr of exprs) for (const m of expr.matchAll(/\b((?:techtemp|process)_[a-z_]+)\b/g)) queried.add(m[1]!);
  expect(queried.size).toBeGreaterThan(20);
  const missing = [...queried].filter((name) => {
    if (families.has(name)) return false;
    const base = name.replace(/_(bucket|sum|count)$/, "");
    return families.get(base) !== "histogram";
  });
  expect(missing).toEqual([]);
});

test("the Prometheus scrape configuration passes promtool check config", async () => {
  const dir = tempDir();
  cleanup.push(() => dir.cleanup());
  const token = join(dir.path, "techtemp.token");
  writeFileSync(token, "tt_example\n");
  const config = join(dir.path, "prometheus.yml");
  writeFileSync(
    config,
    readFileSync(join(DIR, "prometheus.yml"), "utf8").replace(
      "credentials_file: /etc/prometheus/techtemp.token",
      `credentials_file: ${token}`,
    ),
  );
  const r = await run(["promtool", "check", "config", config]);
  expect(r.stdout + r.stderr).toContain("SUCCESS");
  expect(r.code).toBe(0);
});
