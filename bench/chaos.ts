// Chaos: the attacks of issue 16 against a real server process (bun
// server.ts, default limits), one after the other, printing the server's
// memory (RSS, from /proc) after each, the PUBACK p99 of a sensor during a
// garbage flood, and how many sensors connect while many clients hammer.
// Each figure is printed beside what the issue measured before the fixes.
//
//   bun bench/chaos.ts [--scale 1]     (--scale 0.2: a fifth of every attack, for a quick look)

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { connect, type Socket } from "node:net";
import { enrollSensor } from "./enroll.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { openStore } from "../lib/server/store/store.ts";
import { createToken, spawnServer, withTimeout, type ChildServer, type MqttLogin } from "../test/helpers.ts";
import { commandLine, parseCommandLine, positiveNumber } from "../scripts/cli.ts";
import { memory } from "./proc.ts";

const { scale } = commandLine("bun bench/chaos.ts [--scale 1]", (args) => {
  const { values } = parseCommandLine(args, { scale: { type: "string" } });
  return { scale: positiveNumber("scale", values.scale, 1) };
});
const n = (count: number) => Math.max(1, Math.round(count * scale));

const dir = mkdtempSync(join(tmpdir(), "techtemp-chaos-"));
const server: ChildServer = await spawnServer(dir, { TECHTEMP_LOG_LEVEL: "info" });
const pid = server.proc.pid;
const rss = () => Math.round(memory(pid).rss);
const rows: string[][] = [];
const row = (what: string, figure: string, before: string) => {
  rows.push([what, figure, before]);
  console.log(`${what.padEnd(58)} ${figure.padEnd(26)} ${before}`);
};

/** Logins made in the server's database beside it (a token for tools, a secret per sensor). */
const store = openStore(join(dir, DB_FILE));
const tools: MqttLogin[] = Array.from({ length: 4 }, () => createToken(store));
const sensorLogin = (uid: string): MqttLogin => enrollSensor(store, uid);

async function client(login: MqttLogin, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect({
    host: "127.0.0.1",
    port: server.mqttPort,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...login,
    ...options,
  });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("error", reject);
    }),
    15_000,
    "MQTT connect",
  );
  return c;
}

/** Publishes `count` messages pipelined at QoS 1 (at most `window` in flight); resolves when all are acknowledged. */
async function flood(
  c: MqttClient,
  count: number,
  topic: (i: number) => string,
  payload: (i: number) => string | Buffer,
  retain = false,
) {
  const window = 500;
  let next = 0;
  let acked = 0;
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      const send = () => {
        while (next < count && next - acked < window) {
          const i = next++;
          c.publish(topic(i), payload(i), { qos: 1, retain }, (err) => {
            if (err) return reject(err);
            if (++acked === count) resolve();
            else send();
          });
        }
      };
      send();
    }),
    600_000,
    `${count} publishes`,
  );
}

const settle = () => Bun.sleep(1500);
console.log(`chaos against bun server.ts (default limits), scale ${scale}; RSS of the server process\n`);
console.log(`${"attack".padEnd(58)} ${"now".padEnd(26)} before the fixes (issue 16)`);
await settle();
row("idle server", `${rss()} MB`, "66 MB");

// 1. Retained messages: 10,000 × 1 KB, then 3,000 × 60 KB, then a subscriber to everything.
{
  const t = await client(tools[0]!, { clientId: "chaos-retain" });
  await flood(
    t,
    n(10_000),
    (i) => `chaos/small/${i}`,
    () => "r".repeat(1000),
    true,
  );
  await flood(
    t,
    n(3_000),
    (i) => `chaos/big/${i}`,
    () => Buffer.alloc(60_000, 66),
    true,
  );
  await settle();
  row(`retained: ${n(10_000)} × 1 KB + ${n(3_000)} × 60 KB`, `${rss()} MB`, "261 MB");
  const all = await client(tools[1]!, { clientId: "chaos-retain-reader" });
  let got = 0;
  all.on("message", () => got++);
  all.subscribe("#", { qos: 0 });
  await Bun.sleep(3000);
  row(`  then one client subscribes to # (${got} retained received)`, `${rss()} MB`, "461 MB");
  await flood(
    t,
    n(13_000),
    (i) => (i < n(10_000) ? `chaos/small/${i}` : `chaos/big/${i - n(10_000)}`),
    () => "",
    true,
  );
  all.end(true);
  t.end(true);
}

// 2. An offline persistent session subscribed to home/#, never back: 50,000 × 1 KB.
{
  const away = await client(tools[1]!, { clientId: "chaos-away", clean: false });
  await new Promise<void>((r) => away.subscribe("home/#", { qos: 1 }, () => r()));
  away.end(true);
  const t = await client(tools[0]!, { clientId: "chaos-queue-filler" });
  const before = rss();
  await flood(
    t,
    n(50_000),
    (i) => `home/chaos/bulk${i % 100}`,
    () => "q".repeat(1000),
  );
  await settle();
  row(`offline persistent session: ${n(50_000)} × 1 KB queued for it`, `${rss()} MB (was ${before})`, "92 → 251 MB");
  t.end(true);
}

