// Backup files: their names, listing a directory, which ones rotation keeps,
// when the next scheduled one is due, and writing a file atomically (a copy
// that a power cut or a pulled USB stick leaves either whole or absent).

import { chownSync, readdirSync, statSync } from "node:fs";
import { copyFile, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { localTime } from "../history/zone.ts";
import { DISK_SHARE, FLUSH_BYTES } from "../store/backup.ts";

/** A backup's name: `techtemp-20260601T033000Z.db` (UTC), `-2`… when two fall in the same second. */
export const BACKUP_NAME = /^techtemp-(\d{8}T\d{6}Z)(?:-(\d{1,3}))?\.db$/;
/** What a copy is called until it is checked and complete. */
export const PARTIAL = ".partial";

/** A backup file in a directory. */
export interface BackupFile {
  name: string;
  path: string;
  /** When it was made (from its name), epoch ms. */
  at: number;
  size: number;
}

/** The file name of a backup made at `at`. */
export function backupName(at: number, n = 1): string {
  const stamp = new Date(at)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `techtemp-${stamp}${n > 1 ? `-${n}` : ""}.db`;
}

/** When the backup named `name` was made, or null when it is not a backup's name. */
export function backupTime(name: string): number | null {
  const m = BACKUP_NAME.exec(name);
  if (!m) return null;
  const s = m[1]!;
  return Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8), +s.slice(9, 11), +s.slice(11, 13), +s.slice(13, 15));
}

/** The backups in `dir`, newest first (none when it does not exist). */
export function listBackups(dir: string): BackupFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: BackupFile[] = [];
  for (const name of names) {
    const at = backupTime(name);
    if (at === null) continue;
    try {
      out.push({ name, path: join(dir, name), at, size: statSync(join(dir, name)).size });
    } catch {
      // Deleted meanwhile.
    }
  }
  // Within a second, -2 is newer than no suffix.
  const seq = (name: string) => Number(BACKUP_NAME.exec(name)![2] ?? 1);
  return out.sort((a, b) => b.at - a.at || seq(b.name) - seq(a.name));
}

/** How many backups rotation keeps. */
export interface Keep {
  daily: number;
  weekly: number;
  monthly: number;
}

/** A time's local calendar in `timeZone`: day, ISO week and month keys, and the minutes since midnight. */
export function calendar(at: number, timeZone: string) {
  const { date: day, minutes } = localTime(at, timeZone);
  const [year, month, dom] = day.split("-").map(Number) as [number, number, number];
  // ISO week: the week (Monday first) that holds this week's Thursday; numbered within that Thursday's year.
  const date = new Date(Date.UTC(year, month - 1, dom));
  date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7) + 3);
  const weekYear = date.getUTCFullYear();
  const week = 1 + Math.floor((date.getTime() - Date.UTC(weekYear, 0, 1)) / 604_800_000);
  return {
    day,
    week: `${weekYear}-W${String(week).padStart(2, "0")}`,
    month: day.slice(0, 7),
    minutes,
  };
}

/**
 * Which backups to keep (grandfather-father-son): the newest of each of the
 * last `daily` days that have a backup, of each of the last `weekly` ISO
 * weeks and of each of the last `monthly` months, in the home's time zone.
 * The newest backup is always kept. Returns the names to keep.
 */
export function toKeep(files: Pick<BackupFile, "name" | "at">[], keep: Keep, timeZone: string): Set<string> {
  const sorted = [...files].sort((a, b) => b.at - a.at);
  const kept = new Set<string>();
  if (sorted[0]) kept.add(sorted[0].name);
  for (const [period, count] of [
    ["day", keep.daily],
    ["week", keep.weekly],
    ["month", keep.monthly],
  ] as const) {
    const seen = new Set<string>();
    for (const f of sorted) {
      const key = calendar(f.at, timeZone)[period];
      if (seen.has(key)) continue;
      if (seen.size >= count) break;
      seen.add(key);
      kept.add(f.name);
    }
  }
  return kept;
}

/**
 * When the next scheduled backup is due after `now`: the next `HH:MM` in
 * `timeZone` (a time skipped by a daylight-saving jump runs at the first
 * minute after it). Null for `off`.
 */
