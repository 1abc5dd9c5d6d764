// GET /metrics: the Prometheus text format checked by promtool, each figure
// following what really happened (readings accepted, duplicates, refusals by
// reason, the ack histogram, clients and subscriptions, per-device values,
// backups), bounded labels, and who may read it.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  connectMqtt,
  endMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  run,
  deferAfterEach,
  startServer,
  startServerWithoutBackups,
  waitFor,
  withTimeout,
  type TestServer,
} from "./helpers.ts";

const defer = deferAfterEach();
const server = (overrides: Parameters<typeof startServer>[0] = {}) => startServerWithoutBackups(defer, overrides);

/** The scrape as a token sends it, checked for status and type. */
async function scrape(s: TestServer): Promise<string> {
  const res = await s.fetch("/metrics", { as: "token" });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return res.text();
}

/** The value of one sample line (`name{labels}` exactly as written), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** promtool check metrics on the text: exit code and what it said. */
async function promtool(text: string): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), "promtool-"));
  const file = join(dir, "metrics.txt");
  writeFileSync(file, text);
  try {
    const r = await run(["sh", "-c", `promtool check metrics < ${file}`]);
    return { code: r.code, out: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const T0 = Date.UTC(2026, 0, 10, 12);

describe("GET /metrics", () => {
  test("passes promtool check metrics, with every family present on a fresh server and after traffic", async () => {
    const s = await server();
    const fresh = await promtool(await scrape(s));
    expect(fresh).toEqual({ code: 0, out: "" });
    const c = await connectMqtt(s.mqttPort);
    await publishAcked(c, readingTopic("aht20-000001"), legacyPayload(21.5, 40, T0));
    await s.backups.run("manual");
    await endMqtt(c);
    const busy = await promtool(await scrape(s));
    expect(busy).toEqual({ code: 0, out: "" });
  });

  test("counts accepted, duplicate and refused readings by reason, commits and the ack latency", async () => {
    const s = await server();
    const c = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(c));
    for (let i = 0; i < 5; i++) await publishAcked(c, readingTopic("aht20-000001"), legacyPayload(21, 40, T0 + i * 60_000));
    await publishAcked(c, readingTopic("aht20-000001"), legacyPayload(21, 40, T0)); // sent twice
    await publishAcked(c, readingTopic("aht20-000001"), "not json");
    await publishAcked(c, readingTopic("aht20-000001"), '{"temperature_c":200,"humidity_pct":40,"ts":1}');
    await publishAcked(c, readingTopic("aht20-000001"), '{"temperature_c":20,"humidity_pct":40}');
    const text = await scrape(s);
    expect(sample(text, "techtemp_readings_accepted_total")).toBe(6);
    expect(sample(text, "techtemp_readings_stored_total")).toBe(5);
    expect(sample(text, "techtemp_readings_duplicate_total")).toBe(1);
    expect(sample(text, 'techtemp_readings_refused_total{reason="not_json"}')).toBe(1);
    expect(sample(text, 'techtemp_readings_refused_total{reason="out_of_range"}')).toBe(1);
    expect(sample(text, 'techtemp_readings_refused_total{reason="missing_field"}')).toBe(1);
    expect(sample(text, 'techtemp_readings_refused_total{reason="future_timestamp"}')).toBe(0);
    expect(sample(text, "techtemp_reading_ack_seconds_count")).toBe(6);
    expect(sample(text, 'techtemp_reading_ack_seconds_bucket{le="+Inf"}')).toBe(6);
    expect(sample(text, "techtemp_ingest_batch_size_count")).toBe(sample(text, "techtemp_ingest_commits_total"));
    expect(sample(text, 'techtemp_ingest_batch_size_bucket{le="+Inf"}')).toBeGreaterThanOrEqual(1);
  });

  test("shows clients, subscriptions, per-device values, the outbox a status reports, and the backups", async () => {
    const s = await server();
    await s.api("/api/v1/devices", { body: { device_uid: "aht20-000001", room_name: "Salon" } });
    const c = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(c));
    await withTimeout(c.subscribeAsync(["home/#", "homeassistant/#"], { qos: 1 }), 5000, "subscribe");
    await publishAcked(c, readingTopic("aht20-000001"), legacyPayload(21.25, 43.5, Date.now() - 5_000));
    await publishAcked(
      c,
      "home/home-001/sensors/aht20-000001/status",
      JSON.stringify({ state: "online", interval_s: 60, sensor_failures: 2, outbox: 17 }),
      5000,
      true,
    );
    const device = '{device="aht20-000001",room="salon"}';
    const text: string = await waitFor(async () => {
      const t = await scrape(s);
      return sample(t, `techtemp_device_outbox_readings${device}`) === 17 ? t : "";
    });
    expect(sample(text, "techtemp_mqtt_clients")).toBe(1);
    expect(sample(text, "techtemp_mqtt_subscriptions")).toBe(2);
    expect(sample(text, `techtemp_device_temperature_celsius${device}`)).toBe(21.25);
    expect(sample(text, `techtemp_device_humidity_percent${device}`)).toBe(43.5);
    expect(sample(text, `techtemp_device_sensor_failures${device}`)).toBe(2);
    expect(sample(text, `techtemp_device_up${device}`)).toBe(1);
    expect(sample(text, `techtemp_device_last_seen_age_seconds${device}`)).toBeLessThan(60);
    expect(sample(text, 'techtemp_devices{state="online"}')).toBe(1);
    expect(sample(text, "techtemp_database_size_bytes")).toBeGreaterThan(0);
    expect(text).toContain("techtemp_backup_age_seconds NaN");
    await s.backups.run("manual");
    const after = await scrape(s);
    expect(sample(after, "techtemp_backup_age_seconds")).toBeLessThan(60);
    expect(sample(after, 'techtemp_backup_last_result{target="local"}')).toBe(1);
    expect(sample(after, 'techtemp_backups_total{result="ok"}')).toBe(1);
    expect(sample(after, "techtemp_backup_last_size_bytes")).toBeGreaterThan(0);
    expect(sample(after, "process_resident_memory_bytes")).toBeGreaterThan(10_000_000);
    expect(sample(after, "process_cpu_seconds_total")).toBeGreaterThan(0);
    // Unsubscribing and leaving are counted down.
    await c.unsubscribeAsync("homeassistant/#");
    expect(sample(await scrape(s), "techtemp_mqtt_subscriptions")).toBe(1);
  });

  test("a failing second target shows as target=second 0", async () => {
    const s = await server({ backup_second_dir: "/nonexistent/usb" });
    await s.backups.run("manual");
    const text = await scrape(s);
    expect(sample(text, 'techtemp_backup_last_result{target="local"}')).toBe(1);
    expect(sample(text, 'techtemp_backup_last_result{target="second"}')).toBe(0);
  });

  test("per-device series stop at metrics_max_devices (placed devices first); the rest are counted and logged once", async () => {
    const s = await server({ metrics_max_devices: 3 });
    await s.api("/api/v1/devices", { body: { device_uid: "aht20-placed", room_name: "Salon" } });
    const c = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(c));
    for (let i = 0; i < 6; i++) await publishAcked(c, readingTopic(`aht20-00000${i}`), legacyPayload(20, 40, T0));
    const text = await scrape(s);
    const devices = new Set([...text.matchAll(/device="([^"]+)"/g)].map((m) => m[1]));
    expect(devices.size).toBe(3);
    expect(devices.has("aht20-placed")).toBe(true);
    expect(sample(text, "techtemp_metrics_devices_omitted")).toBe(4);
    await scrape(s);
    expect(s.logs.filter((l) => l.includes("beyond metrics_max_devices"))).toHaveLength(1);
  });

  test("needs a token or a signed-in account once the owner exists; open on a fresh install", async () => {
    const s = await server();
    const none = await s.fetch("/metrics", { as: "none" });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="techtemp"');
    expect((await none.json()).error).toContain("API token");
    const bad = await s.fetch("/metrics", { as: { token: "tt_wrong" } });
    expect(bad.status).toBe(401);
    const read = s.auth.tokens.create("prometheus", "read").token;
    expect((await s.fetch("/metrics", { as: { token: read } })).status).toBe(200);
    expect((await s.fetch("/metrics", { as: "session" })).status).toBe(200);
    const viewer = await s.signIn("viewer");
    expect((await s.fetch("/metrics", { as: viewer })).status).toBe(200);
    const fresh = await startServer({ backup_time: "off" }, { owner: false });
    defer(() => fresh.stop());
    expect((await fresh.fetch("/metrics", { as: "none" })).status).toBe(200);
  });
});
