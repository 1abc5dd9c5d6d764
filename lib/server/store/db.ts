// Opening the SQLite database: pragmas and numbered migrations (WTF Dial's
// sqlite.go). Every query lives in the store modules, as prepared statements.

import { Database } from "bun:sqlite";
import { wrap } from "../../shared/errors.ts";
import { migrations } from "./migrations.ts";

/**
 * The -wal file is cut back to this size (bytes) after a burst: by SQLite when it starts over (PRAGMA
 * journal_size_limit), or with deferred syncs by the checkpoint worker, a step at a time (checkpointer.ts).
 */
export const WAL_SIZE_LIMIT = 16 * 1024 * 1024;

/** The database file inside the data directory. */
export const DB_FILE = "techtemp.db";

/**
 * Opens (creating if needed) the database at `path` and applies any pending
 * migrations, each in its own transaction. `readonly` opens an existing
 * database without changing it (for `inspect` beside a live server).
 * `synchronous` NORMAL is for a command that can redo its work (import-legacy).
 */
export function openDatabase(
  path: string,
  options: {
    readonly?: boolean;
    synchronous?: "FULL" | "NORMAL";
    /** "deferred": the caller syncs the -wal file after a commit, off the event loop (wal-sync.ts; the server). */
    walSync?: "sqlite" | "deferred";
    sqliteCheckpoints?: boolean;
  } = {},
): Database {
  let db: Database;
  try {
    db = options.readonly
      ? new Database(path, { readonly: true, strict: true })
      : new Database(path, { create: true, readwrite: true, strict: true });
  } catch (err) {
    throw wrap(`open database ${path}`, err);
  }
  try {
    // A reader must wait for a writer's short transactions instead of failing
    // with SQLITE_BUSY (inspect, backups and retention run beside ingestion).
    db.exec("PRAGMA busy_timeout = 5000");
    if (options.readonly) return db;
    // WAL: readers (API, pages) never block the writer (ingestion) and a
    // commit is one sequential append to the -wal file.
    db.exec("PRAGMA journal_mode = WAL");
    // FULL: a PUBACK promises that the reading survives, and a Pi loses power
    // more often than a server does. With NORMAL a WAL commit survives a crash
    // of this process but not of the machine. The cost (one fsync per commit)
    // is paid once per group commit, not once per reading (lib/server/mqtt/ingest.ts).
    // NORMAL only where a commit lost to a power cut is redone by running the command again,
    // or where the caller syncs the -wal file itself before it says a commit is kept
    // (walSync "deferred": the server, which does it off the event loop, wal-sync.ts).
    const normal = options.synchronous === "NORMAL" || options.walSync === "deferred";
    db.exec(normal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL");
    // For SD cards (bench/writes.ts): a checkpoint copies every page changed since
    // the last one from the WAL into the database file, so a page changed by many
    // commits is written twice per checkpoint, not per commit. 4000 pages (16 MiB)
    // between checkpoints instead of SQLite's 1000 makes the hot pages (each
    // device's newest readings) go to the file a quarter as often; the WAL file
    // is cut back to 16 MiB after a burst (an import), and temporary tables and
    // sorts stay in memory instead of files. `sqliteCheckpoints` keeps SQLite's
    // defaults (bench/writes.ts's reference).
    if (!options.sqliteCheckpoints) {
      // Deferred syncs come with checkpoints on a worker (checkpointer.ts), at the same 4000 pages.
      db.exec(`PRAGMA wal_autocheckpoint = ${options.walSync === "deferred" ? 0 : 4000}`);
      // With checkpoints on the worker, the worker cuts the -wal file back too (checkpointer.ts, trimStep), a step
      // at a time: SQLite would cut it in one go in the commit that starts it over, on the event loop.
      db.exec(`PRAGMA journal_size_limit = ${options.walSync === "deferred" ? -1 : WAL_SIZE_LIMIT}`);
      db.exec("PRAGMA temp_store = MEMORY");
    }
    // Placements and readings point at devices and rooms; keep them honest.
    db.exec("PRAGMA foreign_keys = ON");
    migrate(db);
  } catch (err) {
    db.close();
    throw wrap(`open database ${path}`, err);
  }
  return db;
}

/** Applies the migrations newer than `PRAGMA user_version`. */
export function migrate(db: Database): void {
  const current = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  const latest = migrations.length;
  if (current > latest) {
    throw new Error(`database schema version ${current} is newer than this TechTemp (${latest}); upgrade TechTemp`);
  }
  for (let v = current; v < latest; v++) {
    const step = migrations[v]!;
    db.transaction(() => {
      step(db);
      // user_version cannot be bound as a parameter; v + 1 is our own integer.
      db.exec(`PRAGMA user_version = ${v + 1}`);
    })();
  }
}
