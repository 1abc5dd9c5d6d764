// The AHT20: the pure decoder and CRC against SPEC's known frames, and the
// real driver on the simulated device, byte for byte, with each fault. Time is
// simulated (sleep advances a fake clock), so no test waits for real.

import { describe, expect, test } from "bun:test";
import {
  Aht20Error,
  CMD_INIT,
  CMD_SOFT_RESET,
  CMD_TRIGGER,
  MIN_MEASURE_INTERVAL_MS,
  createAht20,
  crc8,
  decodeAht20,
  encodeAht20,
} from "../lib/sensor/aht20.ts";
import type { I2cBus } from "../lib/sensor/i2c.ts";
import { createSimAht20, createSimBus, simulatedClimate, type SimFaults } from "../lib/sensor/sim-aht20.ts";

const SPEC_FRAMES = [
  { bytes: [0x1c, 0x3b, 0x5e, 0x86, 0x88, 0xb2, 0xd2], humidity: 23.191, temperature: 31.675 },
  { bytes: [0x18, 0x93, 0xac, 0x95, 0x2a, 0xc5, 0xb3], humidity: 57.685, temperature: 14.588 },
  { bytes: [0x1c, 0x26, 0x9a, 0x76, 0x42, 0xe7, 0x76], humidity: 15.079, temperature: 28.267 },
];

describe("decodeAht20 and crc8", () => {
  for (const frame of SPEC_FRAMES) {
    const name = frame.bytes.map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ");
    test(`SPEC frame ${name} decodes to ${frame.humidity} %RH, ${frame.temperature} °C`, () => {
      expect(crc8(frame.bytes, 6)).toBe(frame.bytes[6]!);
      const decoded = decodeAht20(frame.bytes);
      if (!decoded.ok) throw new Error(decoded.detail);
      expect(decoded.value.humidity.toFixed(3)).toBe(frame.humidity.toFixed(3));
      expect(decoded.value.temperature.toFixed(3)).toBe(frame.temperature.toFixed(3));
    });
  }

  test("crc8 of nothing is the initial value 0xFF", () => {
    expect(crc8([])).toBe(0xff);
  });

  test("a frame with a wrong CRC is refused with both CRCs named", () => {
    const bytes = [...SPEC_FRAMES[0]!.bytes];
    bytes[6] = 0x00;
    const decoded = decodeAht20(bytes);
    expect(decoded).toMatchObject({ ok: false, problem: "crc" });
    expect(!decoded.ok && decoded.detail).toContain("should be 0xD2");
  });

  test("a frame with the busy bit set is not a measurement", () => {
    expect(decodeAht20(encodeAht20(0x9c, 50, 20))).toMatchObject({ ok: false, problem: "busy" });
  });

  test("a frame with the calibrated bit clear is refused", () => {
    expect(decodeAht20(encodeAht20(0x10, 50, 20))).toMatchObject({ ok: false, problem: "uncalibrated" });
  });

  test("raw humidity 0 is invalid, not a dry room", () => {
    expect(decodeAht20(encodeAht20(0x1c, 0, 20))).toMatchObject({ ok: false, problem: "humidity-zero" });
  });

  test("a short frame is refused", () => {
    expect(decodeAht20([0x1c, 0x3b])).toMatchObject({ ok: false, problem: "length" });
  });

  test("encodeAht20 and decodeAht20 round-trip within the sensor's resolution", () => {
    for (const [h, t] of [
      [0.5, -40],
      [45.67, 21.3],
      [99.9, 85],
    ] as const) {
      const decoded = decodeAht20(encodeAht20(0x1c, h, t));
      if (!decoded.ok) throw new Error(decoded.detail);
      expect(Math.abs(decoded.value.humidity - h)).toBeLessThan(0.001);
      expect(Math.abs(decoded.value.temperature - t)).toBeLessThan(0.001);
    }
  });
});

/** Fake monotonic time: sleeping advances it instantly. */
function fakeTime() {
  let t = 1000;
  return { now: () => t, sleep: async (ms: number) => void (t += ms) };
}

/** The simulated device on the simulated bus, with every write recorded. */
function rig(faults: SimFaults = {}, options: { climate?: ReturnType<typeof simulatedClimate> } = {}) {
  const time = fakeTime();
  const device = createSimAht20({
    faults,
    now: time.now,
    climate: options.climate ?? (() => ({ temperature: 22.5, humidity: 41.25 })),
  });
  const bus = createSimBus({ 0x38: device });
  const writes: number[][] = [];
  const recording: I2cBus = {
    i2cWrite: (addr, len, buf) => {
      writes.push(Array.from(buf.subarray(0, len)));
      return bus.i2cWrite(addr, len, buf);
    },
    i2cRead: (addr, len, buf) => bus.i2cRead(addr, len, buf),
    close: () => bus.close(),
  };
  const retries: string[] = [];
  const driver = createAht20(recording, { now: time.now, sleep: time.sleep, onRetry: (err) => retries.push(err.kind) });
  return { time, device, driver, writes, retries };
}

const isSoftReset = (w: number[]) => w.length === 1 && w[0] === CMD_SOFT_RESET;
const isTrigger = (w: number[]) => w.join() === CMD_TRIGGER.join();

async function readError(promise: Promise<unknown>): Promise<Aht20Error> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Aht20Error) return err;
    throw err;
  }
  throw new Error("expected the read to fail");
}

