// The real I2C bus (bun:ffi on libc) where there is no I2C hardware: opening
// a path that is not an adapter, or a bus that does not exist, must give a
// clear error a person can act on, never a crash. `bun sensor.ts check`
// prints the same remedies.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { I2cError, describeI2cFailure, openI2cBus } from "../lib/sensor/i2c.ts";
import { buildFakeAht20 } from "./fixtures/fake-aht20/build.ts";
import { freePort, run, tempDir, waitFor } from "./helpers.ts";
import { agentEnv, spawnAgent } from "./sensor-helpers.ts";

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

  test("a transfer the kernel gave up on (ETIMEDOUT) says the bus is held", () => {
    const err = describeI2cFailure("read", 110, "/dev/i2c-1", 0x38);
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toBe(
      "read 0x38 on /dev/i2c-1 timed out after 250 ms (ETIMEDOUT): the bus is held (SDA or SCL stuck low); " +
        "check the wiring, then power the sensor off and on",
    );
  });

  test("a refused transfer timeout names its ioctl", () => {
    expect(describeI2cFailure("ioctl", 25, "/dev/i2c-1", undefined, "I2C_TIMEOUT").message).toStartWith(
      "/dev/i2c-1 is not an I2C adapter (ioctl I2C_TIMEOUT: ENOTTY)",
    );
    expect(describeI2cFailure("ioctl", 1, "/dev/i2c-1", undefined, "I2C_RETRIES").message).toBe(
      "cannot set I2C_RETRIES on /dev/i2c-1: EPERM",
    );
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

describe("the agent's real FFI calls against an AHT20 simulated behind the C ABI", () => {
  // test/fixtures/fake-aht20: open/ioctl/read/write/close/adjtimex of a shared
  // library the agent dlopens in place of libc ([sensor] libc = …), so
  // lib/sensor/i2c.ts's bun:ffi code and the AHT20 driver run unchanged.
  const dir = tempDir();
  let library = "";
  beforeAll(async () => {
    library = await buildFakeAht20(dir.path);
  }, 60_000);
  afterAll(() => dir.cleanup());
  const check = (fake: Record<string, string> = {}) =>
    run(["bun", join(import.meta.dir, "..", "sensor.ts"), "check"], {
      env: {
        TECHTEMP_DEVICE_UID: "aht20-ffi001",
        TECHTEMP_SENSOR_DRIVER: "aht20",
        TECHTEMP_LIBC: library,
        TECHTEMP_CLOCK_SYNC_WAIT_S: "300",
        FAKE_AHT20_NODE: "none",
        FAKE_ADJTIMEX: "0",
        ...fake,
      },
      timeoutMs: 20_000,
      cwd: dir.path,
    });

  test.each([
    ["1C 3B 5E 86 88 B2 D2", "31.67 °C, 23.19 %RH"],
    ["18 93 AC 95 2A C5 B3", "14.59 °C, 57.69 %RH"],
    ["1C 26 9A 76 42 E7 76", "28.27 °C, 15.08 %RH"],
  ])("the frame %s read over /dev/i2c-1 is %s", async (frame, values) => {
    const { code, stdout } = await check({ FAKE_AHT20_FRAME: frame });
    expect(stdout).toBe(`OK: AHT20 at 0x38 on /dev/i2c-1: ${values}\nOK: clock: the kernel says it is synchronised\n`);
    expect(code).toBe(0);
  });

  test("the kernel's clock state comes through adjtimex in the same library", async () => {
    const { code, stdout } = await check({ FAKE_ADJTIMEX: "5" });
    expect(stdout).toContain("OK: clock: the kernel says it is not synchronised yet");
    expect(code).toBe(0);
  });

  test("faults the driver recovers from: a busy measurement, a bad CRC, a lost ACK, a sensor that needs its registers initialised", async () => {
    const all = ["busy=1", "crc=1", "nack=1", "uncalibrated=until-init", "busy=1,crc=1"];
    const results = await Promise.all(all.map((faults) => check({ FAKE_AHT20_FAULTS: faults })));
    results.forEach(({ code, stdout, stderr }, i) => {
      const faults = all[i]!;
      expect(`${faults}: ${stdout}${stderr}`).toStartWith(`${faults}: OK: AHT20 at 0x38 on /dev/i2c-1: 21.50 °C, 45.00 %RH\n`);
      expect(code).toBe(0);
    });
  }, 30_000);

  test("a sensor that is missing, stuck busy, noisy, uncalibrated, not ours or absent fails the check with what to do", async () => {
    const cases = [
      ["missing", "no AHT20 answers at 0x38 on I2C bus 1 (soft reset): check the wiring"],
      ["busy=stuck", "stayed busy"],
      ["crc=9", "CRC"],
      ["uncalibrated=stuck", "stays uncalibrated"],
      ["eacces", "permission denied opening /dev/i2c-1: add the agent's user to the i2c group"],
      ["enoent", "/dev/i2c-1 does not exist: I2C is not enabled"],
    ] as const;
    // In parallel: a stuck sensor uses up the driver's whole retry budget (seconds).
    const results = await Promise.all(cases.map(([faults]) => check({ FAKE_AHT20_FAULTS: faults })));
    results.forEach(({ code, stdout, stderr }, i) => {
      const [faults, message] = cases[i]!;
      expect(`${faults}: ${stdout}`).toBe(`${faults}: `);
      expect(stderr).toStartWith("PROBLEM: ");
      expect(`${faults}: ${stderr}`).toContain(message);
      expect(`${faults}: exit ${code}`).toBe(`${faults}: exit 1`);
    });
  }, 30_000);

  test("the bus is opened with the kernel's transfer timeout (250 ms) and no retries, before any transfer", async () => {
    const trace = join(dir.path, "trace-bound.log");
    const { code } = await check({ FAKE_AHT20_LOG: trace });
    expect(code).toBe(0);
    const lines = readFileSync(trace, "utf8").trim().split("\n");
    const fd = /^open \/dev\/i2c-1 -> fd (\d+)$/.exec(lines[0]!)![1];
    expect(lines.slice(0, 4)).toEqual([
      `open /dev/i2c-1 -> fd ${fd}`,
      `ioctl fd ${fd} I2C_SLAVE 0x38`,
      `ioctl fd ${fd} I2C_TIMEOUT 25`,
      `ioctl fd ${fd} I2C_RETRIES 0`,
    ]);
    expect(lines[4]).toStartWith(`write fd ${fd} `);
  });

  test("a held bus fails the reading when the kernel's timeout ends the transfer, and says what to do", async () => {
    const trace = join(dir.path, "trace-hang.log");
    const { code, stderr } = await check({ FAKE_AHT20_FAULTS: "hang", FAKE_AHT20_LOG: trace });
    expect(stderr).toStartWith("PROBLEM: write 0x38 on /dev/i2c-1 timed out after 250 ms (ETIMEDOUT): the bus is held");
    expect(code).toBe(1);
    // The wait the adapter applied was ours (its default is 1 s), and the read ended there: one blocked transfer.
    const timedOut = readFileSync(trace, "utf8")
      .split("\n")
      .filter((l) => l.includes("timed out"));
    expect(timedOut).toEqual([expect.stringMatching(/^write fd \d+ timed out after 250 ms$/)]);
  });

  test("the running agent bounds the bus the same way each time it opens it, and carries on from a held bus", async () => {
    const trace = join(dir.path, "trace-agent.log");
    // No broker at that port: the agent's event loop must still run (it says it cannot connect).
    const agent = spawnAgent(
      agentEnv(freePort(), dir.path, "aht20-ffi002", {
        TECHTEMP_SENSOR_DRIVER: "aht20",
        TECHTEMP_LIBC: library,
        FAKE_AHT20_NODE: "none",
        FAKE_AHT20_FAULTS: "hang",
        FAKE_AHT20_LOG: trace,
      }),
      { cwd: dir.path },
    );
    try {
      await agent.waitForLine(/ERROR sensor: cannot read the sensor error=".*timed out after 250 ms \(ETIMEDOUT\)/);
      await agent.waitForLine(/WARN  sensor\.mqtt: cannot connect to the broker/);
      // After a failure the bus is closed and opened again for the next reading, with the same bounds.
      const bounded = () => readFileSync(trace, "utf8").match(/I2C_TIMEOUT 25\n.*I2C_RETRIES 0\n/g) ?? [];
      await waitFor(() => bounded().length >= 2, 10_000, "the bus opened twice with its bounds");
      expect(agent.proc.exitCode).toBeNull();
    } finally {
      await agent.kill();
    }
  });

  test("another bus number is a bus that does not exist", async () => {
    const { code, stderr } = await check({ TECHTEMP_I2C_BUS: "3" });
    expect(stderr).toContain("/dev/i2c-3 does not exist: I2C is not enabled");
    expect(code).toBe(1);
  });

  test("with the JIT off (BUN_JSC_useJIT=0) bun:ffi cannot load, and the check says to remove the setting", async () => {
    const { code, stderr } = await check({ BUN_JSC_useJIT: "0" });
    expect(stderr).toContain("bun:ffi requires the JIT; remove BUN_JSC_useJIT=0 from the agent's environment");
    expect(stderr).toContain("PROBLEM: cannot tell whether the clock is synchronised: bun:ffi is unavailable");
    expect(code).toBe(1);
  });

  test("a library that cannot be loaded is named, with the setting to check", async () => {
    const { code, stderr } = await check({ TECHTEMP_LIBC: join(dir.path, "nope.so") });
    expect(stderr).toContain(`cannot load ${join(dir.path, "nope.so")} through bun:ffi`);
    expect(stderr).toContain("check [sensor] libc in device.conf");
    expect(code).toBe(1);
  });
});
