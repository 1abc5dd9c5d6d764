// Issue 16, what the broker keeps across a restart (the earlier system's
// Mosquitto persisted it): retained messages, and persistent sessions'
// subscriptions. Real servers on one data directory, real MQTT.js clients.

import { expect, test } from "bun:test";
import { connectMqtt, endMqtt, legacyPayload, publishAcked, readingTopic, startServer, tempDir, withTimeout } from "./helpers.ts";

test("retained messages and a persistent session's subscriptions survive a restart; a clean session forgets them", async () => {
  const dir = tempDir();
  try {
    let server = await startServer({}, { dataDir: dir.path });
    const tool = await connectMqtt(server.mqttPort, { clientId: "persist-tool" });
    await publishAcked(tool, "tools/persist/a", "kept across restarts", 5000, true);
    await publishAcked(tool, "tools/persist/b", "cleared", 5000, true);
    await publishAcked(tool, "tools/persist/b", "", 5000, true); // an empty retained message clears it
    await endMqtt(tool);
    const away = await connectMqtt(server.mqttPort, { clientId: "persist-ha", clean: false });
    await new Promise<void>((resolve, reject) => away.subscribe("home/#", { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    await endMqtt(away);
    await server.stop({ keepData: true });

    server = await startServer({}, { dataDir: dir.path });
    expect(server.logs.some((l) => l.includes("restored the broker's state") && l.includes("sessions=1"))).toBe(true);
    // The retained message is there for a new subscriber; the cleared one is not.
    const reader = await connectMqtt(server.mqttPort, { clientId: "persist-reader" });
    const got = new Map<string, string>();
    reader.on("message", (topic, payload) => got.set(topic, payload.toString()));
    reader.subscribe("tools/persist/#");
    await withTimeout(
      (async () => {
        while (!got.has("tools/persist/a")) await Bun.sleep(10);
      })(),
      5000,
      "the retained message after the restart",
    );
    expect(got.get("tools/persist/a")).toBe("kept across restarts");
    await Bun.sleep(100);
    expect(got.has("tools/persist/b")).toBe(false);
    await endMqtt(reader);
    // The persistent session is still subscribed: it gets a reading without subscribing again.
    const back = await connectMqtt(server.mqttPort, { clientId: "persist-ha", clean: false });
    expect((back as unknown as { connackPacket?: { sessionPresent: boolean } }).connackPacket?.sessionPresent).toBe(true);
    const seen: string[] = [];
    back.on("message", (topic) => seen.push(topic));
    const sensor = await connectMqtt(server.mqttPort, { clientId: "persist-sensor" });
    await publishAcked(sensor, readingTopic("aht20-persist"), legacyPayload(21, 40, Date.now() - 1000));
    await withTimeout(
      (async () => {
        while (!seen.includes(readingTopic("aht20-persist"))) await Bun.sleep(10);
      })(),
      5000,
      "the reading for the restored session",
    );
    await endMqtt(sensor);
    await endMqtt(back);
    // A clean session forgets it, across restarts too.
    await endMqtt(await connectMqtt(server.mqttPort, { clientId: "persist-ha", clean: true }));
    await server.stop({ keepData: true });
    server = await startServer({}, { dataDir: dir.path });
    const fresh = await connectMqtt(server.mqttPort, { clientId: "persist-ha", clean: false });
    expect((fresh as unknown as { connackPacket?: { sessionPresent: boolean } }).connackPacket?.sessionPresent).toBe(false);
    await endMqtt(fresh);
    await server.stop({ keepData: true });
  } finally {
    dir.cleanup();
  }
}, 60_000);
