// MQTT username and password from device.conf, against a broker that checks
// them (mosquitto with a password file: the embedded broker has no accounts
// yet). Right credentials: readings arrive. Wrong ones: a log line that says
// what to fix, and the agent keeps trying instead of exiting.

import { afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, run, tempDir, waitFor } from "./helpers.ts";
import { agentEnv, spawnAgent, spawnWithLines, type LineProcess } from "./sensor-helpers.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** mosquitto on 127.0.0.1 with one account, pi / s3cret. */
async function mosquittoWithPassword(dir: string): Promise<number> {
  const passwords = join(dir, "passwords");
  writeFileSync(passwords, "");
  const made = await run(["mosquitto_passwd", "-b", passwords, "pi", "s3cret"]);
  if (made.code !== 0) throw new Error(`mosquitto_passwd: ${made.stderr}`);
  const port = freePort();
  const conf = join(dir, "mosquitto.conf");
  // As root, mosquitto drops to the user "mosquitto", who cannot read our temp dir: stay root.
  const user = process.getuid?.() === 0 ? "user root\n" : "";
  writeFileSync(
    conf,
    `${user}listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${passwords}\npersistence false\n`,
  );
  const broker: LineProcess = spawnWithLines(["mosquitto", "-c", conf, "-v"]);
  cleanups.push(async () => void (await broker.kill("SIGTERM")));
  await broker.waitForLine(new RegExp(`listen socket on port ${port}`), 10_000);
  return port;
}

/** Readings arriving at the broker, seen by mosquitto_sub with the right account. */
function subscribe(port: number): LineProcess {
  const sub = spawnWithLines([
    "mosquitto_sub",
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-u",
    "pi",
    "-P",
    "s3cret",
    "-t",
    "home/+/sensors/+/reading",
    "-v",
  ]);
  cleanups.push(async () => void (await sub.kill("SIGTERM")));
  return sub;
}

test("username and password from device.conf let the agent in; wrong ones are named in the log and retried", async () => {
  const dir = tempDir();
  cleanups.push(() => dir.cleanup());
  const port = await mosquittoWithPassword(dir.path);
  const sub = subscribe(port);

  const conf = join(dir.path, "device.conf");
  writeFileSync(conf, "[device]\ndevice_uid = aht20-auth01\n[mqtt]\nusername = pi\npassword = s3cret\n");
  const good = spawnAgent(agentEnv(port, join(dir.path, "a"), "aht20-auth01"), { args: [conf] });
  cleanups.push(async () => void (await good.kill()));
  await sub.waitForLine(/^home\/home-001\/sensors\/aht20-auth01\/reading \{"temperature_c":/, 20_000);

  const bad = spawnAgent(
    agentEnv(port, join(dir.path, "b"), "aht20-auth02", { TECHTEMP_MQTT_USERNAME: "pi", TECHTEMP_MQTT_PASSWORD: "wrong" }),
  );
  cleanups.push(async () => void (await bad.kill()));
  const line = await bad.waitForLine(/cannot connect to the broker/, 20_000);
  expect(line).toContain("check username and password in [mqtt] of device.conf");
  // Still running and still trying (the earlier agent gave up after 5 failures).
  await waitFor(() => bad.lines.filter((l) => l.includes("sensor: reading")).length >= 3, 20_000, "readings kept in the outbox");
  expect(bad.proc.exitCode).toBeNull();
}, 60_000);
