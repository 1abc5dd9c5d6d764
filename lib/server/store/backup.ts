// The database side of backups (lib/server/backup/ decides when and where):
//
// - an online copy (pacedCopy: the tables in key order, in one read
//   transaction, sent to the card in small flushes with rests between), then
//   `PRAGMA integrity_check` on the copy, both in a worker thread with its own
//   connection. The copy is a read transaction: in WAL mode it never blocks
//   the writer, and on its own thread it never holds the event loop, so
//   ingestion keeps committing and acknowledging while a backup of any size
//   runs (bench/backup.ts measures the ack latency beside the same run
//   without a backup). The WAL grows by what is written meanwhile and is
//   checkpointed after;
// - checks of a file (start-up quick_check, restore's integrity_check,
//   its schema version), synchronous: nothing else runs then;
// - the record of each backup (table `backups`, migration 4).
//
// The worker is made from a Blob of a self-contained function, so the same
// code runs under `bun server.ts` and inside the compiled executable (which
// embeds no separate worker file).

import type * as Ffi from "bun:ffi";
import { Database } from "bun:sqlite";
import { migrations } from "./migrations.ts";

/** What the worker did: the copy, and the integrity check of the copy. */
export interface CopyResult {
  copyMs: number;
  checkMs: number;
  /** "ok", or the first problems integrity_check found in the copy. */
  integrity: string;
  /** The copy's PRAGMA user_version (its schema). */
  schemaVersion: number;
  /**
   * The worker thread's CPU and I/O priority during the copy, as the kernel
   * reports them (/proc/thread-self/stat's nice, ioprio_get), or why they could
   * not be lowered.
   */
  priority: { nice: number; ioClass: string } | { problem: string };
  /** How often the copy was sent to the card on its way (every FLUSH_BYTES), how long that took, how long it rested. */
  flushes: number;
  flushMs: number;
  restMs: number;
}

/**
 * Lowers the calling thread's priority (runs inside the worker, with bun:ffi
 * passed in): CPU nice 19, so on a busy Pi the event loop (ingestion, pages)
 * runs first and the copy takes what is left; I/O class idle, so the copy's
 * reads and writes wait for the card to be free of ingestion's (the kernel's
 * BFQ scheduler honours it, the Pi's default for SD cards; mq-deadline and
 * none ignore it). Linux priorities are per thread: the rest of the server
 * keeps its own. Returns what the kernel then reports for this thread.
 */
function lowerThreadPriority(ffi: typeof Ffi, readFile: (path: string, encoding: "utf8") => string): CopyResult["priority"] {
  // The system call numbers (there is no glibc wrapper for ioprio_set/get).
  const numbers: Record<string, { ioprio_set: number; ioprio_get: number }> = {
    x64: { ioprio_set: 251, ioprio_get: 252 },
    arm64: { ioprio_set: 30, ioprio_get: 31 },
  };
  const nr = numbers[process.arch];
  if (!nr) return { problem: `no system call numbers for ${process.arch}` };
  try {
    const libc = ffi.dlopen("libc.so.6", {
      gettid: { args: [], returns: "i32" },
      setpriority: { args: ["i32", "u32", "i32"], returns: "i32" },
      syscall: { args: ["i64", "i64", "i64", "i64"], returns: "i64" },
    });
    try {
      const tid = libc.symbols.gettid();
      const IOPRIO_WHO_PROCESS = 1; // a thread id is a "process" to ioprio_set
      const IDLE = 3 << 13; // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0)
      const cpu = libc.symbols.setpriority(0 /* PRIO_PROCESS: a thread id */, tid, 19);
      const io = Number(libc.symbols.syscall(nr.ioprio_set, IOPRIO_WHO_PROCESS, tid, IDLE));
      if (cpu !== 0 || io !== 0) return { problem: `setpriority returned ${cpu}, ioprio_set ${io}` };
      const got = Number(libc.symbols.syscall(nr.ioprio_get, IOPRIO_WHO_PROCESS, tid, 0));
      const classes = ["none", "realtime", "best-effort", "idle"];
      // Field 19 of stat is nice; the command name (field 2) may hold spaces, so count from its closing parenthesis.
      const stat = readFile("/proc/thread-self/stat", "utf8");
      const nice = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      return { nice, ioClass: got < 0 ? `unknown (${got})` : (classes[got >> 13] ?? String(got >> 13)) };
    } finally {
      libc.close();
    }
  } catch (err) {
    return { problem: err instanceof Error ? err.message : String(err) };
  }
}

