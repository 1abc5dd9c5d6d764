// The sensor the agent measures with, and `bun sensor.ts check`: the real
// AHT20 on /dev/i2c-N or the simulated one, and a probe of what the agent
// depends on (one reading; whether the kernel can say the clock is synced).
// No MQTT here, so `check` loads none of it.

import { createAht20, type Aht20, type Aht20Measurement } from "./aht20.ts";
import { probeKernelClock, type KernelClock } from "./clock.ts";
import type { AgentConfig } from "./device-config.ts";
import { busPath, openI2cBus, type I2cBus } from "./i2c.ts";
import { createSimAht20, createSimBus, simulatedClimate, type SimFaults } from "./sim-aht20.ts";

/** Something that measures. */
export interface Sensor {
  read(): Promise<Aht20Measurement>;
  close(): Promise<void>;
}

/**
 * The sensor the config asks for: the real AHT20 on /dev/i2c-N, or the
 * simulated one (`driver = sim`), both through the same driver. The bus is
 * opened on first use and again after a failure, so a sensor plugged in
 * (or I2C enabled) later is picked up without a restart.
 */
export function createSensor(
  config: Pick<AgentConfig, "driver" | "i2c_bus" | "i2c_address" | "device_uid" | "libc">,
  options: { faults?: SimFaults } = {},
): Sensor {
  if (config.driver === "sim") {
    const device = createSimAht20({ climate: simulatedClimate(config.device_uid), faults: options.faults });
    const bus = createSimBus({ [config.i2c_address]: device });
    // No self-heating in a simulation: demos and benchmarks may read every second.
    const driver = createAht20(bus, { address: config.i2c_address, busNumber: config.i2c_bus, minIntervalMs: 0 });
    return { read: () => driver.read(), close: () => bus.close() };
  }
  let bus: I2cBus | null = null;
  let driver: Aht20 | null = null;
  return {
    async read() {
      if (!bus) {
        bus = await openI2cBus(config.i2c_bus, config.i2c_address, { library: config.libc });
        driver = createAht20(bus, { address: config.i2c_address, busNumber: config.i2c_bus });
      }
      try {
        return await driver!.read();
      } catch (err) {
        // Re-initialise from scratch next time (the sensor may have been unplugged).
        await bus.close();
        bus = null;
        driver = null;
        throw err;
      }
    },
    async close() {
      await bus?.close();
      bus = null;
    },
  };
}

/**
 * Probes what the agent depends on (`bun sensor.ts check`): one reading from
 * the sensor, and — unless the clock is trusted (`[clock] sync_wait_seconds = 0`)
 * — whether the kernel can be asked if the clock is synchronised. One line per
 * part; not ok when either cannot work in this environment.
 */
export async function checkSensor(config: AgentConfig): Promise<{ ok: boolean; message: string }> {
  const sensor = createSensor(config);
  const where =
    config.driver === "sim" ? "simulated AHT20" : `AHT20 at 0x${config.i2c_address.toString(16)} on ${busPath(config.i2c_bus)}`;
  const lines: string[] = [];
  let ok = true;
  try {
    const m = await sensor.read();
    lines.push(`OK: ${where}: ${m.temperature.toFixed(2)} °C, ${m.humidity.toFixed(2)} %RH`);
  } catch (err) {
    ok = false;
    lines.push(`PROBLEM: ${(err as Error).message}`);
  } finally {
    await sensor.close();
  }
  if (config.clock_sync_wait_s > 0 && config.driver !== "sim") {
    const clock = probeKernelClock(config.libc);
    if (clock.state === "unknown" && process.platform === "linux") {
      ok = false;
      lines.push(`PROBLEM: cannot tell whether the clock is synchronised: ${clock.reason}`);
    } else lines.push(`OK: ${describeKernelClock(clock)}`);
  }
  return { ok, message: lines.join("\n") };
}

/** The kernel clock probe in words, for logs and `check`. */
export function describeKernelClock(clock: KernelClock): string {
  if (clock.state === "synced") return "clock: the kernel says it is synchronised";
  if (clock.state === "unsynced") return "clock: the kernel says it is not synchronised yet (readings wait for NTP)";
  return `clock: cannot ask the kernel whether it is synchronised: ${clock.reason}`;
}
