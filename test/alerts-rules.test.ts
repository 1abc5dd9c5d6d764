// Rules as a person writes them, and the pure logic under them: every bad
// value refused with the field named (API 400, pages 422 with the message
// next to the field), the state machines (a minimum duration, hysteresis
// that stops flapping), and times of day in the home's time zone across a
// DST change.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { newState, onClock, onFailures, onReading, type Step } from "../lib/server/alerts/evaluate.ts";
import { normalizeRule, PRESETS, type RuleInput, type RuleSpec } from "../lib/server/alerts/rules.ts";
import { localTime } from "../lib/server/history/zone.ts";
import { inSpan, nextLocal, quietUntil } from "../lib/server/alerts/schedule.ts";
import { checkSettings, DEFAULT_SETTINGS } from "../lib/server/alerts/settings.ts";
import { checkChannel } from "../lib/server/alerts/channels.ts";
import { DomainError } from "../lib/shared/errors.ts";
import { startServer, type TestServer } from "./helpers.ts";
import { fieldErrors } from "./auth-helpers.ts";
import { postForm } from "./web-helpers.ts";
import { SCENARIO } from "./alerts-helpers.ts";

/** The field and message a check refuses `input` with. */
function refusal(check: () => unknown): string {
  try {
    check();
  } catch (err) {
    if (err instanceof DomainError) return `${err.field}: ${err.problem}`;
    throw err;
  }
  return "accepted";
}