/** How much of the copy may wait in the page cache before it is sent to the card (bytes). */
export const FLUSH_BYTES = 256 * 1024;
/**
 * The share of the card's time the copy may take: after each flush it rests
 * for as long as the flush took, times (1 / DISK_SHARE - 1).
 */
export const DISK_SHARE = 0.5;
/** Rows per statement of the copy (between two looks at what waits to be flushed). */
const CHUNK_ROWS = 4096;
/** The copy's page cache (KiB): pages beyond it go to the file while the copy runs. */
const CACHE_KIB = 2048;

/** The file system calls the copy makes (node:fs, passed into the worker). */
export interface CopyFs {
  openSync(path: string, flags: string): number;
  fstatSync(fd: number): { size: number };
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
}

/**
 * Copies the database open on `src` into the new file `dest`, table by table
 * in key order (rowid, or the primary key of a WITHOUT ROWID table), a few
 * thousand rows per statement, all inside one
 * read transaction: the copy is the database as it was when the copy began,
 * while the server goes on committing. Runs inside the worker.
 *
 * Not VACUUM INTO, which is one statement: it writes the whole file without a
 * pause, and each sync of the -wal file meanwhile waited behind the copy's
 * writes in the file system's journal (bench/backup.ts: acks up to 75-110 ms
 * late). Here the copy is sent to the card every FLUSH_BYTES and then rests
 * (DISK_SHARE), so a sync of the server's waits at most for one such flush.
 *
 * The copy keeps what VACUUM INTO keeps: page size, auto_vacuum, user_version,
 * application_id, every table, index, view and trigger, sqlite_sequence and
 * sqlite_stat1. Its pages are as full as the live database's (inserted in key
 * order; VACUUM INTO packs them ~12 % tighter).
 */
