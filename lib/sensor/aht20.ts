// The AHT20 temperature and humidity sensor: protocol constants, a pure frame
// decoder with its CRC-8, and the driver that moves bytes on an I2C bus.
// Bytes are kept apart from I/O (like Adafruit's adafruit_ahtx0.py), but every
// busy-wait here has a timeout and every read a retry budget.
//
// Sources: the Aosong AHT20 datasheet (v1.1) and its sample program, and the
// reference drivers (Adafruit AHTX0, Zephyr aht20, ESPHome aht10/aht21).

import { I2cError, type I2cBus } from "./i2c.ts";

/** The AHT20's fixed I2C address. */
export const AHT20_ADDRESS = 0x38;

/** Initialise / load calibration (`0xBE 0x08 0x00`). */
export const CMD_INIT = [0xbe, 0x08, 0x00] as const;
/** Trigger a measurement (`0xAC 0x33 0x00`). */
export const CMD_TRIGGER = [0xac, 0x33, 0x00] as const;
/** Soft reset: the sensor reloads its calibration, as after power-up. */
export const CMD_SOFT_RESET = 0xba;
/** Ask for the status byte. */
export const CMD_STATUS = 0x71;

/** Status bit 7: a measurement is in progress. */
export const STATUS_BUSY = 0x80;
/** Status bit 3: calibration loaded. */
export const STATUS_CALIBRATED = 0x08;
/**
 * Newer sensor revisions: when status bits 3 and 4 are not both set, the
 * registers 0x1B, 0x1C and 0x1E must be re-initialised (datasheet v1.1 §5.4,
 * Aosong sample program `JH_Reset_REG`).
 */
export const STATUS_READY_MASK = 0x18;
/** The registers re-initialised when `(status & 0x18) != 0x18`. */
export const INIT_REGISTERS = [0x1b, 0x1c, 0x1e] as const;

/** Datasheet: wait at least 100 ms after power-up before the first command (v1.1; older: 40 ms). */
export const POWER_UP_MS = 100;
/** Datasheet: a measurement takes 80 ms. */
export const MEASURE_MS = 80;
/** Poll the busy bit this often after the first 80 ms… */
export const BUSY_POLL_MS = 10;
/** …for at most this long before giving up on the measurement. */
export const BUSY_TIMEOUT_MS = 200;
/** Datasheet: soft reset completes within 20 ms. */
export const SOFT_RESET_MS = 20;
/** Datasheet: wait 10 ms after the init command. */
export const INIT_MS = 10;
/**
 * Never trigger measurements more often than every 2 s: the datasheet warns
 * that measuring more often heats the chip and skews the temperature.
 */
export const MIN_MEASURE_INTERVAL_MS = 2000;
/** Attempts per reading (the first plus retries after a soft reset). */
export const READ_ATTEMPTS = 3;

/** Length of a measurement frame: status, 5 data bytes, CRC. */
export const FRAME_LENGTH = 7;
/** 2^20: the full scale of the 20-bit raw values. */
const FULL_SCALE = 1 << 20;

