// The MQTT contract's pure parts: topics, payloads, room uids.
import { describe, expect, test } from "bun:test";
import { formatReading, parseConfig, parseReading, parseStatus, parseTopic, topicFor } from "../lib/shared/contract.ts";
import { roomUidFromName } from "../lib/server/store/store.ts";

const NOW = Date.parse("2026-11-28T12:00:00Z");

describe("topics", () => {
  test("a contract topic splits into home, device and kind", () => {
    expect(parseTopic("home/home-001/sensors/aht20-f49c53/reading")).toEqual({
      homeId: "home-001",
      deviceUid: "aht20-f49c53",
      kind: "reading",
    });
    expect(topicFor("h", "d", "config")).toBe("home/h/sensors/d/config");
  });
  test("bad topics say which part is wrong", () => {
    expect(parseTopic("home/x/sensors/a b/reading")).toEqual({ error: expect.stringContaining("device_uid") });
    expect(parseTopic(`home/${"x".repeat(51)}/sensors/d/reading`)).toEqual({ error: expect.stringContaining("home_id") });
    expect(parseTopic("home/x/sensors/d/reading/extra")).toEqual({ error: expect.stringContaining("is not home/") });
    expect(parseTopic("home/x/sensors/d/temperature")).toEqual({ error: expect.stringContaining("kind") });
  });
});

describe("readings", () => {
  test("the earlier agent's payload parses; extra fields are ignored", () => {
    expect(parseReading('{"temperature_c":23.70,"humidity_pct":52.50,"ts":1725427200000,"rssi":-60}', NOW)).toEqual({
      ok: true,
      value: { temperature_c: 23.7, humidity_pct: 52.5, ts: 1725427200000 },
    });
  });
  test("clock_synced false is kept; true is the default and not stored", () => {
    const r = parseReading('{"temperature_c":1,"humidity_pct":2,"ts":1725427200000,"clock_synced":false}', NOW);
    expect(r.ok && r.value.clock_synced).toBe(false);
    const s = parseReading('{"temperature_c":1,"humidity_pct":2,"ts":1725427200000,"clock_synced":true}', NOW);
    expect(s.ok && "clock_synced" in s.value).toBe(false);
  });
  test("each refusal has a reason naming the field", () => {
    const reason = (p: string) => {
      const r = parseReading(p, NOW);
      return r.ok ? "accepted" : r.reason;
    };
    expect(reason("{")).toContain("not valid JSON");
    expect(reason('{"humidity_pct":2,"ts":3}')).toBe("temperature_c is missing");
    expect(reason('{"temperature_c":"2","humidity_pct":2,"ts":3}')).toContain("temperature_c must be a number");
    expect(reason('{"temperature_c":-41,"humidity_pct":2,"ts":3}')).toBe("temperature_c -41 is outside -40…85");
    expect(reason('{"temperature_c":1,"humidity_pct":100.01,"ts":3}')).toContain("humidity_pct");
    expect(reason('{"temperature_c":1,"humidity_pct":2}')).toBe("ts is missing");
    expect(reason(`{"temperature_c":1,"humidity_pct":2,"ts":${NOW + 25 * 3600_000}}`)).toContain("24 h in the future");
    expect(reason('{"temperature_c":1,"humidity_pct":2,"ts":0}')).toContain("before 2000-01-01");
    expect(reason('{"temperature_c":1,"humidity_pct":2,"ts":1725427200}')).toBe(
      "ts 1725427200 looks like seconds (2024-09-04T05:20:00.000Z); send epoch milliseconds",
    );
    expect(reason('{"temperature_c":1,"humidity_pct":2,"ts":9007199254740991}')).toContain("9007199254740991 is more than 24 h");
  });
  test("formatReading writes two decimals like the earlier agent", () => {
    expect(formatReading({ temperature_c: 20.8712, humidity_pct: 60.9, ts: 1757591504072 })).toBe(
      '{"temperature_c":20.87,"humidity_pct":60.9,"ts":1757591504072}',
    );
  });
});

describe("status and config", () => {
  test("status: birth and will; a bad state is refused", () => {
    expect(parseStatus('{"state":"online","interval_s":300,"version":"1.2"}')).toEqual({
      ok: true,
      value: { state: "online", interval_s: 300, version: "1.2" },
    });
    expect(parseStatus('{"state":"offline"}')).toEqual({ ok: true, value: { state: "offline" } });
    expect(parseStatus('{"state":"asleep"}').ok).toBe(false);
    expect(parseStatus('{"state":"online","interval_s":0}').ok).toBe(false);
  });
  test("config: interval 1–3600, offsets −20…20", () => {
    expect(parseConfig('{"interval_s":60,"temperature_offset":-0.5,"humidity_offset":0}')).toEqual({
      ok: true,
      value: { interval_s: 60, temperature_offset: -0.5, humidity_offset: 0 },
    });
    expect(parseConfig('{"interval_s":0}').ok).toBe(false);
    expect(parseConfig('{"temperature_offset":"1"}').ok).toBe(false);
  });
});

describe("room uids", () => {
  test("accents stripped, lowercase, runs of other characters become -", () => {
    expect(roomUidFromName("Salle à manger")).toBe("salle-a-manger");
    expect(roomUidFromName("Living Room")).toBe("living-room");
    expect(roomUidFromName("Étage 1")).toBe("etage-1");
    expect(roomUidFromName("Chambre d'amis")).toBe("chambre-d-amis");
    expect(roomUidFromName("  --Hall--  ")).toBe("hall");
    expect(roomUidFromName("!!!")).toBe("");
    expect(roomUidFromName("x".repeat(60)).length).toBe(50);
  });
});
