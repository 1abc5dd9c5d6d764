// A PUBACK means the reading is on the card, and the server keeps serving
// while the card syncs (issue 17, store/wal-sync.ts). The card is made slow
// below the server, in the C library: test/fixtures/slow-fsync makes every
// fsync/fdatasync of the -wal file take 1.5 s longer and logs, per call, the
// thread that waited and when it began and ended. The real server process,
// its real SQLite and the real system call run underneath.

import { expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildSlowFsync } from "./fixtures/slow-fsync/build.ts";
import {
  connectMqtt,
  legacyPayload,
  publishAcked,
  readingTopic,
  spawnServer,
  tempDir,
  waitFor,
  withTimeout,
  deferAfterEach,
} from "./helpers.ts";

const SLOW_MS = 1500;
const defer = deferAfterEach();

interface SyncCall {
  what: "begin" | "end" | "fail";
  tid: number;
  pid: number;
  at: number;
}

function calls(log: string): SyncCall[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [what, tid, pid, at] = line.split(" ");
      return { what: what as SyncCall["what"], tid: Number(tid), pid: Number(pid), at: Number(at) };
    });
}

test("the PUBACK waits for the -wal sync, which runs off the event loop: HTTP is answered meanwhile", async () => {
  const dir = tempDir();
  defer(() => dir.cleanup());
  const lib = await buildSlowFsync(dir.path);
  const log = join(dir.path, "syncs.log");
  const server = await spawnServer(join(dir.path, "data"), {
    LD_PRELOAD: lib,
    SLOW_FSYNC_MS: String(SLOW_MS),
    SLOW_FSYNC_LOG: log,
    TECHTEMP_INGEST_COMMIT_WINDOW_MS: "0",
  });
  defer(() => server.stop());
  const client = await connectMqtt(server.mqttPort, { reconnectPeriod: 0 });
  client.on("error", () => {});
  defer(() => void client.end(true));
  // The server's first sync runs on the event loop to see how fast the card is (the sweep makes it within a
  // second of the start-up's writes); it took 1.5 s, so the next ones run off the loop. Wait for it to end.
  const metric = async (name: string) => {
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.token.password}` } });
    const line = (await res.text()).split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name + "{"));
    return Number(line?.split(" ").pop() ?? NaN);
  };
  await waitFor(async () => (await metric('techtemp_wal_syncs_total{thread="event_loop"}')) >= 1, 15_000, "the first sync");
  const idle = () => {
    const c = calls(log);
    return c.filter((x) => x.what === "begin").length === c.filter((x) => x.what === "end").length;
  };
  await waitFor(idle, 10_000, "no sync under way");

  // What the library logs from here on (its lines are in the order the calls began and ended).
  const before = calls(log).length;
  const since = () => calls(log).slice(before);
  const ts = Date.now();
  let syncsAtAck: SyncCall[] = [];
  const acked = publishAcked(client, readingTopic("aht20-slowcard"), legacyPayload(21.5, 40, ts), 20_000).then(() => {
    syncsAtAck = since();
  });
  // The reading's sync has begun (its commit returned): the server must answer HTTP while the card is busy.
  const begun = (await waitFor(() => since().find((c) => c.what === "begin"), 10_000, "a sync to begin"))!;
  const health = await withTimeout(fetch(`${server.url}/health`), 10_000, "/health during the sync");
  expect(health.status).toBe(200);
  // Answered while the card was still syncing: no sync had ended yet.
  expect(since().filter((c) => c.what === "end")).toEqual([]);
  // The sync ran on another thread than the event loop's (whose thread id is the process id).
  expect(begun.tid).not.toBe(begun.pid);

  await acked;
  // The PUBACK came after a sync that began after the reading was sent had ended.
  expect(syncsAtAck.filter((c) => c.what === "end").length).toBeGreaterThanOrEqual(1);
  // No sync of the -wal file ran on the event loop's thread while the reading was handled.
  expect(since().filter((c) => c.tid === c.pid)).toEqual([]);
  expect(await metric('techtemp_wal_syncs_total{thread="off_loop"}')).toBeGreaterThanOrEqual(1);

  const stored = await fetch(`${server.url}/api/v1/devices/aht20-slowcard/readings?limit=1`, {
    headers: { authorization: `Bearer ${server.token.password}` },
  });
  expect(stored.status).toBe(200);
  expect(JSON.stringify(await stored.json())).toContain("21.5");
}, 60_000);

test("a sync the card refuses (EIO) withholds the PUBACK and shows on /health; the resend is stored once the card works", async () => {
  const dir = tempDir();
  defer(() => dir.cleanup());
  const lib = await buildSlowFsync(dir.path);
  const log = join(dir.path, "syncs.log");
  const flag = join(dir.path, "card-failing");
  const server = await spawnServer(join(dir.path, "data"), {
    LD_PRELOAD: lib,
    SLOW_FSYNC_LOG: log,
    SLOW_FSYNC_FAIL_IF: flag,
    TECHTEMP_INGEST_COMMIT_WINDOW_MS: "0",
  });
  defer(() => server.stop());
  const client = await connectMqtt(server.mqttPort, { reconnectPeriod: 200, clientId: "card-fails", clean: false });
  client.on("error", () => {});
  defer(() => void client.end(true));
  const uid = "aht20-cardfail";
  const ts = Date.now();
  await publishAcked(client, readingTopic(uid), legacyPayload(20, 40, ts - 60_000), 10_000);

  writeFileSync(flag, "");
  let acked = false;
  client.publish(readingTopic(uid), legacyPayload(21.25, 41, ts), { qos: 1 }, (err) => (acked = !err));
  await waitFor(() => calls(log).some((c) => c.what === "fail"), 10_000, "the card to refuse a sync");
  await waitFor(async () => (await fetch(`${server.url}/health`)).status === 503, 10_000, "/health to report the failed sync");
  const health = (await (await fetch(`${server.url}/health`)).json()) as { problems?: Record<string, string> };
  expect(JSON.stringify(health)).toContain("sync to the card");
  expect(acked).toBe(false);
  expect(server.output()).toContain("cannot sync the database's journal to the card");

  rmSync(flag);
  // The client sends it again (its session kept it); the server stores it once and acknowledges it.
  await waitFor(() => acked, 20_000, "the resend to be acknowledged");
  await waitFor(async () => (await fetch(`${server.url}/health`)).status === 200, 10_000, "/health to be ok again");
  const res = await fetch(`${server.url}/api/v1/devices/${uid}/readings?limit=10`, {
    headers: { authorization: `Bearer ${server.token.password}` },
  });
  const list = ((await res.json()) as { data: { ts: string }[] }).data;
  expect(list.filter((r) => Date.parse(r.ts) === ts)).toHaveLength(1);
  expect(list).toHaveLength(2);
}, 60_000);