describe("a rule's input is checked, each refusal naming its field", () => {
  const rule = (input: RuleInput) => refusal(() => normalizeRule(input));
  test.each([
    [{ kind: "threshold", metric: "temperature", max: "abc" }, 'max: "abc" is not a number; give a number from -40 to 85'],
    [{ kind: "threshold", metric: "temperature", min: 30, max: 20 }, "min: 30 is above max (20); min is the lower bound"],
    [{ kind: "threshold", metric: "temperature" }, "max: give min, max or both"],
    [{ kind: "threshold", metric: "humidity", max: 120 }, "max: 120 is outside 0-100; give a number from 0 to 100"],
    [{ kind: "threshold", metric: "pressure", max: 1 }, 'metric: "pressure" is not one of temperature, humidity, dew_point'],
    [
      { kind: "threshold", metric: "temperature", min: 20, max: 22, hysteresis: 1 },
      "hysteresis: 1 is too wide for 20-22: it must be less than half the band",
    ],
    [
      { kind: "threshold", metric: "temperature", max: 26, duration_s: 1.5 },
      "duration_s: 1.5 is outside 0-604800; give a whole number from 0 to 604800",
    ],
    [{ kind: "sometimes" }, 'kind: "sometimes" is not one of threshold, stale, failures, stuck, jump, mould'],
    [{}, "kind: give one of threshold, stale, failures, stuck, jump, mould"],
    [{ kind: "stale", intervals: 1 }, "intervals: 1 is outside 2-100; give a whole number from 2 to 100"],
    [{ kind: "stuck", duration_s: 60 }, "duration_s: 60 is outside 600-604800; give a whole number from 600 to 604800"],
    [{ kind: "jump", metric: "temperature" }, "max: give the largest plausible change between two readings, in °C"],
    [{ kind: "mould", max: 20 }, "max: 20 is outside 40-100; give a number from 40 to 100"],
    [{ kind: "stale", severity: "loud" }, 'severity: "loud" is not one of critical, warning, info'],
    [{ kind: "stale", room_uid: "a", device_uid: "b" }, "device_uid: give room_uid or device_uid, not both"],
    [{ kind: "stale", room_uid: "no spaces" }, "room_uid: must be 1-50 characters of A-Z a-z 0-9 _ -"],
    [{ kind: "stale", name: "x".repeat(101) }, "name: must be text of at most 100 characters"],
  ] as [RuleInput, string][])("%j → %s", (input, want) => expect(rule(input)).toBe(want));

  test("defaults fill what is left out, and a rule without a name is named from what it watches", () => {
    expect(normalizeRule({ kind: "threshold", metric: "humidity", max: 66 })).toMatchObject({
      name: "Humidity above 66 % for 5 min",
      hysteresis: 2,
      duration_s: 300,
      severity: "warning",
      enabled: true,
    });
    expect(normalizeRule({ kind: "stale" })).toMatchObject({ intervals: 5, name: "No reading for 5 of the sensor's intervals" });
    expect(normalizeRule({ kind: "mould" })).toMatchObject({ metric: "humidity", max: 70, duration_s: 43_200, hysteresis: 3 });
    // Fields a kind does not use are dropped; a change of kind starts from the new kind's defaults.
    const threshold = normalizeRule({ kind: "threshold", metric: "temperature", max: 26, intervals: 9 });
    expect(threshold.intervals).toBeNull();
    expect(normalizeRule({ kind: "stale" }, threshold)).toMatchObject({
      kind: "stale",
      max: null,
      intervals: 5,
      name: "No reading for 5 of the sensor's intervals",
    });
    // A name of one's own stays.
    expect(normalizeRule({ max: 28 }, { ...threshold, name: "Attic" }).name).toBe("Attic");
  });

  test("the presets are the earlier TechTemp's thresholds", () => {
    const t = Object.fromEntries(PRESETS.map((p) => [p.id, [p.spec.metric, p.spec.min, p.spec.max, p.spec.severity]]));
    expect(t["temperature-critical"]).toEqual(["temperature", 5, 35, "critical"]);
    expect(t["temperature-high"]).toEqual(["temperature", null, 26, "warning"]);
    expect(t["temperature-low"]).toEqual(["temperature", 18, null, "warning"]);
    expect(t["humidity-critical"]).toEqual(["humidity", 15, 85, "critical"]);
    expect(t["humidity-high"]).toEqual(["humidity", null, 66, "warning"]);
    expect(t["humidity-low"]).toEqual(["humidity", 30, null, "warning"]);
  });

  test("channels and settings name their field too", () => {
    const ch = (input: Record<string, unknown>) => refusal(() => checkChannel(input));
    expect(ch({ kind: "ntfy", name: "p", url: "ftp://x", topic: "t" })).toBe("url: must start with http:// or https://");
    expect(ch({ kind: "ntfy", name: "p", url: "https://ntfy.sh", topic: "a b" })).toBe(
      "topic: must be 1-64 characters of A-Z a-z 0-9 _ -",
    );
    expect(ch({ kind: "webhook", name: "w", url: "https://x.test", secret: "short" })).toBe(
      "secret: must be at least 16 characters (or empty to have one made)",
    );
    expect(ch({ kind: "email", name: "m", host: "mail.test", from: "a@b.test", to: "nobody" })).toBe(
      'to: "nobody" is not an e-mail address',
    );
    expect(ch({ kind: "email", name: "m", host: "mail.test", port: 70000, from: "a@b.test", to: "c@d.test" })).toBe(
      "port: must be a port number 1-65535",
    );
    expect(
      ch({
        kind: "email",
        name: "m",
        host: "mail.test",
        security: "none",
        username: "u",
        password: "p",
        from: "a@b.test",
        to: "c@d.test",
      }),
    ).toBe("security: a login needs starttls or tls: the password would cross the network in clear");
    expect(ch({ kind: "pigeon", name: "x" })).toBe("kind: give one of ntfy, webhook, email");
    const set = (input: Record<string, unknown>) => refusal(() => checkSettings(input, DEFAULT_SETTINGS));
    expect(set({ quiet_start: "22:00" })).toBe("quiet_end: give both ends of the quiet hours, or neither");
    expect(set({ quiet_start: "25:00", quiet_end: "07:00" })).toBe(
      'quiet_start: "25:00" is not a time of day; use the form 22:00',
    );
    expect(set({ repeat_minutes: -1 })).toBe("repeat_minutes: give a whole number of minutes from 0 (never) to 10080");
    expect(set({ link_base: "techtemp.local" })).toBe(
      'link_base: "techtemp.local" is not the pages\' address; give one like http://techtemp.local:3000',
    );
  });
});