export function pacedCopy(
  src: Database,
  dest: string,
  fs: CopyFs,
  limits: { flushBytes: number; diskShare: number; chunkRows: number; cacheKiB: number },
): { flushes: number; flushMs: number; restMs: number } {
  const id = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const pragma = (name: string) => Object.values(src.query(`PRAGMA main.${name}`).get() as object)[0] as number;
  /** The statement that made an object in main, made in bk instead. */
  const inBackup = (sql: string) =>
    sql.replace(
      /^CREATE\s+(TABLE|UNIQUE\s+INDEX|INDEX|VIEW|TRIGGER)\s+(IF\s+NOT\s+EXISTS\s+)?/i,
      (_all, kind: string) => `CREATE ${kind} bk.`,
    );
  const fd = fs.openSync(dest, "wx");
  /** Statements that read the copy: finalized before it is detached. */
  const statements: { finalize(): void }[] = [];
  const stats = { flushes: 0, flushMs: 0, restMs: 0 };
  let flushed = 0;
  /** Sends what waits in the page cache to the card once it is FLUSH_BYTES, then rests. */
  const pace = () => {
    const size = fs.fstatSync(fd).size;
    if (size - flushed < limits.flushBytes) return;
    const started = performance.now();
    fs.fsyncSync(fd);
    const took = performance.now() - started;
    flushed = size;
    const rest = took * (1 / limits.diskShare - 1);
    Bun.sleepSync(rest);
    stats.flushes++;
    stats.flushMs += took;
    stats.restMs += rest;
  };
  try {
    // Set before anything is written to the new file; a journal is no use for a file deleted when the copy fails.
    const pageSize = pragma("page_size");
    const autoVacuum = pragma("auto_vacuum");
    src.query("ATTACH ? AS bk").run(dest);
    src.exec(`PRAGMA bk.page_size = ${pageSize}; PRAGMA bk.auto_vacuum = ${autoVacuum}`);
    // Pages the cache cannot hold go to the file as the copy goes (and are flushed by pace()).
    src.exec(`PRAGMA bk.journal_mode = OFF; PRAGMA bk.synchronous = OFF; PRAGMA bk.cache_size = -${limits.cacheKiB}`);
    src.exec("BEGIN");
    // The first read starts the snapshot that every statement below sees.
    const objects = src.query("SELECT type, name, sql FROM main.sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid").all() as {
      type: string;
      name: string;
      sql: string;
    }[];
    const tables = objects.filter((o) => o.type === "table" && !o.name.startsWith("sqlite_"));
    const virtual = tables.find((t) => /^CREATE\s+VIRTUAL/i.test(t.sql));
    if (virtual) throw new Error(`cannot copy the virtual table ${virtual.name}`);
    // Indexes before the rows, as VACUUM does: none of TechTemp's big tables has one besides its key.
    for (const o of tables) src.exec(inBackup(o.sql));
    for (const o of objects) if (o.type === "index") src.exec(inBackup(o.sql));
    for (const t of tables) {
      const columns = src.query(`PRAGMA main.table_info(${id(t.name)})`).all() as { name: string; pk: number }[];
      const withoutRowid = (src.query(`PRAGMA main.table_list(${id(t.name)})`).get() as { wr: number }).wr === 1;
      // A WITHOUT ROWID table goes in the order of its primary key (never NULL there). A rowid table goes in rowid
      // order with its rowids kept: its primary key may be NULL (SQLite allows it outside INTEGER PRIMARY KEY).
      const keys = withoutRowid
        ? columns
            .filter((c) => c.pk > 0)
            .sort((a, b) => a.pk - b.pk)
            .map((c) => id(c.name))
        : ["rowid"];
      const into = withoutRowid ? "" : `(rowid, ${columns.map((c) => id(c.name)).join(", ")})`;
      const select = withoutRowid ? "*" : "rowid, *";
      const order = keys.join(", ");
      const copy = `INSERT INTO bk.${id(t.name)} ${into} SELECT ${select} FROM main.${id(t.name)}`;
      const first = src.query(`${copy} ORDER BY ${order} LIMIT ${limits.chunkRows}`);
      const after = src.query(
        `${copy} WHERE (${order}) > (${keys.map(() => "?").join(", ")}) ORDER BY ${order} LIMIT ${limits.chunkRows}`,
      );
      const last = src.query(`SELECT ${order} FROM bk.${id(t.name)} ORDER BY ${keys.map((k) => `${k} DESC`).join(", ")} LIMIT 1`);
      statements.push(first, after, last);
      let copied = first.run().changes;
      while (copied === limits.chunkRows) {
        pace();
        copied = after.run(...(last.values()[0] as never[])).changes;
      }
      pace();
    }
    for (const o of objects) if (o.type === "view" || o.type === "trigger") src.exec(inBackup(o.sql));
    if (objects.some((o) => o.name === "sqlite_sequence")) {
      src.exec("DELETE FROM bk.sqlite_sequence; INSERT INTO bk.sqlite_sequence SELECT * FROM main.sqlite_sequence");
    }
    if (objects.some((o) => o.name === "sqlite_stat1")) {
      // ANALYZE of the schema table alone makes an empty sqlite_stat1 to copy into.
      src.exec(
        "ANALYZE bk.sqlite_schema; DELETE FROM bk.sqlite_stat1; INSERT INTO bk.sqlite_stat1 SELECT * FROM main.sqlite_stat1",
      );
    }
    src.exec(`PRAGMA bk.user_version = ${pragma("user_version")}; PRAGMA bk.application_id = ${pragma("application_id")}`);
    src.exec("COMMIT");
    fs.fsyncSync(fd);
  } finally {
    // The caller's connection is left as it was: no transaction, nothing attached (the caller removes the file).
    for (const s of statements) s.finalize();
    if (src.inTransaction) src.exec("ROLLBACK");
    try {
      src.exec("DETACH bk");
    } catch {} // not attached: the failure came before
    fs.closeSync(fd);
  }
  return stats;
}