// 3. HTTP bodies: 8 concurrent 50 MB form posts.
{
  const port = Number(new URL(server.url).port);
  let peak = rss();
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
  const statuses = await Promise.all(
    Array.from(
      { length: 8 },
      () =>
        new Promise<string>((resolve) => {
          const s: Socket = connect(port, "127.0.0.1");
          let reply = "";
          const total = n(50) * 1024 * 1024;
          let written = 0;
          s.on("data", (d) => {
            reply += d.toString("latin1");
            if (reply.includes("\r\n\r\n")) s.destroy();
          });
          s.on("error", () => {});
          s.on("close", () => resolve(reply.split(" ")[1] ?? "reset"));
          s.on("connect", () => {
            s.write(
              `POST /api/v1/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tools[2]!.password}\r\n` +
                `Content-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`,
            );
            const chunk = Buffer.alloc(65536, 32);
            const pump = () => {
              while (written < total && !s.destroyed) {
                written += chunk.length;
                if (!s.write(chunk)) return void s.once("drain", pump);
              }
            };
            pump();
          });
        }),
    ),
  );
  clearInterval(sampler);
  row(`8 concurrent ${n(50)} MB posts (answered ${[...new Set(statuses)].join(", ")})`, `peak ${peak} MB`, "peak 456 MB");
}

// 4. Garbage on 10,000 distinct device topics, with a sensor publishing readings meanwhile.
{
  const uid = "aht20-chaos1";
  const sensor = await client(sensorLogin(uid), { clientId: `techtemp-${uid}` });
  const t = await client(tools[0]!, { clientId: "chaos-garbage" });
  const waits: number[] = [];
  let flooding = true;
  const probe = (async () => {
    let i = 0;
    while (flooding) {
      const started = performance.now();
      await new Promise<void>((r) =>
        sensor.publish(
          `home/home-001/sensors/${uid}/reading`,
          JSON.stringify({ temperature_c: 21, humidity_pct: 40, ts: Date.now() - 60_000 + i++ }),
          { qos: 1 },
          () => r(),
        ),
      );
      waits.push(performance.now() - started);
      await Bun.sleep(20);
    }
  })();
  const started = performance.now();
  await flood(
    t,
    n(10_000),
    (i) => `home/home-001/sensors/junk-${i.toString(36)}/reading`,
    (i) => `garbage ${i}`,
  );
  const floodMs = performance.now() - started;
  flooding = false;
  await probe;
  waits.sort((a, b) => a - b);
  const p99 = waits[Math.min(waits.length - 1, Math.ceil(waits.length * 0.99) - 1)]!;
  const devices = (
    await (await fetch(`${server.url}/api/v1/devices`, { headers: { authorization: `Bearer ${tools[2]!.password}` } })).json()
  ).data.length as number;
  const lines = (server.output().match(/refused message/g) ?? []).length;
  row(
    `garbage on ${n(10_000)} device topics (${(floodMs / 1000).toFixed(1)} s): sensor PUBACK p99`,
    `${p99.toFixed(0)} ms (n=${waits.length})`,
    "3.9 s (over 30 s once)",
  );
  row("  devices registered / WARN lines logged", `${devices} / ${lines}`, `${n(10_000)} / ${n(10_000)}`);
  row("  server RSS after", `${rss()} MB`, "");
  sensor.end(true);
  t.end(true);
}

// 5. 2,000 clients hammer (idle TCP connections and tools reconnecting), while 20 sensors connect.
{
  const sockets: Socket[] = [];
  for (let i = 0; i < n(1_000); i++) {
    const s = connect(server.mqttPort, "127.0.0.1");
    s.on("error", () => {});
    sockets.push(s);
  }
  let hammering = true;
  const hammerers = Array.from({ length: n(1_000) / 50 }, async (_, k) => {
    while (hammering) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          client(tools[3]!, { clientId: `chaos-tool-${k}-${j}` }).then(
            (c) => c,
            () => null,
          ),
        ),
      ).then((cs) => cs.forEach((c) => c?.end(true)));
    }
  });
  await Bun.sleep(1000);
  let ok = 0;
  const sensors = 20;
  const connectTimes: number[] = [];
  for (let i = 0; i < sensors; i++) {
    const uid = `aht20-chaos${(100 + i).toString()}`;
    const started = performance.now();
    const c = await client(sensorLogin(uid), { clientId: `techtemp-${uid}` }).catch(() => null);
    if (c) {
      ok++;
      connectTimes.push(performance.now() - started);
      c.end(true);
    }
  }
  hammering = false;
  await Promise.all(hammerers);
  for (const s of sockets) s.destroy();
  connectTimes.sort((a, b) => a - b);
  row(
    `sensors connecting while ${n(1_000)} idle TCP + ${n(1_000)} tools hammer`,
    `${ok}/${sensors} (median ${connectTimes[Math.floor(connectTimes.length / 2)]?.toFixed(0) ?? "-"} ms)`,
    "0/20 (server unavailable)",
  );
  row("  server RSS after", `${rss()} MB`, "");
}

store.close();
await server.stop();
rmSync(dir, { recursive: true, force: true });
console.log(`\nload while measured: ${(await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")} (1, 5, 15 min)`);