describe("the state machines", () => {
  const run = (rule: RuleSpec, values: [number, number][]) => {
    const state = newState();
    return values
      .map(([minute, t]): [number, Step] => [minute, onReading(rule, state, { ts: minute * 60_000, t, h: 50 })])
      .filter(([, s]) => s !== null)
      .map(([minute, s]) => `${s!.type}@${minute}`);
  };

  test("the scenario fires once after 10 minutes above 26 °C and resolves once below 25.5 °C", () => {
    const rule = normalizeRule({ kind: "threshold", metric: "temperature", max: 26, hysteresis: 0.5, duration_s: 600 });
    expect(run(rule, SCENARIO)).toEqual(["fire@20", "clear@25"]);
  });

  test("hysteresis stops the flapping that a bare threshold makes of the same readings", () => {
    const bare = normalizeRule({ kind: "threshold", metric: "temperature", max: 26, hysteresis: 0, duration_s: 0 });
    const damped = normalizeRule({ kind: "threshold", metric: "temperature", max: 26, hysteresis: 0.5, duration_s: 0 });
    expect(run(bare, SCENARIO).filter((s) => s.startsWith("fire"))).toHaveLength(5);
    expect(run(damped, SCENARIO)).toEqual(["fire@5", "clear@25"]);
  });

  test("below a minimum, and one odd reading does not alarm", () => {
    const cold = normalizeRule({ kind: "threshold", metric: "temperature", min: 5, duration_s: 300 });
    expect(
      run(cold, [
        [0, 6],
        [1, 4],
        [2, 6],
        [3, 4.5],
        [4, 4],
        [8, 3.8],
        [9, 5.2],
        [10, 5.6],
      ]),
    ).toEqual(["fire@8", "clear@10"]);
  });

  test("stuck, jump, mould, failures and staleness", () => {
    const stuck = normalizeRule({ kind: "stuck", duration_s: 3600 });
    const same = Array.from({ length: 62 }, (_, i): [number, number] => [i, 21.3]);
    expect(run(stuck, [...same, [62, 21.31]])).toEqual(["fire@60", "clear@62"]);
    const jump = normalizeRule({ kind: "jump", metric: "temperature", max: 5, duration_s: 600 });
    expect(
      run(jump, [
        [0, 21],
        [1, 38],
        [2, 21.2],
        [3, 21.3],
        [30, 40],
      ]),
    ).toEqual(["fire@1", "clear@3"]);
    const mould = normalizeRule({ kind: "mould", max: 70, duration_s: 3600, dew_margin: 2 });
    const state = newState();
    const humid = (minute: number, h: number, t = 20) => onReading(mould, state, { ts: minute * 60_000, t, h });
    expect([humid(0, 75), humid(30, 80), humid(60, 72)].map((s) => s?.type ?? null)).toEqual([null, null, "fire"]);
    expect(humid(61, 68)?.type ?? null).toBeNull(); // above 70 − 3 %
    expect(humid(62, 66)?.type).toBe("clear");
    const fails = normalizeRule({ kind: "failures", failures: 3 });
    const fs = newState();
    expect([1, 2, 3, 5, 0].map((n) => onFailures(fails, fs, n, n)?.type ?? null)).toEqual([null, null, "fire", null, "clear"]);
    const stale = normalizeRule({ kind: "stale", intervals: 5 });
    const ss = newState();
    expect(onClock(stale, ss, 0, 60, 299_999)).toBeNull();
    expect(onClock(stale, ss, 0, 60, 300_000)).toMatchObject({ type: "fire", value: 300, threshold: 300 });
    expect(onReading(stale, ss, { ts: 1, t: 20, h: 50 })?.type).toBe("clear");
  });
});

