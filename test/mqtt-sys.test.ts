// Issue 16, the broker's statistics: Mosquitto's $SYS/broker/... topics,
// retained, refreshed every mqtt_sys_interval_s, at the same path after a
// restart, readable with a write token only. Real MQTT.js clients.

import { expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import { connectMqtt, createToken, endMqtt, publishAcked, startServer, tempDir, withTimeout } from "./helpers.ts";

/** Subscribes to $SYS/broker/# and collects the latest value of each topic. */
async function sysValues(client: MqttClient): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  client.on("message", (topic, payload) => values.set(topic, payload.toString()));
  await new Promise<void>((resolve, reject) => client.subscribe("$SYS/broker/#", (err) => (err ? reject(err) : resolve())));
  return values;
}

const until = (check: () => boolean, what: string) =>
  withTimeout(
    (async () => {
      while (!check()) await Bun.sleep(20);
    })(),
    8000,
    what,
  );

test("Mosquitto's $SYS/broker statistics, retained, refreshed, at the same path after a restart", async () => {
  const dir = tempDir();
  try {
    let server = await startServer({ mqtt_sys_interval_s: 1 }, { dataDir: dir.path });
    const watcher = await connectMqtt(server.mqttPort, { clientId: "sys-watcher" });
    const values = await sysValues(watcher);
    // Retained: a new subscriber gets them at once.
    await until(() => values.has("$SYS/broker/heap/current"), "the retained statistics");
    for (const name of [
      "version",
      "uptime",
      "clients/connected",
      "clients/disconnected",
      "clients/total",
      "clients/maximum",
      "messages/received",
      "messages/sent",
      "messages/stored",
      "publish/messages/received",
      "publish/messages/sent",
      "publish/messages/dropped",
      "bytes/received",
      "bytes/sent",
      "retained messages/count",
      "subscriptions/count",
      "heap/current",
    ]) {
      expect(`${name}: ${values.has(`$SYS/broker/${name}`)}`).toBe(`${name}: true`);
    }
    expect(values.get("$SYS/broker/uptime")).toMatch(/^\d+ seconds$/);
    // They follow what happens: 5 publishes are counted by the next round.
    const before = Number(values.get("$SYS/broker/publish/messages/received"));
    for (let i = 0; i < 5; i++) await publishAcked(watcher, `tools/sys/${i}`, "x", 5000, true);
    await until(() => Number(values.get("$SYS/broker/publish/messages/received")) >= before + 5, "the counts to follow");
    await until(() => Number(values.get("$SYS/broker/retained messages/count")) >= 5, "the retained count");
    expect(Number(values.get("$SYS/broker/clients/connected"))).toBeGreaterThanOrEqual(1);
    expect(Number(values.get("$SYS/broker/bytes/received"))).toBeGreaterThan(0);
    // A read token may not read them (the ACL's $SYS rule).
    const reader = await connectMqtt(server.mqttPort, { clientId: "sys-reader", ...createToken(server.store, "read") });
    const granted = await new Promise<string>((resolve) =>
      reader.subscribe("$SYS/broker/#", (err, g) => resolve(err ? `error ${err.message}` : JSON.stringify(g))),
    );
    // SUBACK 0x80, which MQTT.js reports as an error.
    expect(granted).toBe("error Subscribe error: Unspecified error");
    await endMqtt(reader);
    await endMqtt(watcher);
    await server.stop({ keepData: true });

    // After a restart: the same topics.
    server = await startServer({ mqtt_sys_interval_s: 1 }, { dataDir: dir.path });
    const again = await connectMqtt(server.mqttPort, { clientId: "sys-watcher-2" });
    const after = await sysValues(again);
    await until(() => after.has("$SYS/broker/clients/connected"), "the statistics after a restart");
    await endMqtt(again);
    await server.stop({ keepData: true });
  } finally {
    dir.cleanup();
  }
}, 40_000);