export function nextRun(now: number, time: string, timeZone: string): number | null {
  if (time === "off") return null;
  const [h, m] = time.split(":").map(Number);
  const target = h! * 60 + m!;
  // Walk forward minute by minute from the next whole minute: at most a day and an hour of steps.
  let t = Math.floor(now / 60_000) * 60_000 + 60_000;
  const end = t + 25 * 3_600_000;
  // Jump close first: minutes until the target in local time, then check minute by minute.
  const skip = (target - calendar(t, timeZone).minutes + 1440) % 1440;
  t += Math.max(0, skip - 90) * 60_000;
  for (; t < end; t += 60_000) {
    const minutes = calendar(t, timeZone).minutes;
    if (minutes === target) return t;
    // Skipped by a DST jump: the clock went from before the target to after it.
    const before = calendar(t - 60_000, timeZone).minutes;
    if (before < target && minutes > target && minutes - before > 1) return t;
  }
  return t;
}

/** How much of a file `removeGradually` frees per step (bytes), and the rest after each step (ms). */
export const REMOVE_STEP_BYTES = 8 * 1024 * 1024;
const REMOVE_REST_MS = 10;

/**
 * Deletes a large file a step at a time: cut REMOVE_STEP_BYTES off its end,
 * rest, again, then unlink what is left. Unlinking a backup of hundreds of MB
 * at once frees all its blocks in one file-system transaction, and every
 * sync of the database's -wal file meanwhile waits for it (bench/backup.ts:
 * all acks held ~110 ms when rotation removed the day's previous backup).
 */
export async function removeGradually(path: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    let size = (await handle.stat()).size;
    while (size > REMOVE_STEP_BYTES) {
      size -= REMOVE_STEP_BYTES;
      await handle.truncate(size);
      await Bun.sleep(REMOVE_REST_MS);
    }
  } finally {
    await handle.close();
  }
  await unlink(path);
}

/** fsyncs a file or directory, so a write or a rename survives a power cut. */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Copies `from` into the new file `to` (which must not exist) a step at a
 * time: FLUSH_BYTES written and sent to the card, then a rest as long as that
 * took times (1 / DISK_SHARE - 1), the pace of the backup's own copy
 * (store/backup.ts). A second target on the card the database is on (the
 * backups page warns about it) then never holds the server's syncs for more
 * than one step, where a plain copy wrote the whole file in one go. Returns
 * how many steps it took.
 */
export async function copyPaced(from: string, to: string): Promise<number> {
  const source = await open(from, "r");
  try {
    const target = await open(to, "wx");
    try {
      const chunk = Buffer.allocUnsafe(FLUSH_BYTES);
      let steps = 0;
      for (;;) {
        const { bytesRead } = await source.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) return steps;
        for (let at = 0; at < bytesRead;) at += (await target.write(chunk, at, bytesRead - at)).bytesWritten;
        const started = performance.now();
        await target.datasync();
        steps++;
        await Bun.sleep((performance.now() - started) * (1 / DISK_SHARE - 1));
      }
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/**
 * Copies `from` to `dir/name` atomically, off the event loop: into
 * `name.partial`, fsync'd, then renamed, and the directory fsync'd. A crash or
 * a pulled USB stick leaves no file or the whole one under the final name.
 * `paced`: with copyPaced, for a copy made while the server runs (the second
 * target); a restore, with the server stopped, copies at full speed.
 */
export async function copyAtomically(
  from: string,
  dir: string,
  name: string,
  options: { paced?: boolean } = {},
): Promise<string> {
  const partial = join(dir, name + PARTIAL);
  const final = join(dir, name);
  try {
    if (options.paced) await copyPaced(from, partial);
    else await copyFile(from, partial);
    await fsyncPath(partial);
    await rename(partial, final);
  } catch (err) {
    // A step at a time: a half-made copy may be hundreds of MB (removeGradually).
    await removeGradually(partial).catch(() => {});
    throw err;
  }
  await fsyncPath(dir);
  return final;
}

/**
 * Gives `path` the owner of `reference` when running as root: an operator's
 * `sudo techtemp-server backup|restore` must leave files the service's own
 * user can read, rotate and open.
 */
export function ownLike(path: string, reference: string): void {
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = statSync(reference);
  chownSync(path, uid, gid);
}

/** Removes copies a crash left half-made in `dir` (a step at a time: one may be hundreds of MB). */
export async function removePartials(dir: string): Promise<void> {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.endsWith(PARTIAL) && BACKUP_NAME.test(name.slice(0, -PARTIAL.length))) {
      await removeGradually(join(dir, name)).catch(() => {});
    }
  }
}
