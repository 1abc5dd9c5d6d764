// A restart in the middle of an incident neither loses nor repeats a
// notification. The server runs as a child process (`bun server.ts`) and is
// killed with SIGKILL: the outbox and the incident are in SQLite, each
// notification marked sent only after its receiver accepted it, and the
// readings evaluated before the crash are replayed at start without acting
// again. Readings stored but never evaluated (a crash between the commit and
// their turn in the queue) are evaluated at the next start.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import { connectMqtt, endMqtt, spawnServer, startServer, tempDir, waitFor, type ChildServer } from "./helpers.ts";
import { placeDevice } from "./web-helpers.ts";
import { feed, httpReceiver, received, type HttpReceiver } from "./alerts-helpers.ts";

const UID = "aht20-a1a1a1";
const BASE = Date.now() - 3_600_000;
let hook: HttpReceiver;
let ntfy: HttpReceiver;

beforeAll(() => {
  hook = httpReceiver();
  ntfy = httpReceiver();
});
afterAll(() => {
  hook?.stop();
  ntfy?.stop();
});

/** A data directory with the owner, a device in the Cellar, a rule "above 26 °C for 2 min" and two channels. */
async function seed(dir: string) {
  const server = await startServer({}, { dataDir: dir });
  const client = await connectMqtt(server.mqttPort);
  await placeDevice(server, client, { uid: UID, room: "Cellar", placedAt: BASE - 60_000 });
  await endMqtt(client);
  const rule = await server.api("/api/v1/alerts/rules", {
    body: { name: "Cellar warm", kind: "threshold", metric: "temperature", max: 26, duration_s: 120, room_uid: "cellar" },
  });
  expect(rule.status).toBe(201);
  for (const body of [
    { name: "hook", kind: "webhook", url: hook.url, secret: "a webhook secret of some length" },
    { name: "ntfy", kind: "ntfy", url: ntfy.url, topic: "cellar" },
  ]) {
    expect((await server.api("/api/v1/alerts/channels", { body })).status).toBe(201);
  }
  const login = server.mqttLogin!;
  await server.stop({ keepData: true });
  return { login, token: server.token };
}

/** The server as a child process on `dir`, retrying a failed notification after 1 s. */
const child = (dir: string) => spawnServer(dir, { TECHTEMP_ALERT_RETRY_BASE_S: "1", TECHTEMP_LOG_LEVEL: "debug" });

const api = async (c: ChildServer, token: string, path: string) =>
  (await (
    await fetch(c.url + path, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) })
  ).json()) as any;

/** Waits until nothing is left to send. */
const drained = (c: ChildServer, token: string) =>
  waitFor(
    async () => (await api(c, token, "/api/v1/alerts/notifications?state=pending")).data.length === 0,
    15_000,
    "an empty outbox",
  );

