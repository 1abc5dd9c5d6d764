// The real I2C bus (bun:ffi on libc) where there is no I2C hardware: opening
// a path that is not an adapter, or a bus that does not exist, must give a
// clear error a person can act on, never a crash. `bun sensor.ts check`
// prints the same remedies.

import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { I2cError, describeI2cFailure, openI2cBus } from "../lib/i2c.ts";
import { run, tempDir } from "./helpers.ts";

async function openError(bus: number | string): Promise<I2cError> {
  try {
    const opened = await openI2cBus(bus);
    await opened.close();
  } catch (err) {
    if (err instanceof I2cError) return err;
    throw err;
  }
  throw new Error(`expected opening ${bus} to fail`);
}

describe("the FFI bus on something that is not an I2C adapter", () => {
  test("/dev/null is refused as not an I2C adapter", async () => {
    const err = await openError("/dev/null");
    expect(err.code).toBe("NOT_ADAPTER");
    expect(err.message).toBe(
      "/dev/null is not an I2C adapter (ioctl I2C_SLAVE: ENOTTY); give the number N of a /dev/i2c-N bus (`ls /dev/i2c-*`)",
    );
  });

  test("a regular file is refused the same way, and the process carries on", async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, "not-a-bus");
      writeFileSync(path, "hello");
      const err = await openError(path);
      expect(err.code).toBe("NOT_ADAPTER");
      expect(err.message).toStartWith(`${path} is not an I2C adapter`);
      // Still alive and able to try again.
      expect((await openError(path)).code).toBe("NOT_ADAPTER");
    } finally {
      dir.cleanup();
    }
  });

  test("a bus that does not exist says I2C is not enabled and how to enable it", async () => {
    const err = await openError(99);
    expect(err.code).toBe("NO_BUS");
    expect(err.message).toContain("/dev/i2c-99 does not exist: I2C is not enabled");
    expect(err.message).toContain("`sudo raspi-config nonint do_i2c 0`");
  });
});

describe("what each failure tells a person", () => {
  test("permission denied names the i2c group", () => {
    const err = describeI2cFailure("open", 13, "/dev/i2c-1");
    expect(err.code).toBe("ACCESS");
    expect(err.message).toContain("add the agent's user to the i2c group");
    expect(err.message).toContain("sudo usermod -aG i2c");
  });

  test("a missing /dev/i2c-1 says to enable I2C with raspi-config", () => {
    expect(describeI2cFailure("open", 2, "/dev/i2c-1").message).toBe(
      "/dev/i2c-1 does not exist: I2C is not enabled. Enable it with `sudo raspi-config nonint do_i2c 0` and reboot",
    );
  });

  test("no acknowledgement on a transfer is a NACK (nothing at the address)", () => {
    for (const errno of [5, 6, 121]) expect(describeI2cFailure("write", errno, "/dev/i2c-1", 0x38).code).toBe("NACK");
  });

  test("an address claimed by a kernel driver names the overlay", () => {
    expect(describeI2cFailure("ioctl", 16, "/dev/i2c-1", 0x38).message).toContain("claimed by a kernel driver");
  });
});

describe("bun sensor.ts check", () => {
  // An empty working directory, so no ./config/device.conf is picked up.
  const cwd = tempDir();
  afterAll(() => cwd.cleanup());
  const check = (env: Record<string, string>) =>
    run(["bun", join(import.meta.dir, "..", "sensor.ts"), "check"], {
      env: { TECHTEMP_DEVICE_UID: "aht20-check1", ...env },
      timeoutMs: 20_000,
      cwd: cwd.path,
    });

  test("without the I2C bus it exits 1 with the raspi-config remedy", async () => {
    const { code, stdout, stderr } = await check({ TECHTEMP_I2C_BUS: "99", TECHTEMP_SENSOR_DRIVER: "aht20" });
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toContain("PROBLEM: /dev/i2c-99 does not exist: I2C is not enabled");
    expect(stderr).toContain("raspi-config nonint do_i2c 0");
  });

  test("with the simulated sensor it exits 0 and prints a reading", async () => {
    const { code, stdout } = await check({ TECHTEMP_SENSOR_DRIVER: "sim" });
    expect(stdout).toMatch(/^OK: simulated AHT20: -?\d+\.\d\d °C, \d+\.\d\d %RH\n$/);
    expect(code).toBe(0);
  });
});
