// Home Assistant: the discovery configs a real subscriber receives, checked
// key by key against Home Assistant's MQTT sensor discovery schema; updates on
// rename and move, removal on delete and unplacing; the switch. The bridge to
// a real Mosquitto started here: readings, statuses and discovery forwarded,
// and caught up after that Mosquitto restarts.

import { describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  connectMqtt,
  endMqtt,
  freePort,
  legacyPayload,
  publishAcked,
  readingTopic,
  deferAfterEach,
  startServer,
  startServerWithoutBackups,
  tempDir,
  waitFor,
  withTimeout,
} from "./helpers.ts";

const defer = deferAfterEach();
const server = (overrides: Parameters<typeof startServer>[0] = {}) => startServerWithoutBackups(defer, overrides);

// Home Assistant's MQTT sensor discovery schema (homeassistant/components/mqtt: sensor.py
// _PLATFORM_SCHEMA_BASE, config.py MQTT_RO_SCHEMA, entity.py/schemas.py MQTT_ENTITY_COMMON_SCHEMA,
// MQTT_AVAILABILITY_SCHEMA, MQTT_ENTITY_DEVICE_INFO_SCHEMA, MQTT_ORIGIN_INFO_SCHEMA), full key names.
const HA_SENSOR_KEYS = new Set([
  // MQTT_RO_SCHEMA
  "qos",
  "encoding",
  "state_topic",
  "value_template",
  // sensor
  "device_class",
  "expire_after",
  "force_update",
  "last_reset_value_template",
  "name",
  "options",
  "suggested_display_precision",
  "state_class",
  "unit_of_measurement",
  // availability
  "availability_topic",
  "availability_template",
  "payload_available",
  "payload_not_available",
  "availability_mode",
  "availability",
  // entity common
  "device",
  "origin",
  "enabled_by_default",
  "entity_category",
  "icon",
  "json_attributes_topic",
  "json_attributes_template",
  "object_id",
  "unique_id",
]);
const HA_DEVICE_KEYS = new Set([
  "identifiers",
  "connections",
  "manufacturer",
  "model",
  "model_id",
  "name",
  "hw_version",
  "serial_number",
  "sw_version",
  "via_device",
  "suggested_area",
  "configuration_url",
]);
const HA_ORIGIN_KEYS = new Set(["name", "sw_version", "support_url"]);
// sensor/const.py DEVICE_CLASS_UNITS for these classes, and SensorStateClass.
const UNITS: Record<string, string[]> = { temperature: ["°C", "°F", "K"], humidity: ["%"] };
const STATE_CLASSES = ["measurement", "measurement_angle", "total", "total_increasing"];

