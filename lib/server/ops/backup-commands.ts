// Operator commands for backups, with the server's own settings:
//
//   backup          a backup now, beside a running server or not (the same
//                   online copy, check, second target and rotation as the
//                   schedule); prints the new file on stdout
//   restore FILE    with the server stopped: puts FILE in place of the
//                   database (checked first; the current one kept aside)
//
// Exit codes: 0 done, 1 failed or refused (nothing changed), 2 bad usage.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { createLog } from "../../shared/log.ts";
import { backupSettings, createBackups } from "../backup/backups.ts";
import { restoreBackup, RestoreRefused } from "../backup/restore.ts";
import { commandName } from "../backup/startup.ts";
import type { Config } from "../config.ts";
import { DB_FILE, openDatabase } from "../store/db.ts";
import { createBackupRecords } from "../store/backup.ts";
import { parseCommandArgs } from "./args.ts";

/** The commands this module runs. */
export const BACKUP_COMMANDS = ["backup", "restore"] as const;

const USAGE = {
  backup: "usage: techtemp-server backup",
  restore: "usage: techtemp-server restore FILE   (with the server stopped: sudo systemctl stop techtemp-server)",
};

/** Runs `backup` or `restore` with the server's config; returns the exit code. */
export async function runBackupCommand(
  command: (typeof BACKUP_COMMANDS)[number],
  args: string[],
  config: Config,
  options: { now?: () => number } = {},
): Promise<number> {
  const now = options.now ?? Date.now;
  const parsed = parseCommandArgs(args, {}, command === "restore" ? 1 : 0);
  if (parsed.unexpected !== undefined) {
    console.error(`${command}: unexpected argument ${JSON.stringify(parsed.unexpected)}\n${USAGE[command]}`);
    return 2;
  }
  const dbPath = join(config.data_dir, DB_FILE);
  if (command === "restore") {
    const file = parsed.positionals[0];
    if (file === undefined || file === "") {
      console.error(`restore: which backup? name its file\n${USAGE.restore}\nbackups are in ${backupSettings(config).dir}`);
      return 2;
    }
    try {
      const done = await restoreBackup(file, dbPath, now());
      console.log(done.database);
      console.error(
        `restored ${file} as ${done.database}` +
          (done.keptAside.length ? `; the previous database is kept as ${done.keptAside.join(" and ")}` : "") +
          (done.schemaVersion < done.knownVersion
            ? `; its schema (${done.schemaVersion}) is upgraded to ${done.knownVersion} when the server starts`
            : "") +
          `. Start the server: sudo systemctl start techtemp-server`,
      );
      return 0;
    } catch (err) {
      if (err instanceof RestoreRefused) {
        console.error(`restore: ${err.message}`);
        return 1;
      }
      throw err;
    }
  }

  // backup: the database must exist already (a backup of nothing helps nobody).
  if (!existsSync(dbPath)) {
    console.error(`backup: there is no database at ${dbPath} yet; is data_dir (${config.data_dir}) right?`);
    return 1;
  }
  let db;
  try {
    db = openDatabase(dbPath);
  } catch (err) {
    console.error(`backup: ${(err as Error).message}; is data_dir (${config.data_dir}) right?`);
    return 1;
  }
  try {
    const backups = createBackups({
      source: dbPath,
      records: createBackupRecords(db),
      settings: backupSettings(config),
      log: createLog({ level: "warn", sink: (line) => console.error(line) }),
      now,
    });
    const record = await backups.run("command");
    if (record.error !== null) {
      console.error(`backup: ${record.error}`);
      return 1;
    }
    console.log(join(backups.settings.dir, record.file!));
    const mb = ((record.size_bytes ?? 0) / 1e6).toFixed(1);
    console.error(`backup made and checked: ${mb} MB in ${(record.duration_ms / 1000).toFixed(1)} s`);
    if (record.second_target !== null && record.second_target !== "ok") {
      console.error(`backup: not copied to the second target: ${record.second_target}`);
      return 1;
    }
    if (record.second_target === "ok") console.error(`copied to ${backups.settings.secondDir}`);
    console.error(`restore it with the server stopped: ${commandName()} restore FILE`);
    return 0;
  } finally {
    db.close();
  }
}
