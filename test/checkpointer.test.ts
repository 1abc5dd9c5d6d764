// Checkpoints on the worker thread (store/checkpointer.ts) over a real
// database opened as the server opens it: SQLite's automatic checkpoint is
// off, the worker copies the -wal file's frames into the database file once
// enough wait, and nothing is lost on the way.

import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import { createCheckpointer, framesWaiting, TRIM_STEP_BYTES } from "../lib/server/store/checkpointer.ts";
import { openDatabase, WAL_SIZE_LIMIT } from "../lib/server/store/db.ts";
import { createLog } from "../lib/shared/log.ts";
import { tempDir, waitFor, deferAfterEach } from "./helpers.ts";

const defer = deferAfterEach();

const quiet = createLog({ level: "error", sink: () => {} });

/**
 * A database opened as the server opens it, its checkpointer (200 pages start a checkpoint), its -shm file, and a
 * table whose rows fill a page each; all closed after the test.
 */
function world(idleMs = 60_000) {
  const dir = tempDir();
  defer(() => dir.cleanup());
  const path = join(dir.path, "techtemp.db");
  const db = openDatabase(path, { walSync: "deferred" });
  defer(() => db.close());
  const checkpointer = createCheckpointer(path, quiet, { pages: 200, idleMs });
  defer(() => checkpointer.close());
  const shm = openSync(`${path}-shm`, "r");
  defer(() => closeSync(shm));
  db.exec("CREATE TABLE filler (id INTEGER PRIMARY KEY, blob BLOB)");
  const insert = db.query("INSERT INTO filler (blob) VALUES (randomblob(3000))");
  return { dir, path, db, checkpointer, shm, insert };
}

test("the server's connection never checkpoints by itself; the worker does once enough frames wait", async () => {
  const { dir, path, checkpointer, shm, insert } = world(300);
  // 1500 commits of a page each: far past SQLite's default of 1000 pages, and no checkpoint happened.
  for (let i = 0; i < 1500; i++) insert.run();
  const waiting = framesWaiting(shm);
  expect(waiting).toBeGreaterThan(1500);
  expect(checkpointer.stats.checkpoints).toBe(0);

  checkpointer.poke();
  await waitFor(() => checkpointer.stats.checkpoints === 1, 10_000, "the worker's checkpoint");
  expect(checkpointer.stats.failed).toBe(0);
  expect(checkpointer.stats.lastPages).toBeGreaterThanOrEqual(waiting);
  expect(framesWaiting(shm)).toBe(0);
  // Commits made after it began wait for the catch-up, which the next sync is (wal-sync.ts).
  for (let i = 0; i < 50; i++) insert.run();
  expect(checkpointer.catchUpDue()).toBe(true);
  checkpointer.poke(); // no second big checkpoint while a catch-up is due
  await checkpointer.catchUp();
  expect(checkpointer.catchUpDue()).toBe(false);
  expect(checkpointer.stats).toMatchObject({ checkpoints: 1, catchUps: 1, failed: 0 });
  expect(framesWaiting(shm)).toBe(0);
  // Everything was copied: the next commit starts the -wal file over (its first frames again).
  insert.run();
  expect(framesWaiting(shm)).toBeLessThan(10);
  // Below the threshold nothing starts.
  checkpointer.poke();
  expect(checkpointer.stats.checkpoints).toBe(1);
  // Without a job the worker ends (its memory with it), and the next checkpoint starts one again.
  await waitFor(() => checkpointer.stats.workersEnded === 1, 10_000, "the idle worker to end");
  for (let i = 0; i < 300; i++) insert.run();
  checkpointer.poke();
  await waitFor(() => checkpointer.stats.checkpoints === 2, 10_000, "a checkpoint by a new worker");
  expect(checkpointer.stats).toMatchObject({ workersStarted: 2, failed: 0 });
  await checkpointer.catchUp();
  // Every row is in the database file itself: a reader of a copy without the -wal file sees them all.
  const copyPath = join(dir.path, "copy.db");
  await Bun.write(copyPath, Bun.file(path));
  const copy = new Database(copyPath, { readonly: true });
  expect(copy.query("SELECT count(*) AS n FROM filler").get()).toEqual({ n: 1851 });
  copy.close();
});

