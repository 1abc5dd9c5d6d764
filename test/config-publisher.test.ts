// Config publishing on its own: which store changes publish a device's
// retained config message, what it holds, and the republishing at start.
import { expect, onTestFinished, test } from "bun:test";
import { createConfigPublisher } from "../lib/server/mqtt/config-publisher.ts";
import { createLog } from "../lib/shared/log.ts";
import { waitFor } from "./helpers.ts";
import { openTempStore } from "./history-helpers.ts";

function world(options: { failing?: boolean } = {}) {
  const lines: string[] = [];
  const log = createLog({ sink: (l) => lines.push(l) });
  const { store, close } = openTempStore({ log });
  onTestFinished(close);
  const published: [topic: string, payload: unknown, retain: boolean][] = [];
  const broker = {
    async publish(topic: string, payload: string, { retain }: { retain: boolean }) {
      if (options.failing) throw new Error("broker closed");
      published.push([topic, JSON.parse(payload), retain]);
    },
  };
  const publisher = createConfigPublisher({ store, broker, homeId: "home-001", log });
  onTestFinished(publisher.close);
  return { store, published, publisher, lines };
}

test("a settings change publishes the device's retained config; other changes publish nothing", () => {
  const { store, published } = world();
  store.applyStatus("home-042", "aht20-a", { state: "online", interval_s: 300 }, 1000);
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen" });
  store.updateDevice("aht20-a", { label: "by the door", roomName: "Hall" });
  expect(published).toEqual([]);
  store.updateDevice("aht20-a", { temperature_offset: -0.5 });
  // Its announced interval is repeated while none is configured; its own home id is used.
  expect(published).toEqual([
    ["home/home-042/sensors/aht20-a/config", { interval_s: 300, temperature_offset: -0.5, humidity_offset: 0 }, true],
  ]);
  store.updateDevice("aht20-a", { config_interval_s: 60, temperature_offset: -0.5 });
  expect(published[1]).toEqual([
    "home/home-042/sensors/aht20-a/config",
    { interval_s: 60, temperature_offset: -0.5, humidity_offset: 0 },
    true,
  ]);
  store.updateDevice("aht20-a", { config_interval_s: 60 });
  expect(published).toHaveLength(2);
});

test("at start every device with settings of its own is published, under the default home when it never said one", async () => {
  const { store, published, publisher } = world();
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen" });
  store.createDevice({ uid: "aht20-b", roomName: "Hall" });
  store.updateDevice("aht20-b", { humidity_offset: 2 });
  published.length = 0;
  await publisher.publishAll();
  expect(published).toEqual([["home/home-001/sensors/aht20-b/config", { temperature_offset: 0, humidity_offset: 2 }, true]]);
});

test("a config that cannot be published is logged; the change itself stands", async () => {
  const { store, lines } = world({ failing: true });
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen" });
  expect(store.updateDevice("aht20-a", { temperature_offset: 1 }).temperature_offset).toBe(1);
  await waitFor(() => lines.some((l) => l.includes("cannot publish config") && l.includes("broker closed")));
});

test("once closed it follows the store no more", () => {
  const { store, published, publisher } = world();
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen" });
  publisher.close();
  store.updateDevice("aht20-a", { temperature_offset: 1 });
  expect(published).toEqual([]);
});
