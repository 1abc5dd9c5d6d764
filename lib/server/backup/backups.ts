// Scheduled online backups: every day at `backup_time` (the home's time zone),
// and on demand (the backups page, the API, `techtemp-server backup`). Each
// one is an online copy of the database (store/backup.ts: a paced copy on a
// worker thread, never holding ingestion), checked with integrity_check before
// it gets its final name, fsync'd, then copied atomically to the optional
// second target, rotated in both places (files.ts: 7 daily, 4 weekly, 12
// monthly) and recorded with its size and duration. A failure is recorded,
// logged and shown (the backups page, /metrics); a second target that is
// missing, not writable or full is a failure of its own, never skipped quietly.

import { existsSync, mkdirSync, renameSync, statSync, accessSync, constants, chmodSync } from "node:fs";
import { join, resolve } from "node:path";
import { notFound } from "../../shared/errors.ts";
import type { Log } from "../../shared/log.ts";
import type { Config } from "../config.ts";
import { copyDatabase } from "../store/backup.ts";
import type { BackupRecord, BackupRecords } from "../store/store.ts";
import {
  BACKUP_NAME,
  PARTIAL,
  backupName,
  copyAtomically,
  fsyncPath,
  listBackups,
  nextRun,
  ownLike,
  removeGradually,
  removePartials,
  toKeep,
  type BackupFile,
  type Keep,
} from "./files.ts";

/** Where backups go and when. */
export interface BackupSettings {
  /** The backup directory (created when missing). */
  dir: string;
  /** The second target (never created: a missing one is a mount that is not there); null = none. */
  secondDir: string | null;
  /** HH:MM in `timeZone`, or "off". */
  time: string;
  keep: Keep;
  /** The home's time zone (days, weeks and months of rotation; the hour of the schedule). */
  timeZone: string;
}

/** The backup settings from the server's config. */
export function backupSettings(
  config: Pick<
    Config,
    | "data_dir"
    | "backup_dir"
    | "backup_second_dir"
    | "backup_time"
    | "backup_keep_daily"
    | "backup_keep_weekly"
    | "backup_keep_monthly"
    | "home_timezone"
  >,
): BackupSettings {
  return {
    dir: config.backup_dir ? resolve(config.backup_dir) : join(config.data_dir, DEFAULT_DIR),
    secondDir: config.backup_second_dir ? resolve(config.backup_second_dir) : null,
    time: config.backup_time,
    keep: { daily: config.backup_keep_daily, weekly: config.backup_keep_weekly, monthly: config.backup_keep_monthly },
    // The schedule and the rotation's days, weeks and months are the home's.
    timeZone: config.home_timezone,
  };
}

/**
 * The default backup directory inside the data directory. Not `backups/`:
 * install.sh keeps its upgrade copies there (root-only, 3 kept by its own pruning).
 */
export const DEFAULT_DIR = "db-backups";

/** A missed backup (the Pi was off at the scheduled time) runs this long after start. */
export const CATCH_UP_AFTER_MS = 10 * 60_000;
/** A backup older than this at start counts as missed. */
const MISSED_AFTER_MS = 26 * 3_600_000;
/** How often the schedule looks at the clock. */
const TICK_MS = 30_000;

/** What the pages and /metrics show. */
export interface BackupStatus {
  dir: string;
  time: string;
  /** When the next scheduled backup is due (null: off). */
  nextAt: number | null;
  /** The backup under way. */
  running: { since: number; trigger: string } | null;
  /** The newest attempt, and the newest that worked. */
  last: BackupRecord | null;
  lastOk: BackupRecord | null;
  /** Since this server started. */
  totals: { ok: number; failed: number };
  /** The second target: null = none; `problem` = it is failing now; `warning` = it works but will not help much. */
  second: { dir: string; problem: string | null; warning: string | null } | null;
}

/** Why a second target cannot take a backup now, or null. */
export function secondTargetProblem(dir: string): string | null {
  let st;
  try {
    st = statSync(dir);
  } catch {
    return `backup_second_dir ${dir} does not exist (is the USB stick or network share mounted?); TechTemp never creates it`;
  }
  if (!st.isDirectory()) return `backup_second_dir ${dir} is not a directory`;
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    return writeProblem(dir, err);
  }
  return null;
}