/** What Home Assistant would refuse or misread in a sensor discovery config; empty = nothing. */
function haProblems(config: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const k of Object.keys(config)) if (!HA_SENSOR_KEYS.has(k)) problems.push(`unknown key ${k}`);
  if (typeof config.state_topic !== "string" || /[#+]/.test(config.state_topic)) problems.push("state_topic");
  const device = config.device as Record<string, unknown> | undefined;
  if (device) {
    for (const k of Object.keys(device)) if (!HA_DEVICE_KEYS.has(k)) problems.push(`unknown device key ${k}`);
    if (!Array.isArray(device.identifiers) || device.identifiers.length === 0) problems.push("device needs identifiers");
    for (const k of ["manufacturer", "model", "name", "sw_version", "suggested_area"])
      if (k in device && typeof device[k] !== "string") problems.push(`device.${k} must be a string`);
  }
  const origin = config.origin as Record<string, unknown> | undefined;
  if (origin) {
    for (const k of Object.keys(origin)) if (!HA_ORIGIN_KEYS.has(k)) problems.push(`unknown origin key ${k}`);
    if (typeof origin.name !== "string") problems.push("origin.name is required");
  }
  const dc = config.device_class as string;
  if (!(dc in UNITS)) problems.push(`device_class ${dc}`);
  else if (!UNITS[dc]!.includes(config.unit_of_measurement as string))
    problems.push(`unit ${config.unit_of_measurement} for ${dc}`);
  if (!STATE_CLASSES.includes(config.state_class as string)) problems.push(`state_class ${config.state_class}`);
  if (!Number.isInteger(config.suggested_display_precision) || (config.suggested_display_precision as number) < 0)
    problems.push("suggested_display_precision");
  if ("availability_topic" in config && "availability" in config)
    problems.push("availability_topic and availability are exclusive");
  return problems;
}

/** `{{ value_json.x }}` rendered on a JSON payload, as Home Assistant's template would for this simple form. */
function render(template: string, payload: string): unknown {
  const m = /^\{\{ value_json\.([a-z_]+) \}\}$/.exec(template);
  if (!m) throw new Error(`template not understood: ${template}`);
  return (JSON.parse(payload) as Record<string, unknown>)[m[1]!];
}

/** A subscriber that keeps the last message per topic (retained ones included). */
async function watch(port: number, topics: string[], options: Parameters<typeof connectMqtt>[1] = {}) {
  const client = await connectMqtt(port, options);
  const last = new Map<string, string>();
  const all: { topic: string; payload: string; retain: boolean }[] = [];
  client.on("message", (topic, payload, packet) => {
    last.set(topic, payload.toString());
    all.push({ topic, payload: payload.toString(), retain: packet.retain });
  });
  await withTimeout(client.subscribeAsync(topics, { qos: 1 }), 5000, "subscribe");
  return { client, last, all };
}

const T0 = Date.now() - 60_000;

describe("Home Assistant discovery", () => {
  test("a placed device has retained temperature and humidity configs that follow Home Assistant's sensor schema", async () => {
    const s = await server();
    await s.api("/api/v1/devices", { body: { device_uid: "aht20-f49c53", room_name: "Salle à manger", label: "Buffet" } });
    const sensor = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(sensor));
    const status = JSON.stringify({ state: "online", interval_s: 60, version: "2.1.0" });
    await publishAcked(sensor, "home/home-001/sensors/aht20-f49c53/status", status, 5000, true);
    const reading = legacyPayload(21.37, 48.2, T0);
    await publishAcked(sensor, readingTopic("aht20-f49c53"), reading);
    // A subscriber arriving now gets the retained configs, as Home Assistant does at its start.
    const ha = await watch(s.mqttPort, ["homeassistant/#"]);
    defer(() => endMqtt(ha.client));
    await waitFor(() => ha.last.size === 2 && [...ha.last.values()].every((p) => p.includes('sw_version":"2.1.0')));
    const t = JSON.parse(ha.last.get("homeassistant/sensor/aht20-f49c53_temperature/config")!);
    const h = JSON.parse(ha.last.get("homeassistant/sensor/aht20-f49c53_humidity/config")!);
    expect(haProblems(t)).toEqual([]);
    expect(haProblems(h)).toEqual([]);
    expect(t).toMatchObject({
      unique_id: "techtemp_aht20-f49c53_temperature",
      state_topic: "home/home-001/sensors/aht20-f49c53/reading",
      unit_of_measurement: "°C",
      device_class: "temperature",
      state_class: "measurement",
      availability_topic: "home/home-001/sensors/aht20-f49c53/status",
      payload_available: "online",
      payload_not_available: "offline",
      device: {
        identifiers: ["techtemp_aht20-f49c53"],
        name: "Buffet",
        model: "AHT20",
        sw_version: "2.1.0",
        suggested_area: "Salle à manger",
      },
    });
    expect(h).toMatchObject({ unit_of_measurement: "%", device_class: "humidity", unique_id: "techtemp_aht20-f49c53_humidity" });
    // The templates read the real payloads: the value from a reading, online/offline from the status and the last will.
    expect(render(t.value_template, reading)).toBe(21.37);
    expect(render(h.value_template, reading)).toBe(48.2);
    expect(render(t.availability_template, status)).toBe(t.payload_available);
    expect(render(t.availability_template, '{"state":"offline"}')).toBe(t.payload_not_available);
  });

  test("an earlier sensor that never sent a status gets no availability (it would stay unavailable); its first status adds it", async () => {
    const s = await server();
    await s.api("/api/v1/devices", { body: { device_uid: "aht20-b827eb", room_name: "Salon" } });
    const ha = await watch(s.mqttPort, ["homeassistant/#"]);
    defer(() => endMqtt(ha.client));
    await waitFor(() => ha.last.size === 2);
    const before = JSON.parse(ha.last.get("homeassistant/sensor/aht20-b827eb_temperature/config")!);
    expect(before.availability_topic).toBeUndefined();
    expect(haProblems(before)).toEqual([]);
    const sensor = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(sensor));
    await publishAcked(sensor, "home/home-001/sensors/aht20-b827eb/status", '{"state":"online"}', 5000, true);
    await waitFor(() => ha.last.get("homeassistant/sensor/aht20-b827eb_temperature/config")!.includes("availability_topic"));
  });

  test("follows renames and moves, and removes the entities on delete and when the device leaves its room", async () => {
    const s = await server();
    const ha = await watch(s.mqttPort, ["homeassistant/#"]);
    defer(() => endMqtt(ha.client));
    const topic = "homeassistant/sensor/aht20-000001_temperature/config";
    // An unplaced device (it published, nobody placed it) has no entity.
    const sensor = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(sensor));
    await publishAcked(sensor, readingTopic("aht20-000001"), legacyPayload(20, 40, T0));
    expect(ha.last.has(topic)).toBe(false);
    await s.api("/api/v1/devices", { body: { device_uid: "aht20-000001", room_name: "Salon" } });
    await waitFor(() => JSON.parse(ha.last.get(topic) ?? "{}").device?.suggested_area === "Salon");
    await s.api("/api/v1/devices/aht20-000001", { method: "PUT", body: { room_name: "Chambre", label: "Bedside" } });
    await waitFor(() => {
      const d = JSON.parse(ha.last.get(topic) ?? "{}").device;
      return d?.suggested_area === "Chambre" && d?.name === "Bedside";
    });
    await s.api("/api/v1/devices/aht20-000001", { method: "PUT", body: { room_uid: null } });
    await waitFor(() => ha.last.get(topic) === "" && ha.last.get("homeassistant/sensor/aht20-000001_humidity/config") === "");
    await s.api("/api/v1/devices/aht20-000001", { method: "PUT", body: { room_name: "Salon" } });
    await waitFor(() => (ha.last.get(topic) ?? "") !== "");
    await s.api("/api/v1/devices/aht20-000001", { method: "DELETE" });
    await waitFor(() => ha.last.get(topic) === "");
    // The empty retained payload cleared the config: a newcomer finds nothing.
    const late = await watch(s.mqttPort, ["homeassistant/#"]);
    defer(() => endMqtt(late.client));
    await Bun.sleep(200);
    expect(late.last.size).toBe(0);
  });

  test("ha_discovery off publishes nothing; another prefix is used when set", async () => {
    const off = await server({ ha_discovery: false });
    await off.api("/api/v1/devices", { body: { device_uid: "aht20-000001", room_name: "Salon" } });
    const seen = await watch(off.mqttPort, ["#"]);
    defer(() => endMqtt(seen.client));
    await off.api("/api/v1/devices/aht20-000001", { method: "PUT", body: { label: "x" } });
    await Bun.sleep(200);
    expect([...seen.last.keys()].filter((t) => t.startsWith("homeassistant/"))).toEqual([]);
    const other = await server({ ha_discovery_prefix: "ha/discovery" });
    await other.api("/api/v1/devices", { body: { device_uid: "aht20-000002", room_name: "Salon" } });
    const w = await watch(other.mqttPort, ["ha/discovery/#"]);
    defer(() => endMqtt(w.client));
    await waitFor(() => w.last.has("ha/discovery/sensor/aht20-000002_temperature/config"));
  });
});

