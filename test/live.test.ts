// The live summaries on their own: the latest reading of each device from the
// cache, with the room it was taken in, and the cards a change refreshes.
import { expect, onTestFinished, test } from "bun:test";
import { createLive, type LiveChange } from "../lib/server/live/live.ts";
import { createLog } from "../lib/shared/log.ts";
import { waitFor } from "./helpers.ts";
import { openTempStore, reading } from "./history-helpers.ts";

const HOUR = 3_600_000;
const T0 = Date.parse("2026-03-01T09:00:00Z");

function world() {
  const log = createLog({ sink() {} });
  const { store, close } = openTempStore({ now: () => T0 + 10 * HOUR, log });
  onTestFinished(close);
  const live = createLive({ store, log });
  onTestFinished(live.close);
  const latest = (uid: string) => live.latest(store.getDevice(uid));
  return { store, live, latest };
}

test("the latest reading comes from the cache and follows each commit", () => {
  const { store, latest } = world();
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen", at: T0 });
  expect(latest("aht20-a")).toBeNull();
  store.insertReadings([reading("aht20-a", T0 + HOUR, 20.5, 41), reading("aht20-a", T0 + 2 * HOUR, 21.25, 42)]);
  expect(latest("aht20-a")).toEqual({
    device_uid: "aht20-a",
    room_uid: "kitchen",
    ts: T0 + 2 * HOUR,
    temperature: 21.25,
    humidity: 42,
  });
  // An older reading arriving late does not replace it.
  store.insertReadings([reading("aht20-a", T0 + 1.5 * HOUR, 30, 50)]);
  expect(latest("aht20-a")!.ts).toBe(T0 + 2 * HOUR);
});

test("the latest reading belongs to the room the device was in when it was taken", () => {
  const { store, latest } = world();
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen", at: T0 });
  store.insertReadings([reading("aht20-a", T0 + 2 * HOUR, 21, 40)]);
  // A move back-dated before it takes the reading along.
  store.updateDevice("aht20-a", { roomName: "Hall", movedAt: T0 + HOUR });
  expect(latest("aht20-a")!.room_uid).toBe("hall");
  // Moved after its last reading: the reading stays the hall's.
  store.updateDevice("aht20-a", { roomName: "Office", movedAt: T0 + 3 * HOUR });
  expect(latest("aht20-a")!.room_uid).toBe("hall");
  // Taken out of every room: still the room it was taken in.
  store.updateDevice("aht20-a", { roomUid: null, movedAt: T0 + 4 * HOUR });
  expect(latest("aht20-a")!.room_uid).toBe("hall");
  // A device that registered itself by publishing has no room.
  store.insertReadings([reading("aht20-b", T0, 19, 50)]);
  expect(latest("aht20-b")!.room_uid).toBeNull();
});

test("a recorded status message refreshes its device's card", async () => {
  const { store, live } = world();
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen", at: T0 });
  const changes: LiveChange[] = [];
  live.onChange((c) => changes.push(c));
  store.applyStatus("home-001", "aht20-a", { state: "offline" }, T0 + HOUR);
  await waitFor(() => changes.length > 0, 2000, "the live change");
  expect([...changes[0]!.rooms]).toEqual(["kitchen"]);
});

test("a move refreshes both the room the device left and the one it joined", async () => {
  const { store, live } = world();
  const changes: LiveChange[] = [];
  live.onChange((c) => changes.push(c));
  store.createDevice({ uid: "aht20-a", roomName: "Kitchen", at: T0 });
  await waitFor(() => changes.length > 0, 2000, "the change of its registration");
  changes.length = 0;
  store.updateDevice("aht20-a", { roomName: "Hall" });
  await waitFor(() => changes.length > 0, 2000, "the live change");
  expect([...changes[0]!.rooms].sort()).toEqual(["hall", "kitchen"]);
  expect(changes[0]!.unplaced).toBe(false);
});