describe("times of day in the home's zone", () => {
  const paris = "Europe/Paris";
  test("quiet hours across midnight, and their end on DST days (23 and 25 hours)", () => {
    expect(inSpan(23 * 60, 22 * 60, 7 * 60)).toBe(true);
    expect(inSpan(12 * 60, 22 * 60, 7 * 60)).toBe(false);
    const quiet = { start: 22 * 60, end: 7 * 60 };
    // 2026-03-29: clocks go from 02:00 to 03:00 in Paris; 2026-10-25: from 03:00 back to 02:00.
    const spring = Date.parse("2026-03-28T22:30:00Z"); // 23:30 CET
    expect(new Date(quietUntil(spring, paris, quiet)!).toISOString()).toBe("2026-03-29T05:00:00.000Z"); // 07:00 CEST
    const autumn = Date.parse("2026-10-24T21:30:00Z"); // 23:30 CEST
    expect(new Date(quietUntil(autumn, paris, quiet)!).toISOString()).toBe("2026-10-25T06:00:00.000Z"); // 07:00 CET
    expect(quietUntil(Date.parse("2026-10-25T12:00:00Z"), paris, quiet)).toBeNull();
    // A time the spring change skips comes at the jump.
    expect(new Date(nextLocal(Date.parse("2026-03-28T12:00:00Z"), paris, 150)).toISOString()).toBe("2026-03-29T01:00:00.000Z");
    expect(localTime(Date.parse("2026-10-25T01:30:00Z"), paris)).toEqual({ date: "2026-10-25", minutes: 150 });
    expect(localTime(Date.parse("2026-10-25T00:30:00Z"), "America/New_York")).toEqual({
      date: "2026-10-24",
      minutes: 20 * 60 + 30,
    });
  });
});