/** Runs inside the worker: its only imports are bun:sqlite, bun:ffi and node:fs (passed in), its only input the message. */
function workerMain(
  Db: typeof Database,
  ffi: typeof Ffi,
  fs: CopyFs & { readFileSync: (path: string, encoding: "utf8") => string },
  lower: typeof lowerThreadPriority,
  copy: typeof pacedCopy,
): void {
  self.onmessage = (event: MessageEvent) => {
    const { source, dest, limits } = event.data as { source: string; dest: string; limits: Parameters<typeof copy>[3] };
    try {
      const priority = lower(ffi, fs.readFileSync);
      const started = performance.now();
      const src = new Db(source, { readwrite: true, create: false });
      let paced;
      try {
        // A writer's commit may hold the lock for a moment; wait for it instead of failing.
        src.exec("PRAGMA busy_timeout = 10000");
        paced = copy(src, dest, fs, limits);
      } finally {
        src.close();
      }
      const copied = performance.now();
      const check = new Db(dest, { readonly: true });
      let integrity: string;
      let schemaVersion: number;
      try {
        const rows = check.query("PRAGMA integrity_check(10)").all() as { integrity_check: string }[];
        integrity = rows
          .map((r) => r.integrity_check)
          .join("; ")
          .replace(/\s*\n\s*/g, " ");
        schemaVersion = (check.query("PRAGMA user_version").get() as { user_version: number }).user_version;
      } finally {
        check.close();
      }
      postMessage({
        ok: true,
        copyMs: copied - started,
        checkMs: performance.now() - copied,
        integrity,
        schemaVersion,
        priority,
        ...paced,
      });
    } catch (err) {
      postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  };
}

const WORKER_SOURCE = [
  `import { Database } from "bun:sqlite";`,
  `import * as ffi from "bun:ffi";`,
  `import * as fs from "node:fs";`,
  `(${workerMain.toString()})(Database, ffi, fs, ${lowerThreadPriority.toString()}, ${pacedCopy.toString()});`,
].join("\n");

/**
 * Copies the database at `source` into the new file `dest` (which must not
 * exist) with pacedCopy, and checks the copy with integrity_check, on a
 * worker thread at the lowest CPU and I/O priority. Rejects with the
 * database's message when the copy fails, and at once when `signal` aborts.
 */
export function copyDatabase(source: string, dest: string, signal?: AbortSignal): Promise<CopyResult> {
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
  const worker = new Worker(url);
  return new Promise<CopyResult>((resolve, reject) => {
    // Stopping the server ends the copy at once (the thread is terminated; the caller deletes the partial file).
    signal?.addEventListener("abort", () => reject(new Error("interrupted: the server is stopping")), { once: true });
    worker.onmessage = (event: MessageEvent) => {
      const r = event.data as ({ ok: true } & CopyResult) | { ok: false; error: string };
      if (r.ok)
        resolve({
          copyMs: r.copyMs,
          checkMs: r.checkMs,
          integrity: r.integrity,
          schemaVersion: r.schemaVersion,
          priority: r.priority,
          flushes: r.flushes,
          flushMs: r.flushMs,
          restMs: r.restMs,
        });
      else reject(new Error(r.error));
    };
    worker.onerror = (event) => reject(new Error(`backup worker: ${event.message}`));
    worker.postMessage({
      source,
      dest,
      limits: { flushBytes: FLUSH_BYTES, diskShare: DISK_SHARE, chunkRows: CHUNK_ROWS, cacheKiB: CACHE_KIB },
    });
  }).finally(() => {
    worker.terminate();
    URL.revokeObjectURL(url);
  });
}

/** What a file holds, as far as restoring or starting on it is concerned. */
export interface FileCheck {
  /** "ok", or why the file cannot be used (not a database, damaged: the first problems). */
  problem: string | null;
  /** PRAGMA user_version (0 when unreadable). */
  schemaVersion: number;
  /** The schema this TechTemp knows (its newest migration). */
  knownVersion: number;
  /** Whether it has TechTemp's tables (readings, devices). */
  techtemp: boolean;
}

/**
 * Checks a database file: opens it (read-only unless `writable`: a WAL
 * database with a live -wal is read through it), runs `quick_check` (fast,
 * every page read once) or `integrity_check` (also every index against its
 * table), reads its schema version. Never throws: an unreadable file is a problem.
 */
export function checkFile(path: string, depth: "quick" | "full", options: { writable?: boolean } = {}): FileCheck {
  const result: FileCheck = { problem: null, schemaVersion: 0, knownVersion: migrations.length, techtemp: false };
  let db: Database;
  try {
    db = options.writable ? new Database(path, { readwrite: true, create: false }) : new Database(path, { readonly: true });
  } catch (err) {
    result.problem = (err as Error).message;
    return result;
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const pragma = depth === "quick" ? "PRAGMA quick_check(10)" : "PRAGMA integrity_check(10)";
    const rows = db.query(pragma).all() as Record<string, string>[];
    const found = rows.map((r) => Object.values(r)[0]);
    // One line: SQLite's report has a line per damaged page.
    if (found.length !== 1 || found[0] !== "ok") result.problem = found.join("; ").replace(/\s*\n\s*/g, " ");
    result.schemaVersion = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    const tables = db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('readings', 'devices')").all();
    result.techtemp = tables.length === 2;
  } catch (err) {
    // "file is not a database", "database disk image is malformed": reading the header or a page failed.
    result.problem ??= (err as Error).message;
  } finally {
    db.close();
  }
  return result;
}

/**
 * Whether another connection (a running server) has the database open: an
 * exclusive lock is refused while any other connection holds the file. Returns
 * the refusal ("database is locked") or null; an unreadable file is not "in use".
 */
export function inUseBy(path: string): string | null {
  let db: Database;
  try {
    db = new Database(path, { readwrite: true, create: false });
  } catch {
    return null;
  }
  try {
    db.exec("PRAGMA busy_timeout = 0");
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("COMMIT");
    return null;
  } catch (err) {
    const message = (err as Error).message;
    return /locked|busy/i.test(message) ? message : null;
  } finally {
    db.close();
  }
}

/** One recorded backup (or failed attempt). */
export interface BackupRecord {
  id: number;
  started_at: number;
  finished_at: number;
  /** schedule | manual (the page or the API) | command (techtemp-server backup). */
  trigger: string;
  /** The file's name in the backup directory; null when no file was kept. */
  file: string | null;
  size_bytes: number | null;
  duration_ms: number;
  /** "ok", or what integrity_check found in the copy. */
  integrity: string | null;
  /** Why it failed; null = it worked. */
  error: string | null;
  /** The second target: null = none configured, "ok", or why it failed. */
  second_target: string | null;
}

/** Records kept: the newest ones (a year of daily backups and the failures among them). */
export const RECORDS_KEPT = 500;

/** Creates the backup records over an open database. */
export function createBackupRecords(db: Database) {
  const q = {
    insert: db.query<
      { id: number },
      [number, number, string, string | null, number | null, number, string | null, string | null, string | null]
    >(
      `INSERT INTO backups (started_at, finished_at, trigger, file, size_bytes, duration_ms, integrity, error, second_target)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    prune: db.query<null, [number]>("DELETE FROM backups WHERE id <= (SELECT max(id) FROM backups) - ?"),
    recent: db.query<BackupRecord, [number]>("SELECT * FROM backups ORDER BY id DESC LIMIT ?"),
    lastOk: db.query<BackupRecord, []>("SELECT * FROM backups WHERE error IS NULL ORDER BY id DESC LIMIT 1"),
  };
  return {
    /** Records a backup (or a failed attempt); keeps the newest RECORDS_KEPT. */
    add(r: Omit<BackupRecord, "id">): number {
      const id = q.insert.get(
        r.started_at,
        r.finished_at,
        r.trigger,
        r.file,
        r.size_bytes,
        r.duration_ms,
        r.integrity,
        r.error,
        r.second_target,
      )!.id;
      q.prune.run(RECORDS_KEPT);
      return id;
    },
    /** The newest records, newest first. */
    recent(limit = 50): BackupRecord[] {
      return q.recent.all(limit);
    },
    /** The newest backup that worked, or null. */
    lastOk(): BackupRecord | null {
      return q.lastOk.get() ?? null;
    },
  };
}

/** The backup records' interface. */
export type BackupRecords = ReturnType<typeof createBackupRecords>;
