// The ingest queue's bound (lib/server/mqtt/ingest.ts, MAX_QUEUED): while a
// sync of the card is under way readings wait in memory; a card that hangs
// must not make that queue grow without end. Over a real store; the card is
// a Durable whose sync ends only when the test says so.

import { expect, test } from "bun:test";
import { join } from "node:path";
import { createIngest, type Durable } from "../lib/server/mqtt/ingest.ts";
import { DB_FILE } from "../lib/server/store/db.ts";
import { openStore } from "../lib/server/store/store.ts";
import type { Synced } from "../lib/server/store/wal-sync.ts";
import { createLog } from "../lib/shared/log.ts";
import { deferAfterEach, tempDir } from "./helpers.ts";

const defer = deferAfterEach();

/** A card whose syncs end when `release()` is called (a hung SD card until then). */
function hungCard(): Durable & { release(): void } {
  let syncing: Synced[] | null = null;
  let next: Synced[] = [];
  let before: (() => void)[] = [];
  const start = () => {
    syncing = next;
    next = [];
  };
  return {
    afterCommit(synced) {
      next.push(synced);
      if (!syncing) start();
    },
    busy: () => syncing !== null,
    beforeNextSync(fn) {
      if (syncing) before.push(fn);
      else fn();
    },
    release() {
      while (syncing) {
        const done = syncing;
        syncing = null;
        for (const d of done) d();
        const ready = before;
        before = [];
        for (const fn of ready) fn();
        if (!syncing && next.length > 0) start();
      }
    },
  };
}

test("while the card hangs at most maxQueued readings wait; more are refused (no PUBACK), logged once; nothing is lost", async () => {
  const dir = tempDir();
  defer(() => dir.cleanup());
  const store = openStore(join(dir.path, DB_FILE));
  defer(() => store.close());
  const lines: string[] = [];
  const card = hungCard();
  const ingest = createIngest({ store, log: createLog({ sink: (line) => lines.push(line) }), durable: card, maxQueued: 50 });
  const reading = (i: number) => ({
    homeId: "home-001",
    deviceUid: "aht20-hung01",
    reading: { temperature_c: 20 + i / 100, humidity_pct: 40, ts: Date.UTC(2026, 0, 1) + i * 60_000 },
    receivedAt: Date.now(),
  });
  const outcome = new Map<number, Error | null>();
  const submit = (i: number) => ingest.submit(reading(i), (err) => outcome.set(i, err ?? null));

  // The first reading is committed and its sync starts: the card hangs there.
  submit(0);
  ingest.drain();
  expect(card.busy()).toBe(true);
  // Meanwhile 80 more arrive: 50 wait, 30 are refused at once.
  for (let i = 1; i <= 80; i++) submit(i);
  expect(ingest.pending).toBe(50);
  const refused = [...outcome].filter(([, err]) => err !== null);
  expect(refused).toHaveLength(30);
  expect(refused[0]![1]!.message).toContain("ingest queue full (50 readings waiting for the card)");
  expect(ingest.stats.refusedFull).toBe(30);
  expect(lines.filter((l) => l.includes("queue waiting for the card is full"))).toHaveLength(1);
  expect(outcome.has(0)).toBe(false); // not acknowledged before its sync ends

  // The card answers: the first reading is acknowledged, the 50 waiting are committed and acknowledged.
  card.release();
  await Bun.sleep(0);
  card.release();
  expect(outcome.get(0)).toBeNull();
  for (let i = 1; i <= 50; i++) expect(outcome.get(i)).toBeNull();
  // The refused ones (their sensors send them again) are stored when they come back.
  for (let i = 51; i <= 80; i++) submit(i);
  ingest.drain();
  card.release();
  for (let i = 0; i <= 80; i++) expect(outcome.get(i)).toBeNull();
  const id = store.findDevice("aht20-hung01")!.id;
  expect(store.history.rawSpan(id, Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 2))).toHaveLength(81);
});