describe("over HTTP", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
    await server.api("/api/v1/rooms", { body: { name: "Bathroom" } });
  });
  afterAll(() => server?.stop());

  test("the API refuses bad rule input with 400 naming the field, and stores nothing", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ kind: "threshold", metric: "temperature", max: "abc" }, "max must be a number, or null"],
      [{ kind: "threshold", metric: "temperature", min: 30, max: 20 }, "min: 30 is above max (20); min is the lower bound"],
      [
        { kind: "threshold", metric: "humidity", max: 80, room_uid: "cellar" },
        'room_uid: no room "cellar"; create it first or pick one of the rooms',
      ],
      [{ kind: "stale", device_uid: "aht20-000000" }, 'device_uid: no device "aht20-000000"'],
      [{ kind: "banana" }, "kind must be one of threshold, stale, failures, stuck, jump, mould"],
      [{ preset: "nope" }, 'preset: "nope" is not one of ' + PRESETS.map((p) => p.id).join(", ")],
    ];
    for (const [body, error] of cases) {
      const res = await server.api("/api/v1/alerts/rules", { body });
      expect(`${res.status} ${res.body.error}`).toBe(`400 ${error}`);
    }
    const bad = await server.api("/api/v1/alerts/rules", { body: "{not json", method: "POST" });
    expect(bad.status).toBe(400);
    expect((await server.api("/api/v1/alerts/rules")).body.data).toEqual([]);
    const settings = await server.api("/api/v1/alerts/settings", { method: "PUT", body: { quiet_start: "22:00" } });
    expect(`${settings.status} ${settings.body.error}`).toBe("400 quiet_end: give both ends of the quiet hours, or neither");
  });

  test("a preset applied to a room; a change, a rename and a delete through the API", async () => {
    const made = await server.api("/api/v1/alerts/rules", { body: { preset: "humidity-high", room_uid: "bathroom" } });
    expect(made.status).toBe(201);
    expect(made.body.data).toMatchObject({ name: "Humidity high", max: 66, severity: "warning", room: { uid: "bathroom" } });
    const id = made.body.data.id;
    const changed = await server.api(`/api/v1/alerts/rules/${id}`, { method: "PUT", body: { max: 70, min: 80 } });
    expect(`${changed.status} ${changed.body.error}`).toBe("400 min: 80 is above max (70); min is the lower bound");
    const ok = await server.api(`/api/v1/alerts/rules/${id}`, { method: "PUT", body: { max: 70, enabled: false } });
    expect(ok.body.data).toMatchObject({ max: 70, enabled: false, name: "Humidity high" });
    expect((await server.api(`/api/v1/alerts/rules/${id}`, { method: "DELETE" })).status).toBe(200);
    expect((await server.api(`/api/v1/alerts/rules/${id}`)).status).toBe(404);
  });

  test("the rules page answers a bad form with 422 and the message next to each field, keeping what was typed", async () => {
    const base = {
      kind: "threshold",
      metric: "temperature",
      severity: "warning",
      scope: "",
      min: "",
      max: "",
      hysteresis: "",
      duration: "",
      intervals: "",
      failures: "",
      dew_margin: "",
      name: "",
      enabled: "",
    };
    const notNumber = await postForm(server, "/alerts/rules", { ...base, max: "warm" });
    expect(notNumber.status).toBe(422);
    expect(fieldErrors(notNumber.html)).toEqual({ "new-max": "&quot;warm&quot; is not a number" });
    expect(notNumber.html).toContain('value="warm"');
    const minMax = await postForm(server, "/alerts/rules", { ...base, min: "30", max: "20" });
    expect(minMax.status).toBe(422);
    expect(fieldErrors(minMax.html)).toEqual({ "new-min": "30 is above max (20); min is the lower bound" });
    const room = await postForm(server, "/alerts/rules", { ...base, max: "26", scope: "room:cellar" });
    expect(room.status).toBe(422);
    expect(fieldErrors(room.html)).toEqual({
      "new-scope": "no room &quot;cellar&quot;; create it first or pick one of the rooms",
    });
    const long = await postForm(server, "/alerts/rules", { ...base, max: "26", duration: "20000" });
    expect(fieldErrors(long.html)).toEqual({ "new-duration": "must be from 0 to 10080 minutes for this kind of rule" });
    expect((await server.api("/api/v1/alerts/rules")).body.data).toEqual([]);
    // A decimal comma is a number; a good form is redirected with a notice.
    const good = await postForm(server, "/alerts/rules", { ...base, max: "26,5", scope: "room:bathroom" });
    expect(good).toMatchObject({ status: 303, location: "/alerts/rules?done=created" });
    expect((await server.api("/api/v1/alerts/rules")).body.data[0]).toMatchObject({ max: 26.5, duration_s: 300 });
  });

  test("the channels and settings forms answer 422 naming the field, and never echo a secret", async () => {
    const channel = await postForm(server, "/alerts/channels", {
      name: "mail",
      kind: "email",
      min_severity: "warning",
      host: "mail.test",
      port: "",
      security: "starttls",
      username: "me",
      password: "s3cret-pass",
      from: "a@b.test",
      to: "not-an-address",
      url: "",
      topic: "",
      token: "",
      secret: "",
      ca: "",
    });
    expect(channel.status).toBe(422);
    expect(fieldErrors(channel.html)).toEqual({ "new-to": "&quot;not-an-address&quot; is not an e-mail address" });
    expect(channel.html).not.toContain("s3cret-pass");
    const settings = await postForm(server, "/alerts/settings", {
      quiet_start: "22:00",
      quiet_end: "",
      quiet_allows_critical: "yes",
      repeat_minutes: "often",
      digest_time: "",
      link_base: "",
    });
    expect(settings.status).toBe(422);
    expect(fieldErrors(settings.html)).toEqual({ repeat_minutes: "a whole number of minutes, 0 for never" });
  });
});
