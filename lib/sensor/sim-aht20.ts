// A simulated AHT20 on a simulated I2C bus, byte for byte: the same commands,
// status bits, busy time, 7-byte frames and CRC-8 as the real sensor, so the
// real driver (lib/sensor/aht20.ts) runs unchanged on top of it. Faults can be
// injected (stuck busy bit, bad CRC, NACK, uncalibrated status, missing
// device) for tests; `driver = sim` uses it with a plausible climate for demos.

import {
  CMD_INIT,
  CMD_SOFT_RESET,
  CMD_STATUS,
  CMD_TRIGGER,
  INIT_REGISTERS,
  MEASURE_MS,
  STATUS_BUSY,
  STATUS_CALIBRATED,
  encodeAht20,
} from "./aht20.ts";
import { I2cError, type I2cBus } from "./i2c.ts";

/** Faults to inject. Counters are used up one event at a time; change them at any moment. */
export interface SimFaults {
  /** No device at the address: every transfer is not acknowledged (wiring). */
  missing?: boolean;
  /** The next N transfers are not acknowledged (a loose contact). */
  nack?: number;
  /** The next N measurements never finish, or "stuck": none ever does. */
  busy?: number | "stuck";
  /** The next N measurement frames carry a wrong CRC (noise on the bus). */
  badCrc?: number;
  /** The next N frames have raw humidity 0 (a sensor that did not measure). */
  zeroHumidity?: number;
  /**
   * The status starts with bits 3 and 4 clear: "until-init" is fixed by the
   * driver's register re-init and init command; "stuck" never is.
   */
  uncalibrated?: "until-init" | "stuck";
}

/** A climate: temperature (°C) and humidity (%) at a wall-clock time. */
export type Climate = (wallMs: number) => { temperature: number; humidity: number };

/** A simulated sensor; `faults` may be changed while it runs. */
export interface SimAht20 {
  faults: SimFaults;
  /** Handles one write transaction. */
  write(bytes: Uint8Array): void;
  /** Handles one read transaction. */
  read(length: number): Uint8Array;
  /** Measurements triggered so far. */
  readonly measurements: number;
}

const STATUS_REGISTERS_DONE = 0x10;
const IDLE_STATUS = 0x1c; // calibrated, registers ready, as in SPEC's frames

/** Creates a simulated AHT20. `now` is monotonic ms (busy timing), `wallNow` feeds the climate. */
export function createSimAht20(
  options: { climate?: Climate; faults?: SimFaults; now?: () => number; wallNow?: () => number } = {},
): SimAht20 {
  const now = options.now ?? (() => performance.now());
  const wallNow = options.wallNow ?? Date.now;
  const climate = options.climate ?? (() => ({ temperature: 21.5, humidity: 45 }));
  const faults: SimFaults = options.faults ?? {};
  let status = faults.uncalibrated ? 0x00 : IDLE_STATUS;
  const registers = new Map<number, [number, number]>(INIT_REGISTERS.map((r) => [r, [0x5a, 0xa5]]));
  let pendingRegister: number | null = null;
  let lastCommand: "status" | "register" | "measure" | null = null;
  let measureStartedAt = -Infinity;
  let measureNeverEnds = false;
  let frameValues = { temperature: 0, humidity: 0 };
  let measurements = 0;

  const calibrationStuck = () => faults.uncalibrated === "stuck";
  const busy = () => measureNeverEnds || now() < measureStartedAt + MEASURE_MS;
  const statusByte = () => status | (busy() ? STATUS_BUSY : 0);

  return {
    faults,
    get measurements() {
      return measurements;
    },
    write(bytes) {
      const cmd = bytes[0];
      // The write-back of a register re-init is 0xB0|reg: for 0x1E that is
      // 0xBE, the init command's first byte, so it is recognised by context.
      if (lastCommand === "register" && pendingRegister !== null && bytes.length === 3 && cmd === (0xb0 | pendingRegister)) {
        registers.set(pendingRegister, [bytes[1]!, bytes[2]!]);
        if (pendingRegister === INIT_REGISTERS[INIT_REGISTERS.length - 1] && !calibrationStuck()) status |= STATUS_REGISTERS_DONE;
        pendingRegister = null;
        lastCommand = null;
        return;
      }
      if (cmd === CMD_SOFT_RESET && bytes.length === 1) {
        measureNeverEnds = false;
        measureStartedAt = -Infinity;
        lastCommand = null;
        return;
      }
      if (cmd === CMD_STATUS && bytes.length === 1) {
        lastCommand = "status";
        return;
      }
      if (bytes.length === 3 && cmd === CMD_INIT[0] && bytes[1] === CMD_INIT[1] && bytes[2] === CMD_INIT[2]) {
        if (!calibrationStuck()) status |= STATUS_CALIBRATED;
        lastCommand = null;
        return;
      }
      if (bytes.length === 3 && cmd === CMD_TRIGGER[0] && bytes[1] === CMD_TRIGGER[1] && bytes[2] === CMD_TRIGGER[2]) {
        measurements++;
        measureStartedAt = now();
        if (faults.busy === "stuck") measureNeverEnds = true;
        else if (faults.busy) {
          faults.busy--;
          measureNeverEnds = true;
        } else measureNeverEnds = false;
        frameValues = climate(wallNow());
        lastCommand = "measure";
        return;
      }
      if (bytes.length === 3 && (INIT_REGISTERS as readonly number[]).includes(cmd!)) {
        pendingRegister = cmd!;
        lastCommand = "register";
        return;
      }
      // Unknown commands are ignored by the chip as well.
      lastCommand = null;
    },
    read(length) {
      const out = new Uint8Array(length);
      if (lastCommand === "register" && pendingRegister !== null) {
        const [a, b] = registers.get(pendingRegister)!;
        out.set([statusByte(), a, b].slice(0, length));
        return out;
      }
      if (lastCommand !== "measure" || busy() || length < 7) {
        // The chip always starts a read with its status byte; after a
        // measurement the data bytes follow, stale while it is busy.
        out[0] = statusByte();
        return out;
      }
      let { temperature, humidity } = frameValues;
      if (faults.zeroHumidity) {
        faults.zeroHumidity--;
        humidity = 0;
      }
      const frame = encodeAht20(status, humidity, temperature);
      if (faults.badCrc) {
        faults.badCrc--;
        frame[6] = frame[6]! ^ 0x5a;
      }
      out.set(frame.subarray(0, length));
      return out;
    },
  };
}