test("a -wal file a long reader let grow is cut back by the catch-ups on the worker, a step at a time, never by a commit", async () => {
  const { path, db, checkpointer, insert } = world();
  let inserted = 0;
  // A reader (as a backup is) holds its snapshot: no checkpoint can copy past it, the -wal file grows past the limit.
  const reader = new Database(path, { readonly: true });
  defer(() => reader.close());
  reader.exec("BEGIN");
  reader.query("SELECT count(*) FROM filler").get();
  const wal = () => statSync(`${path}-wal`).size;
  while (wal() <= WAL_SIZE_LIMIT + 2 * TRIM_STEP_BYTES + 1024 * 1024) (insert.run(), inserted++);
  checkpointer.poke();
  await waitFor(() => checkpointer.stats.checkpoints === 1, 10_000, "the held-back checkpoint");
  expect(checkpointer.catchUpDue()).toBe(false);
  reader.exec("COMMIT");
  /** One checkpoint and its catch-up (what the server's syncs do under a steady stream). */
  const round = async () => {
    await waitFor(
      () => {
        checkpointer.poke();
        return checkpointer.catchUpDue();
      },
      10_000,
      "a checkpoint",
    );
    await checkpointer.catchUp();
  };
  // Everything is copied now, but every frame is still the last written: nothing may be cut yet.
  await round();
  const grown = wal();
  expect(grown).toBeGreaterThan(WAL_SIZE_LIMIT + 2 * TRIM_STEP_BYTES);
  expect(checkpointer.stats.truncated).toBe(0);
  // The next commit starts the -wal file over from its first frame, and does not cut it (journal_size_limit -1).
  insert.run();
  inserted++;
  expect(wal()).toBe(grown);
  // Each catch-up after that cuts at most one step, down to the limit.
  const sizes = [grown];
  for (let i = 0; i < 10 && wal() > WAL_SIZE_LIMIT; i++) {
    for (let j = 0; j < 300; j++) (insert.run(), inserted++);
    await round();
    sizes.push(wal());
  }
  expect(sizes.at(-1)!).toBeLessThanOrEqual(WAL_SIZE_LIMIT);
  expect(checkpointer.stats.truncated).toBeGreaterThanOrEqual(3);
  for (let i = 1; i < sizes.length; i++) expect(sizes[i - 1]! - sizes[i]!).toBeLessThanOrEqual(TRIM_STEP_BYTES);
  expect(checkpointer.stats.failed).toBe(0);
  // Nothing was lost or damaged, seen by the server's connection and by a new one.
  expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
  const fresh = new Database(path, { readonly: true });
  defer(() => fresh.close());
  expect(fresh.query("SELECT count(*) AS n FROM filler").get()).toEqual({ n: inserted });
});

test("when many frames came in during a checkpoint, another round runs before the catch-up the next sync waits for", async () => {
  const { checkpointer, shm, insert } = world();
  for (let i = 0; i < 300; i++) insert.run();
  checkpointer.poke();
  // The worker copies the 300 frames; this thread waits for that without turning the event loop, so the
  // checkpoint's answer is handled only after the commits below, as when they come in during a checkpoint.
  const deadline = Date.now() + 10_000;
  while (framesWaiting(shm) > 0) {
    if (Date.now() > deadline) throw new Error("the worker's checkpoint did not copy the frames within 10 s");
    Bun.sleepSync(1);
  }
  // Meanwhile ingestion goes on: 600 commits, more than a catch-up should copy (500 frames).
  for (let i = 0; i < 600; i++) insert.run();
  await waitFor(() => checkpointer.catchUpDue(), 10_000, "the catch-up to be due");
  // Two rounds ran: the second copied the 600; what is left for the catch-up is little.
  expect(checkpointer.stats.checkpoints).toBe(2);
  expect(framesWaiting(shm)).toBeLessThan(500);
  await checkpointer.catchUp();
  expect(framesWaiting(shm)).toBe(0);
  // Without that much coming in, one round and the catch-up: no second round.
  for (let i = 0; i < 300; i++) insert.run();
  checkpointer.poke();
  await waitFor(() => checkpointer.catchUpDue(), 10_000, "the next catch-up to be due");
  expect(checkpointer.stats.checkpoints).toBe(3);
  expect(checkpointer.stats.failed).toBe(0);
});

test("the frames waiting are read from the -shm file; an unreadable one counts as none", () => {
  const dir = tempDir();
  defer(() => dir.cleanup());
  const path = join(dir.path, "t.db");
  const db = openDatabase(path, { walSync: "deferred" });
  defer(() => db.close());
  const shm = openSync(`${path}-shm`, "r");
  defer(() => closeSync(shm));
  const before = framesWaiting(shm);
  db.exec("CREATE TABLE t (x)");
  db.exec("INSERT INTO t VALUES (1)");
  expect(framesWaiting(shm)).toBeGreaterThan(before);
  const empty = openSync(join(dir.path, "empty"), "w+");
  defer(() => closeSync(empty));
  expect(framesWaiting(empty)).toBe(0);
});
