// The start-up check: `PRAGMA quick_check` on the database before the server
// opens it. A damaged database stops the server with one message that names
// the newest good backup and the command that restores it; the damaged file
// is left as it is (restore keeps it aside).

import { existsSync } from "node:fs";
import { checkFile } from "../store/backup.ts";
import { listBackups, type BackupFile } from "./files.ts";

/** At most this many backups are checked, newest first, when looking for a good one. */
const MAX_CHECKED = 5;

/** The database cannot be used; the message is the one line the server prints. */
export class DamagedDatabase extends Error {}

/** The newest backup in `dirs` that passes quick_check, or null (at most MAX_CHECKED looked at). */
export function newestGoodBackup(dirs: string[]): BackupFile | null {
  const all = dirs.flatMap(listBackups).sort((a, b) => b.at - a.at);
  for (const file of all.slice(0, MAX_CHECKED)) {
    const check = checkFile(file.path, "quick");
    if (check.problem === null && check.techtemp) return file;
  }
  return null;
}

/** How the restore command is typed here: the installed executable, or `bun server.ts` from a checkout. */
export function commandName(): string {
  return /techtemp-server$/.test(process.execPath) ? "techtemp-server" : "bun server.ts";
}

/**
 * Throws DamagedDatabase when the database at `path` fails quick_check (or
 * cannot be read as a database at all). A missing file is a first start.
 * `backupDirs`: where to look for the newest good backup; `now` for its age.
 */
export function checkAtStart(path: string, backupDirs: string[], now: number): void {
  if (!existsSync(path)) return;
  const check = checkFile(path, "quick", { writable: true });
  if (check.problem === null) return;
  const good = newestGoodBackup(backupDirs);
  const what = `the database ${path} is damaged (quick_check: ${check.problem.slice(0, 300)}); nothing was changed.`;
  if (good === null) {
    throw new DamagedDatabase(
      `${what} No good backup was found in ${backupDirs.join(" or ")}. Move the damaged file aside ` +
        `(mv ${path} ${path}.damaged) to start with an empty database, and keep it: its readings may still be recovered with sqlite3's .recover.`,
    );
  }
  const hours = Math.max(0, Math.round((now - good.at) / 3_600_000));
  throw new DamagedDatabase(
    `${what} The newest good backup is ${good.path} (${new Date(good.at).toISOString()}, ${hours} h old). ` +
      `Restore it with the server stopped: ${commandName()} restore ${good.path} (the damaged database is kept aside).`,
  );
}