/** CRC-8 as the AHT20 computes it: polynomial 0x31 (x^8+x^5+x^4+1), initial value 0xFF. */
export function crc8(bytes: ArrayLike<number>, length = bytes.length): number {
  let crc = 0xff;
  for (let i = 0; i < length; i++) {
    crc ^= bytes[i]!;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80 ? ((crc << 1) ^ 0x31) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

/** A decoded measurement. */
export interface Aht20Measurement {
  /** Relative humidity, % (0…100). */
  humidity: number;
  /** Temperature, °C (−50…150 by the formula; the sensor is rated −40…85). */
  temperature: number;
  /** The status byte of the frame. */
  status: number;
}

/** Why a frame was not a measurement. */
export type Aht20FrameProblem = "length" | "busy" | "uncalibrated" | "crc" | "humidity-zero";

/** Result of decoding a frame: the measurement, or the problem. */
export type Aht20Decoded = { ok: true; value: Aht20Measurement } | { ok: false; problem: Aht20FrameProblem; detail: string };

const hex = (n: number) => `0x${n.toString(16).padStart(2, "0").toUpperCase()}`;
const hexFrame = (frame: ArrayLike<number>) => Array.from(frame, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ");

/**
 * Decodes a 7-byte AHT20 frame: status, humidity (20 bits), temperature
 * (20 bits), CRC-8 of the first six bytes.
 *   RH = raw_h / 2^20 × 100 %;   T = raw_t / 2^20 × 200 − 50 °C.
 * A raw humidity of 0 is what a sensor that is not measuring returns, so it
 * is treated as invalid rather than as a dry room.
 */
export function decodeAht20(frame: ArrayLike<number>): Aht20Decoded {
  if (frame.length < FRAME_LENGTH) {
    return { ok: false, problem: "length", detail: `frame of ${frame.length} bytes, expected ${FRAME_LENGTH}` };
  }
  const status = frame[0]!;
  if (status & STATUS_BUSY) return { ok: false, problem: "busy", detail: `status ${hex(status)} has the busy bit set` };
  if (!(status & STATUS_CALIBRATED)) {
    return { ok: false, problem: "uncalibrated", detail: `status ${hex(status)} has the calibrated bit clear` };
  }
  const expected = crc8(frame, 6);
  if (frame[6] !== expected) {
    return { ok: false, problem: "crc", detail: `CRC ${hex(frame[6]!)} should be ${hex(expected)} (frame ${hexFrame(frame)})` };
  }
  const rawHumidity = (frame[1]! << 12) | (frame[2]! << 4) | (frame[3]! >> 4);
  const rawTemperature = ((frame[3]! & 0x0f) << 16) | (frame[4]! << 8) | frame[5]!;
  if (rawHumidity === 0) return { ok: false, problem: "humidity-zero", detail: `raw humidity is 0 (frame ${hexFrame(frame)})` };
  return {
    ok: true,
    value: { humidity: (rawHumidity * 100) / FULL_SCALE, temperature: (rawTemperature * 200) / FULL_SCALE - 50, status },
  };
}

/**
 * Builds the frame a sensor would send for these values (the simulator's
 * side of `decodeAht20`). `crc` overrides the checksum byte, for faults.
 */
export function encodeAht20(status: number, humidity: number, temperature: number, crc?: number): Uint8Array {
  const clamp = (v: number) => Math.max(0, Math.min(FULL_SCALE - 1, Math.round(v)));
  const h = clamp((humidity / 100) * FULL_SCALE);
  const t = clamp(((temperature + 50) / 200) * FULL_SCALE);
  const frame = new Uint8Array(FRAME_LENGTH);
  frame[0] = status;
  frame[1] = (h >> 12) & 0xff;
  frame[2] = (h >> 4) & 0xff;
  frame[3] = ((h & 0x0f) << 4) | ((t >> 16) & 0x0f);
  frame[4] = (t >> 8) & 0xff;
  frame[5] = t & 0xff;
  frame[6] = crc ?? crc8(frame, 6);
  return frame;
}

/** What went wrong with the sensor, in words a person can act on. */
export type Aht20ErrorKind = "bus" | "missing" | "busy" | "crc" | "uncalibrated" | "invalid";

/** A sensor failure. `message` says what to check; `kind` is for code and tests. */
export class Aht20Error extends Error {
  constructor(
    readonly kind: Aht20ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Options of the driver; tests inject the clock and sleep so no real time passes. */
export interface Aht20Options {
  address?: number;
  /** Bus number, only for messages (`i2cdetect -y 1`). */
  busNumber?: number;
  /** Monotonic milliseconds. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Minimum time between two measurements (default 2 s; see MIN_MEASURE_INTERVAL_MS). */
  minIntervalMs?: number;
  /** Attempts per reading (default 3). */
  attempts?: number;
  /** Called before each retry with the error that caused it. */
  onRetry?: (err: Aht20Error, attempt: number) => void;
}

/** A driver bound to one sensor on one bus. */
export interface Aht20 {
  /** Waits for power-up, checks the status, initialises registers and calibration when needed. */
  init(): Promise<void>;
  /** Measures once (with retries and a soft reset between them); throws Aht20Error. */
  read(): Promise<Aht20Measurement>;
  /** Sends the soft-reset command and waits for it to complete. */
  softReset(): Promise<void>;
}

/** Creates an AHT20 driver on `bus`. */
export function createAht20(bus: I2cBus, options: Aht20Options = {}): Aht20 {
  const address = options.address ?? AHT20_ADDRESS;
  const busNumber = options.busNumber ?? 1;
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => Bun.sleep(ms));
  const minInterval = options.minIntervalMs ?? MIN_MEASURE_INTERVAL_MS;
  const attempts = options.attempts ?? READ_ATTEMPTS;
  const where = `${hex(address)} on I2C bus ${busNumber}`;
  let initialised = false;
  let lastTrigger = -Infinity;
  const startedAt = now();

  /** Bus errors become sensor errors: a NACK means nothing answers at the address. */
  const io = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      if (err instanceof I2cError && err.code === "NACK") {
        throw new Aht20Error(
          "missing",
          `no AHT20 answers at ${where} (${what}): check the wiring (SDA to GPIO2 pin 3, SCL to GPIO3 pin 5, VIN to 3.3 V, GND) ` +
            `and run \`i2cdetect -y ${busNumber}\`, which should show 38`,
        );
      }
      if (err instanceof I2cError) throw new Aht20Error("bus", err.message);
      throw err;
    }
  };

  const write = (bytes: readonly number[], what: string) =>
    io(what, () => bus.i2cWrite(address, bytes.length, Uint8Array.from(bytes)));
  const readBytes = async (length: number, what: string): Promise<Uint8Array> => {
    const buf = new Uint8Array(length);
    const { bytesRead: n } = await io(what, () => bus.i2cRead(address, length, buf));
    if (n < length) throw new Aht20Error("bus", `short read from ${where} (${what}): ${n} of ${length} bytes`);
    return buf;
  };
  const readStatus = async (): Promise<number> => {
    await write([CMD_STATUS], "status");
    return (await readBytes(1, "status"))[0]!;
  };

  /** Aosong's JH_Reset_REG: write 0, read back 3 bytes, write bytes 1–2 to 0xB0|reg. */
  async function resetRegister(reg: number): Promise<void> {
    await write([reg, 0x00, 0x00], `reset register ${hex(reg)}`);
    await sleep(5);
    const back = await readBytes(3, `reset register ${hex(reg)}`);
    await sleep(10);
    await write([0xb0 | reg, back[1]!, back[2]!], `reset register ${hex(reg)}`);
    await sleep(10);
  }

  async function init(): Promise<void> {
    const sincePowerUp = now() - startedAt;
    if (sincePowerUp < POWER_UP_MS) await sleep(POWER_UP_MS - sincePowerUp);
    let status = await readStatus();
    if ((status & STATUS_READY_MASK) !== STATUS_READY_MASK) {
      for (const reg of INIT_REGISTERS) await resetRegister(reg);
      status = await readStatus();
    }
    if (!(status & STATUS_CALIBRATED)) {
      await write(CMD_INIT, "init");
      await sleep(INIT_MS);
      status = await readStatus();
    }
    if (!(status & STATUS_CALIBRATED) || (status & STATUS_READY_MASK) !== STATUS_READY_MASK) {
      throw new Aht20Error(
        "uncalibrated",
        `the AHT20 at ${where} stays uncalibrated (status ${hex(status)}) after initialisation: ` +
          `power it off and on again; if it persists the sensor is faulty`,
      );
    }
    initialised = true;
  }

  async function softReset(): Promise<void> {
    initialised = false;
    await write([CMD_SOFT_RESET], "soft reset");
    await sleep(SOFT_RESET_MS);
  }

  async function measureOnce(): Promise<Aht20Measurement> {
    if (!initialised) await init();
    const wait = lastTrigger + minInterval - now();
    if (wait > 0) await sleep(wait);
    lastTrigger = now();
    await write(CMD_TRIGGER, "trigger");
    await sleep(MEASURE_MS);
    const deadline = now() + BUSY_TIMEOUT_MS;
    for (;;) {
      const frame = await readBytes(FRAME_LENGTH, "measurement");
      const decoded = decodeAht20(frame);
      if (decoded.ok) return decoded.value;
      if (decoded.problem !== "busy") {
        const kind = decoded.problem === "crc" ? "crc" : decoded.problem === "uncalibrated" ? "uncalibrated" : "invalid";
        throw new Aht20Error(kind, `the AHT20 at ${where} sent a bad measurement: ${decoded.detail}`);
      }
      if (now() >= deadline) {
        throw new Aht20Error(
          "busy",
          `the AHT20 at ${where} stayed busy ${MEASURE_MS + BUSY_TIMEOUT_MS} ms after a measurement was triggered: ` +
            `check its power supply (3.3 V) and wiring`,
        );
      }
      await sleep(BUSY_POLL_MS);
    }
  }

  async function read(): Promise<Aht20Measurement> {
    let lastError: Aht20Error | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        return await measureOnce();
      } catch (err) {
        if (!(err instanceof Aht20Error)) throw err;
        lastError = err;
        // No bus, or no permission: a reset will not help, report it now. (A NACK
        // is retried: a loose contact may answer again; a missing sensor
        // fails the soft reset too, which ends the attempts.)
        if (err.kind === "bus" || attempt === attempts) break;
        options.onRetry?.(err, attempt);
        try {
          await softReset();
        } catch (resetErr) {
          if (resetErr instanceof Aht20Error) {
            lastError = resetErr;
            break;
          }
          throw resetErr;
        }
      }
    }
    throw lastError!;
  }

  return { init, read, softReset };
}