describe("AHT20 driver on the simulated sensor", () => {
  test("reads the simulated values through status check, trigger, busy wait and CRC", async () => {
    const { driver, writes, device } = rig();
    const m = await driver.read();
    expect(m.temperature).toBeCloseTo(22.5, 3);
    expect(m.humidity).toBeCloseTo(41.25, 3);
    expect(device.measurements).toBe(1);
    expect(writes[0]).toEqual([0x71]);
    expect(writes.filter(isTrigger)).toHaveLength(1);
  });

  test("an uncalibrated sensor of the newer revision gets its registers re-initialised and the init command", async () => {
    const { driver, writes } = rig({ uncalibrated: "until-init" });
    const m = await driver.read();
    expect(m.humidity).toBeCloseTo(41.25, 3);
    for (const reg of [0x1b, 0x1c, 0x1e]) {
      expect(writes).toContainEqual([reg, 0x00, 0x00]);
      expect(writes.some((w) => w.length === 3 && w[0] === (0xb0 | reg))).toBe(true);
    }
    expect(writes).toContainEqual([...CMD_INIT]);
  });

  test("a sensor that stays uncalibrated is a clear error after the retries", async () => {
    const { driver, retries } = rig({ uncalibrated: "stuck" });
    const err = await readError(driver.read());
    expect(err.kind).toBe("uncalibrated");
    expect(err.message).toContain("stays uncalibrated");
    expect(err.message).toContain("power it off and on");
    expect(retries).toEqual(["uncalibrated", "uncalibrated"]);
  });

  test("a measurement whose busy bit never clears is retried after a soft reset", async () => {
    const { driver, writes, device, retries } = rig({ busy: 1 });
    const m = await driver.read();
    expect(m.temperature).toBeCloseTo(22.5, 3);
    expect(device.measurements).toBe(2);
    expect(retries).toEqual(["busy"]);
    expect(writes.some(isSoftReset)).toBe(true);
  });

  test("a busy bit that never clears ends in a clear error after three attempts, each with a timeout", async () => {
    const { driver, device } = rig({ busy: "stuck" });
    const err = await readError(driver.read());
    expect(err.kind).toBe("busy");
    expect(err.message).toContain("stayed busy");
    expect(err.message).toContain("power supply");
    expect(device.measurements).toBe(3);
  });

  test("a bad CRC is retried and the next good frame is used", async () => {
    const { driver, retries } = rig({ badCrc: 1 });
    expect((await driver.read()).humidity).toBeCloseTo(41.25, 3);
    expect(retries).toEqual(["crc"]);
  });

  test("bad CRCs on every attempt end in an error naming the CRC", async () => {
    const { driver } = rig({ badCrc: 10 });
    const err = await readError(driver.read());
    expect(err.kind).toBe("crc");
    expect(err.message).toMatch(/CRC 0x[0-9A-F]{2} should be 0x[0-9A-F]{2}/);
  });

  test("raw humidity 0 is retried, not published", async () => {
    const { driver, retries } = rig({ zeroHumidity: 1 });
    expect((await driver.read()).humidity).toBeCloseTo(41.25, 3);
    expect(retries).toEqual(["invalid"]);
  });

  test("one NACK (a loose contact) is retried after a soft reset", async () => {
    const { driver, retries } = rig({ nack: 1 });
    expect((await driver.read()).temperature).toBeCloseTo(22.5, 3);
    expect(retries).toEqual(["missing"]);
  });

  test("a missing sensor is reported with the wiring to check and i2cdetect", async () => {
    const { driver } = rig({ missing: true });
    const err = await readError(driver.read());
    expect(err.kind).toBe("missing");
    expect(err.message).toContain("no AHT20 answers at 0x38 on I2C bus 1");
    expect(err.message).toContain("check the wiring");
    expect(err.message).toContain("`i2cdetect -y 1`");
  });

  test("a sensor that comes back after a fault reads normally again", async () => {
    const { driver, device } = rig({ missing: true });
    await readError(driver.read());
    device.faults.missing = false;
    expect((await driver.read()).temperature).toBeCloseTo(22.5, 3);
  });

  test("measurements are never triggered less than 2 s apart (self-heating)", async () => {
    const { driver, time } = rig();
    const triggers: number[] = [];
    const spy = createAht20(
      {
        i2cWrite: async (_addr, len, buf) => {
          if (isTrigger(Array.from(buf.subarray(0, len)))) triggers.push(time.now());
          return { bytesWritten: len, buffer: buf };
        },
        i2cRead: async (_addr, len, buf) => {
          buf.set(encodeAht20(0x1c, 40, 20).subarray(0, len));
          return { bytesRead: len, buffer: buf };
        },
        close: async () => {},
      },
      { now: time.now, sleep: time.sleep },
    );
    await driver.read();
    for (let i = 0; i < 3; i++) await spy.read();
    expect(triggers).toHaveLength(3);
    expect(triggers[1]! - triggers[0]!).toBeGreaterThanOrEqual(MIN_MEASURE_INTERVAL_MS);
    expect(triggers[2]! - triggers[1]!).toBeGreaterThanOrEqual(MIN_MEASURE_INTERVAL_MS);
  });

  test("the simulated climate is plausible and differs per device", () => {
    const a = simulatedClimate("living-room", { noise: () => 0 });
    const b = simulatedClimate("bedroom", { noise: () => 0 });
    const at = Date.UTC(2025, 0, 15, 15);
    for (const c of [a, b]) {
      for (let hour = 0; hour < 24; hour++) {
        const { temperature, humidity } = c(at + hour * 3_600_000);
        expect(temperature).toBeGreaterThan(15);
        expect(temperature).toBeLessThan(28);
        expect(humidity).toBeGreaterThan(25);
        expect(humidity).toBeLessThan(70);
      }
    }
    expect(a(at).temperature).not.toBeCloseTo(b(at).temperature, 1);
  });
});