/** A write error in a target, said with what to do. */
function writeProblem(dir: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EROFS")
    return `${dir} is read-only here; under systemd add it to the unit (systemctl edit techtemp-server: [Service] ReadWritePaths=${dir})`;
  if (code === "EACCES" || code === "EPERM") return `${dir} is not writable by the server's user (chown techtemp ${dir})`;
  if (code === "ENOSPC") return `${dir} is full`;
  return `${dir}: ${(err as Error).message}`;
}

/** Creates the backups of the database at `source`. */
export function createBackups(deps: {
  source: string;
  records: BackupRecords;
  settings: BackupSettings;
  log: Log;
  now?: () => number;
}) {
  const { source, records, settings, log } = deps;
  const now = deps.now ?? Date.now;
  const totals = { ok: 0, failed: 0 };
  let running: { since: number; trigger: string; done: Promise<BackupRecord> } | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  let nextAt: number | null = null;
  const stopping = new AbortController();

  /**
   * Deletes what rotation does not keep in `dir`; returns the names deleted.
   * Off the event loop and a step at a time (removeGradually): removing a
   * file of hundreds of MB takes the file system a while, and nothing else
   * should wait for it.
   */
  async function rotate(dir: string): Promise<string[]> {
    const files = listBackups(dir);
    const keep = toKeep(files, settings.keep, settings.timeZone);
    const removed: string[] = [];
    for (const f of files) {
      if (keep.has(f.name)) continue;
      try {
        await removeGradually(f.path);
        removed.push(f.name);
      } catch (err) {
        log.warn("cannot remove an old backup", { file: f.path, error: err as Error });
      }
    }
    return removed;
  }

  /** A name not taken yet in the directory (two backups within a second get -2, -3…). */
  function freeName(at: number): string {
    for (let n = 1; ; n++) {
      const name = backupName(at, n);
      if (!existsSync(join(settings.dir, name)) && !existsSync(join(settings.dir, name + PARTIAL))) return name;
    }
  }

  /** Copies the new backup to the second target and rotates there; returns "ok" or the problem. */
  async function toSecond(path: string, name: string): Promise<string> {
    const dir = settings.secondDir!;
    const problem = secondTargetProblem(dir);
    if (problem) return problem;
    try {
      await copyAtomically(path, dir, name, { paced: true });
    } catch (err) {
      return writeProblem(dir, err);
    }
    await rotate(dir);
    return "ok";
  }

  async function backup(trigger: string, started: number): Promise<BackupRecord> {
    const t0 = performance.now();
    const record: Omit<BackupRecord, "id"> = {
      started_at: started,
      finished_at: started,
      trigger,
      file: null,
      size_bytes: null,
      duration_ms: 0,
      integrity: null,
      error: null,
      second_target: null,
    };
    let path: string | null = null;
    /** The copy's thread priority, as the kernel reported it (store/backup.ts). */
    let priority = "";
    /** How the copy went to the card: flushes, their time, the rests between them. */
    let paced = {};
    try {
      if (!existsSync(settings.dir)) {
        mkdirSync(settings.dir, { recursive: true, mode: 0o700 });
        ownLike(settings.dir, join(settings.dir, ".."));
      }
      await removePartials(settings.dir);
      const name = freeName(started);
      const partial = join(settings.dir, name + PARTIAL);
      try {
        const copied = await copyDatabase(source, partial, stopping.signal);
        priority =
          "problem" in copied.priority
            ? `not lowered: ${copied.priority.problem}`
            : `nice ${copied.priority.nice}, I/O ${copied.priority.ioClass}`;
        paced = { flushes: copied.flushes, flush_ms: Math.round(copied.flushMs), rest_ms: Math.round(copied.restMs) };
        record.integrity = copied.integrity;
        if (copied.integrity !== "ok") {
          throw new Error(
            `integrity_check of the copy found: ${copied.integrity} (the database itself may be damaged: run techtemp-server inspect)`,
          );
        }
        chmodSync(partial, 0o600);
        ownLike(partial, settings.dir);
        await fsyncPath(partial);
        renameSync(partial, join(settings.dir, name));
        await fsyncPath(settings.dir);
      } catch (err) {
        await removeGradually(partial).catch(() => {}); // not made yet, or gone
        throw err;
      }
      path = join(settings.dir, name);
      record.file = name;
      record.size_bytes = statSync(path).size;
    } catch (err) {
      const message = (err as NodeJS.ErrnoException).code ? writeProblem(settings.dir, err) : (err as Error).message;
      record.error = message.startsWith("integrity_check") ? message : `backup to ${settings.dir} failed: ${message}`;
    }
    if (path !== null) {
      // The second target first: rotation may remove the new file when a newer one of the same day exists.
      if (settings.secondDir !== null) record.second_target = await toSecond(path, record.file!);
      await rotate(settings.dir);
    }
    record.finished_at = now();
    record.duration_ms = Math.round(performance.now() - t0);
    const id = records.add(record);
    const saved: BackupRecord = { id, ...record };
    if (record.error === null) {
      totals.ok++;
      log.info("backup made", { file: path, bytes: record.size_bytes, ms: record.duration_ms, trigger, priority, ...paced });
    } else {
      totals.failed++;
      log.error("backup failed", { error: record.error, trigger });
    }
    if (record.second_target !== null && record.second_target !== "ok") {
      log.error("backup not copied to the second target", { problem: record.second_target });
    }
    return saved;
  }

  /** Makes a backup now (one at a time: a call during a backup gets that backup). */
  function run(trigger: "schedule" | "manual" | "command"): Promise<BackupRecord> {
    if (running) return running.done;
    const since = now();
    const done = backup(trigger, since).finally(() => {
      running = null;
    });
    running = { since, trigger, done };
    return done;
  }

  function schedule(): void {
    nextAt = nextRun(now(), settings.time, settings.timeZone);
  }

  return {
    run,
    /** The settings in force (dirs resolved). */
    settings,
    /** The backup under way, if any (tests and the page wait on it). */
    get current(): Promise<BackupRecord> | null {
      return running?.done ?? null;
    },
    /** What the pages and /metrics show. */
    status(): BackupStatus {
      let second: BackupStatus["second"] = null;
      if (settings.secondDir !== null) {
        const problem = secondTargetProblem(settings.secondDir);
        const last = records.recent(1)[0];
        const lastProblem = last && last.second_target !== null && last.second_target !== "ok" ? last.second_target : null;
        let warning: string | null = null;
        try {
          if (statSync(settings.secondDir).dev === statSync(join(settings.dir, "..")).dev)
            warning = `${settings.secondDir} is on the same disk as the database: it does not survive the loss of that disk`;
        } catch {}
        second = { dir: settings.secondDir, problem: problem ?? lastProblem, warning };
      }
      return {
        dir: settings.dir,
        time: settings.time,
        nextAt,
        running: running ? { since: running.since, trigger: running.trigger } : null,
        last: records.recent(1)[0] ?? null,
        lastOk: records.lastOk(),
        totals: { ...totals },
        second,
      };
    },
    /**
     * What the owner sees on every page while backups need attention (null: nothing to say): a second target
     * that is missing or failing, or a last attempt that failed. Never silent: the page says what to do.
     */
    warning(): string | null {
      const s = this.status();
      const said = (text: string) => text.replace(/\.$/, "");
      if (s.second?.problem) return `Backups are not reaching the second target: ${said(s.second.problem)}.`;
      if (s.last !== null && s.last.error !== null) return `The last backup failed: ${said(s.last.error)}.`;
      return null;
    },
    /** The backup files, newest first: in the backup directory and in the second target. */
    files(): { primary: BackupFile[]; second: BackupFile[] } {
      return { primary: listBackups(settings.dir), second: settings.secondDir ? listBackups(settings.secondDir) : [] };
    },
    /** The path of the backup `name` in the backup directory (for a download); 404 for anything else. */
    pathOf(name: string): string {
      const path = join(settings.dir, name);
      if (!BACKUP_NAME.test(name) || !existsSync(path)) throw notFound("backup", name);
      return path;
    },
    /** Starts the schedule (a backup missed while the server was off runs CATCH_UP_AFTER_MS after start). */
    start(): void {
      schedule();
      if (settings.time === "off") {
        log.info("scheduled backups off (backup_time = off)");
        return;
      }
      const lastOk = records.lastOk();
      if (nextAt !== null && (lastOk === null || now() - lastOk.finished_at > MISSED_AFTER_MS)) {
        nextAt = Math.min(nextAt, now() + CATCH_UP_AFTER_MS);
      }
      timer = setInterval(() => {
        if (running || nextAt === null || now() < nextAt) return;
        void run("schedule").finally(schedule);
      }, TICK_MS);
      // The schedule alone must not keep the process alive.
      timer.unref?.();
    },
    /** Stops the schedule and ends a backup under way (recorded as interrupted, its partial file removed). */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = null;
      stopping.abort();
      await running?.done.catch(() => {});
    },
  };
}

/** The backups' interface. */
export type Backups = ReturnType<typeof createBackups>;
