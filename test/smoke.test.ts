import { expect, test } from "bun:test";
import { connectMqtt, endMqtt, legacyPayload, publishAcked, readingTopic, startServer } from "./helpers.ts";

test("a reading published over MQTT is returned by the API", async () => {
  const server = await startServer();
  try {
    const client = await connectMqtt(server.mqttPort);
    await publishAcked(client, readingTopic("aht20-aaaaaa"), legacyPayload(21.5, 40, 1_725_427_200_000));
    await endMqtt(client);
    const { status, body } = await server.api("/api/v1/readings/latest?deviceId=aht20-aaaaaa");
    expect(status).toBe(200);
    expect(body.data).toEqual([
      { device_id: "aht20-aaaaaa", room_id: null, ts: "2024-09-04T05:20:00.000Z", temperature: 21.5, humidity: 40 },
    ]);
  } finally {
    await server.stop();
  }
});