describe("a restart in the middle of an incident", () => {
  test("SIGKILL after 'opened' went out: after the restart only 'resolved' is sent, once, and the incident keeps its start and worst value", async () => {
    const dir = tempDir();
    hook.got.length = 0;
    ntfy.got.length = 0;
    let c: ChildServer | null = null;
    let client: MqttClient | null = null;
    try {
      const { login, token } = await seed(dir.path);
      c = await child(dir.path);
      client = await connectMqtt(c.mqttPort, login);
      await feed(client, UID, BASE, [
        [0, 25],
        [1, 26.5],
        [2, 27],
        [3, 28.5],
        [4, 27.5],
      ]);
      await received(hook, 1);
      await received(ntfy, 1);
      // Marked sent: the one moment a crash sends a notification again is the few milliseconds between
      // its receiver's answer and that commit (README, "Alerts"); a crash then is not this test's.
      await drained(c, token);
      await endMqtt(client, true);
      expect(await c.stop("SIGKILL")).not.toBe(0);

      c = await child(dir.path);
      client = await connectMqtt(c.mqttPort, login);
      // Still above for longer than the rule's 2 minutes (no second "opened": the incident is the stored one),
      // a new worst value, then back below 25.5 °C: resolved.
      await feed(client, UID, BASE, [
        [5, 27.2],
        [6, 29],
        [7, 27],
        [8, 27.1],
        [9, 25.2],
      ]);
      await received(hook, 2);
      await drained(c, token);
      expect(hook.got.map((r) => r.json.event)).toEqual(["opened", "resolved"]);
      expect(ntfy.got.map((r) => r.json.title)).toEqual(["Warning: Cellar warm · Cellar", "Resolved: Cellar warm · Cellar"]);
      const incidents = (await api(c, token, "/api/v1/alerts/incidents")).data;
      expect(incidents).toHaveLength(1);
      expect(incidents[0]).toMatchObject({
        state: "resolved",
        since: new Date(BASE + 60_000).toISOString(),
        peak: 29,
        last_value: 25.2,
      });
      expect(c.output()).not.toContain("ERROR");
    } finally {
      if (client) await endMqtt(client, true);
      await c?.stop("SIGKILL");
      dir.cleanup();
    }
  }, 90_000);

  test("SIGKILL while the receiver is down: the queued 'opened' is sent after the restart, once, then 'resolved'", async () => {
    const dir = tempDir();
    hook.got.length = 0;
    ntfy.got.length = 0;
    let c: ChildServer | null = null;
    let client: MqttClient | null = null;
    try {
      const { login, token } = await seed(dir.path);
      hook.failNext(1000, 503);
      c = await child(dir.path);
      client = await connectMqtt(c.mqttPort, login);
      await feed(client, UID, BASE, [
        [0, 25],
        [1, 27],
        [2, 27.5],
        [3, 28],
      ]);
      const first = c;
      // The webhook's "opened" failed at least once and waits for its next attempt.
      await waitFor(
        async () =>
          (await api(first, token, "/api/v1/alerts/notifications?state=pending")).data.some((n: any) => n.attempts >= 1),
        15_000,
        "a failed attempt",
      );
      await endMqtt(client, true);
      await c.stop("SIGKILL");
      hook.failNext(0);

      c = await child(dir.path);
      await received(hook, 1);
      client = await connectMqtt(c.mqttPort, login);
      await feed(client, UID, BASE, [[4, 24]]);
      await received(hook, 2);
      await drained(c, token);
      expect(hook.got.map((r) => r.json.event)).toEqual(["opened", "resolved"]);
      expect(new Set(hook.got.map((r) => r.json.id)).size).toBe(2);
      expect(ntfy.got.map((r) => r.json.tags)).toEqual([["warning"], ["white_check_mark"]]);
      const sent = (await api(c, token, "/api/v1/alerts/notifications")).data;
      const opened = sent.find((n: any) => n.channel.name === "hook" && n.event === "opened");
      expect(opened.state).toBe("sent");
      expect(opened.attempts).toBeGreaterThanOrEqual(2);
    } finally {
      hook.failNext(0);
      if (client) await endMqtt(client, true);
      await c?.stop("SIGKILL");
      dir.cleanup();
    }
  }, 90_000);

  test("readings stored but never evaluated (the rules' queue lost in a crash) are evaluated at the next start", async () => {
    const dir = tempDir();
    hook.got.length = 0;
    try {
      await seed(dir.path);
      const server = await startServer({}, { dataDir: dir.path });
      const client = await connectMqtt(server.mqttPort);
      await feed(client, UID, BASE, [
        [0, 25],
        [1, 25.5],
      ]);
      await server.alerts.idle();
      // The rules stop as in a crash after these commits; the readings are stored all the same.
      await server.alerts.close();
      await feed(client, UID, BASE, [
        [2, 27],
        [3, 27.5],
        [4, 28],
      ]);
      await endMqtt(client);
      expect(hook.got).toHaveLength(0);
      await server.stop({ keepData: true });

      const again = await startServer({}, { dataDir: dir.path });
      try {
        await received(hook, 1);
        await again.alerts.idle();
        expect(hook.got.map((r) => r.json.event)).toEqual(["opened"]);
        expect(hook.got[0]!.json.incident).toMatchObject({ since: new Date(BASE + 120_000).toISOString(), value: 28, peak: 28 });
        // A third start replays the same readings and does nothing more.
        await again.stop({ keepData: true });
        const third = await startServer({}, { dataDir: dir.path });
        await third.alerts.idle();
        await third.stop({ keepData: true });
        expect(hook.got).toHaveLength(1);
      } finally {
        await again.stop({ keepData: true });
      }
    } finally {
      dir.cleanup();
    }
  }, 90_000);
});
