// Restoring a backup (`techtemp-server restore FILE`), with the server
// stopped: the file must pass integrity_check, be a TechTemp database and not
// come from a newer schema (an older one is upgraded by the migrations at the
// next start). The current database, with its -wal, is renamed aside, never
// deleted; the backup is copied in atomically.

import { existsSync, renameSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { checkFile, inUseBy } from "../store/backup.ts";
import { copyAtomically, ownLike } from "./files.ts";

/** A restore that was refused; the message says why and what to do. Nothing was changed. */
export class RestoreRefused extends Error {}

/** What a restore did. */
export interface Restored {
  /** The database file now in place. */
  database: string;
  /** Where the previous database (and its -wal) went; empty when there was none. */
  keptAside: string[];
  /** The restored file's schema, and this TechTemp's (migrations run at the next start when older). */
  schemaVersion: number;
  knownVersion: number;
}

/** `techtemp.db.before-restore-20260601T101500Z` */
const asideName = (db: string, at: number) =>
  `${db}.before-restore-${new Date(at)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}`;

/**
 * Restores `file` as the database at `dbPath`. Throws RestoreRefused (nothing
 * changed) when the file is missing, not a database, damaged, not TechTemp's,
 * from a newer schema, or when a server has the database open.
 */
export async function restoreBackup(file: string, dbPath: string, now: number): Promise<Restored> {
  const source = resolve(file);
  let size: number;
  try {
    const st = statSync(source);
    if (!st.isFile()) throw new RestoreRefused(`${source} is not a file`);
    size = st.size;
  } catch (err) {
    if (err instanceof RestoreRefused) throw err;
    throw new RestoreRefused(
      `${source}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`,
    );
  }
  if (source === resolve(dbPath)) throw new RestoreRefused(`${source} is the database itself: name a backup`);
  if (size === 0) throw new RestoreRefused(`${source} is empty: it is not a backup`);

  const check = checkFile(source, "full");
  if (check.problem !== null) {
    if (/not a database|encrypted|unable to open/i.test(check.problem))
      throw new RestoreRefused(`${source} is not a SQLite database (${check.problem}); nothing was changed`);
    throw new RestoreRefused(
      `${source} fails the integrity check (${check.problem.slice(0, 300)}); nothing was changed: restore an older backup`,
    );
  }
  if (!check.techtemp) throw new RestoreRefused(`${source} is not a TechTemp database (it has no readings and devices tables)`);
  if (check.schemaVersion > check.knownVersion) {
    throw new RestoreRefused(
      `${source} comes from a newer TechTemp (database schema ${check.schemaVersion}; this one knows up to ${check.knownVersion}): ` +
        `install that version or newer, then restore`,
    );
  }
  const holder = existsSync(dbPath) ? inUseBy(dbPath) : null;
  if (holder !== null) {
    throw new RestoreRefused(
      `the database ${dbPath} is in use (${holder}): stop the server first (sudo systemctl stop techtemp-server), then restore`,
    );
  }

  const keptAside: string[] = [];
  const moved: string[] = [];
  const aside = asideName(dbPath, now);
  for (const suffix of ["", "-wal", "-shm"]) {
    if (!existsSync(dbPath + suffix)) continue;
    // The -wal goes with it under the matching name, so the set-aside database opens with every commit it had.
    renameSync(dbPath + suffix, aside + suffix);
    moved.push(suffix);
    if (suffix !== "-shm") keptAside.push(aside + suffix);
  }
  const dir = dirname(resolve(dbPath));
  try {
    await copyAtomically(source, dir, basename(dbPath));
  } catch (err) {
    // Put the previous database back as it was: a failed restore changes nothing.
    for (const suffix of moved) renameSync(aside + suffix, dbPath + suffix);
    throw new RestoreRefused(`cannot copy ${source} to ${dir} (${(err as Error).message}); the database was left as it was`);
  }
  ownLike(dbPath, dir);
  return { database: dbPath, keptAside, schemaVersion: check.schemaVersion, knownVersion: check.knownVersion };
}