/** A real Mosquitto on a free port; `restart` stops it (SIGTERM) and starts it again on the same port. */
async function mosquitto(dir: string, persistence: boolean) {
  const port = freePort();
  const conf = join(dir, "mosquitto.conf");
  mkdirSync(join(dir, "data"), { recursive: true });
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      persistence ? "persistence true" : "persistence false",
      `persistence_location ${join(dir, "data")}/`,
      // As root, mosquitto would switch to its own user, who cannot read our temp dir.
      "user root",
      "",
    ].join("\n"),
  );
  let proc: ReturnType<typeof Bun.spawn>;
  const up = async () => {
    proc = Bun.spawn(["mosquitto", "-c", conf], { stdout: "ignore", stderr: "ignore" });
    await waitFor(
      async () => {
        const c = await connectMqtt(port).catch(() => null);
        if (c) await endMqtt(c);
        return c !== null;
      },
      10_000,
      "mosquitto to listen",
    );
  };
  await up();
  return {
    port,
    async stop() {
      proc.kill("SIGTERM");
      await withTimeout(proc.exited, 10_000, "mosquitto exit");
    },
    start: up,
    forget: () => rmSync(join(dir, "data"), { recursive: true, force: true }),
  };
}

describe("the bridge to Home Assistant's Mosquitto", () => {
  test("forwards readings, statuses and discovery, buffers while Mosquitto is down and catches up after its restart", async () => {
    const dir = tempDir();
    defer(() => dir.cleanup());
    const remote = await mosquitto(dir.path, true);
    defer(() => remote.stop().catch(() => {}));
    const s = await server({ bridge_url: `mqtt://127.0.0.1:${remote.port}`, bridge_client_id: "techtemp-test" });
    await s.api("/api/v1/devices", { body: { device_uid: "aht20-000001", room_name: "Salon" } });
    // Home Assistant's side: a persistent session, so what arrives while it reconnects waits for it.
    const ha = await watch(remote.port, ["home/#", "homeassistant/#"], {
      clientId: "ha-test",
      clean: false,
      reconnectPeriod: 200,
    });
    defer(() => endMqtt(ha.client, true));
    const sensor = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(sensor));
    await publishAcked(sensor, "home/home-001/sensors/aht20-000001/status", '{"state":"online","interval_s":60}', 5000, true);
    await publishAcked(sensor, readingTopic("aht20-000001"), legacyPayload(20, 40, T0));
    await waitFor(
      () =>
        JSON.parse(ha.last.get("home/home-001/sensors/aht20-000001/reading") ?? "{}").ts === T0 &&
        ha.last.get("home/home-001/sensors/aht20-000001/status")?.includes("online") &&
        ha.last.get("homeassistant/sensor/aht20-000001_temperature/config")?.includes("availability_topic"),
      10_000,
      "readings, status and discovery on the remote broker",
    );

    // Mosquitto goes away: readings are stored and acknowledged here, and wait for it.
    await remote.stop();
    const metric = async (name: string) => {
      const lines = (await (await s.fetch("/metrics", { as: "token" })).text()).split("\n");
      return Number(lines.find((l) => l.startsWith(name + " "))?.split(" ")[1]);
    };
    await waitFor(async () => (await metric("techtemp_bridge_connected")) === 0, 10_000, "bridge to notice");
    for (let i = 1; i <= 30; i++)
      await publishAcked(sensor, readingTopic("aht20-000001"), legacyPayload(20 + i / 100, 40, T0 + i * 1000));
    expect(await metric("techtemp_bridge_buffered_messages")).toBeGreaterThanOrEqual(30);
    await remote.start();
    await waitFor(
      () => ha.all.filter((m) => m.topic.endsWith("/reading")).length >= 31,
      20_000,
      "the buffered readings on the restarted Mosquitto",
    );
    const ts = ha.all.filter((m) => m.topic.endsWith("/reading")).map((m) => JSON.parse(m.payload).ts as number);
    for (let i = 0; i <= 30; i++) expect(ts).toContain(T0 + i * 1000);
    // In order, oldest first.
    const after = ts.slice(ts.indexOf(T0 + 1000));
    expect(after).toEqual([...after].sort((a, b) => a - b));
    await waitFor(async () => (await metric("techtemp_bridge_buffered_messages")) === 0, 10_000, "the buffer to empty");

    // Restarted with its memory lost: the retained state is published again.
    await remote.stop();
    remote.forget();
    await remote.start();
    const fresh = await watch(remote.port, ["home/+/sensors/+/status", "homeassistant/#"]);
    defer(() => endMqtt(fresh.client));
    await waitFor(
      () =>
        fresh.last.has("homeassistant/sensor/aht20-000001_humidity/config") &&
        fresh.last.has("home/home-001/sensors/aht20-000001/status"),
      20_000,
      "retained discovery and status on a Mosquitto that forgot them",
    );

    // A device deleted while Mosquitto is away: its entities go there too, though Mosquitto kept their configs.
    const ha2 = await watch(remote.port, ["homeassistant/#"], { clientId: "ha-test-2", clean: false, reconnectPeriod: 200 });
    defer(() => endMqtt(ha2.client, true));
    const configs = ["temperature", "humidity"].map((v) => `homeassistant/sensor/aht20-000001_${v}/config`);
    await waitFor(() => configs.every((t) => (ha2.last.get(t) ?? "") !== ""), 10_000, "the configs, retained");
    await remote.stop();
    await waitFor(async () => (await metric("techtemp_bridge_connected")) === 0, 10_000, "bridge to notice");
    await s.api("/api/v1/devices/aht20-000001", { method: "DELETE" });
    await remote.start();
    await waitFor(
      () => configs.every((t) => ha2.last.get(t) === ""),
      20_000,
      "the removal (empty retained configs) on the restarted Mosquitto",
    );
  });

  test("a full buffer drops the oldest readings, counts them and logs once", async () => {
    const port = freePort(); // nothing listens there
    const s = await server({ bridge_url: `mqtt://127.0.0.1:${port}`, bridge_buffer: 5 });
    const sensor = await connectMqtt(s.mqttPort);
    defer(() => endMqtt(sensor));
    for (let i = 0; i < 8; i++) await publishAcked(sensor, readingTopic("aht20-000001"), legacyPayload(20, 40, T0 + i * 1000));
    const text = await (await s.fetch("/metrics", { as: "token" })).text();
    expect(text).toContain("\ntechtemp_bridge_dropped_total 3\n");
    expect(text).toContain("\ntechtemp_bridge_buffered_messages 5\n");
    expect(s.logs.filter((l) => l.includes("bridge buffer full"))).toHaveLength(1);
    expect(s.logs.some((l) => l.includes("bridge cannot reach the other broker"))).toBe(true);
  });
});