/** A simulated I2C bus holding simulated devices by address. */
export interface SimBus extends I2cBus {
  /** Transfers so far (writes and reads), acknowledged or not. */
  readonly transfers: number;
}

/** Creates a simulated bus; a transfer to an address with no device (or a `missing`/`nack` fault) is not acknowledged. */
export function createSimBus(devices: Record<number, SimAht20>, name = "simulated I2C bus"): SimBus {
  let transfers = 0;
  let closed = false;
  const device = (address: number, op: string): SimAht20 => {
    transfers++;
    if (closed) throw new I2cError("CLOSED", `${name} is closed`);
    const d = devices[address];
    if (!d || d.faults.missing)
      throw new I2cError("NACK", `no answer from 0x${address.toString(16)} on ${name} (${op}: ENXIO)`, 6);
    if (d.faults.nack) {
      d.faults.nack--;
      throw new I2cError("NACK", `no answer from 0x${address.toString(16)} on ${name} (${op}: EREMOTEIO)`, 121);
    }
    return d;
  };
  return {
    get transfers() {
      return transfers;
    },
    async i2cWrite(address, length, buffer) {
      device(address, "write").write(buffer.subarray(0, length));
      return { bytesWritten: length, buffer };
    },
    async i2cRead(address, length, buffer) {
      buffer.set(device(address, "read").read(length).subarray(0, length));
      return { bytesRead: length, buffer };
    },
    async close() {
      closed = true;
    },
  };
}

/** A 32-bit FNV-1a hash: the same uid always gives the same simulated room. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * A plausible indoor climate for a simulated sensor, different per seed (the
 * device uid): a daily cycle (warmest mid-afternoon, humidity moving the other
 * way), slow drifts, and a little noise. Deterministic apart from the noise,
 * so back-filled history and live readings join up.
 */
export function simulatedClimate(seed: string, options: { noise?: () => number } = {}): Climate {
  const h = hash32(seed);
  const pick = (shift: number, min: number, max: number) => min + (((h >>> shift) & 0xff) / 255) * (max - min);
  const baseT = pick(0, 19, 23.5);
  const ampT = pick(8, 0.8, 2.2);
  const baseH = pick(16, 38, 58);
  const ampH = pick(24, 3, 8);
  const phase = pick(4, 0, 2 * Math.PI);
  const noise = options.noise ?? (() => Math.random() - 0.5);
  const DAY = 86_400_000;
  return (wallMs) => {
    // Peak around 15:00 UTC-ish, shifted a little per device.
    const day = 2 * Math.PI * ((wallMs % DAY) / DAY - 15 / 24) + phase / 6;
    const drift = Math.sin(wallMs / 2_820_000 + phase) * 0.35 + Math.sin(wallMs / 780_000 + 2 * phase) * 0.15;
    const temperature = baseT + ampT * Math.cos(day) + drift + noise() * 0.08;
    const humidity = baseH - ampH * Math.cos(day) - drift * 3 + noise() * 0.4;
    return { temperature, humidity: Math.max(1, Math.min(99, humidity)) };
  };
}
