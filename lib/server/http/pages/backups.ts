// The owner's backups: the page (/backups: status, files, attempts, "Back
// up now"), the download of a backup file, and the API (GET/POST
// /api/v1/backups). A backup file holds the whole database, accounts and
// token hashes included: every route here is the owner's (auth/policy.ts).
// "Back up now" starts the backup and answers at once; the page asks again
// until it is done (a backup of years of readings takes a while).

import { Elysia, t } from "elysia";
import { BackupsPage } from "../../../../views/backups.tsx";
import type { Backups } from "../../backup/backups.ts";
import { commandName } from "../../backup/startup.ts";
import type { BackupRecords } from "../../store/store.ts";
import { iso } from "../params.ts";
import { isHtmx, redirect, type Respond } from "./page.ts";
import type { Shell } from "../../../../views/parts.tsx";

const NOTICES: Record<string, string> = { started: "Backing up now: this page shows when it is done." };

/** Creates the backups page, the download and the API. */
export function createBackupPages(deps: { backups: Backups; records: Pick<BackupRecords, "recent">; respond: Respond }) {
  const { backups, respond } = deps;

  const page = (shell: Shell, notice?: string) => {
    const status = backups.status();
    const files = backups.files();
    return BackupsPage({
      shell,
      ...status,
      files: files.primary,
      secondFiles: files.second,
      attempts: deps.records.recent(20),
      command: commandName(),
      notice,
    });
  };

  /** Starts a backup in the background (its failure is recorded and logged by the backups themselves). */
  const start = () => void backups.run("manual").catch(() => {});

  return new Elysia()
    .get("/backups", ({ request, query }) => respond(request, (shell) => page(shell, NOTICES[query.done ?? ""])), {
      query: t.Object({ done: t.Optional(t.String()) }),
    })
    .post("/backups", ({ request }) =>
      respond(request, (shell) => {
        start();
        return isHtmx(request) ? page(shell, NOTICES.started) : redirect("/backups?done=started");
      }),
    )
    .get(
      "/backups/files/:name",
      ({ params }) => {
        const path = backups.pathOf(params.name);
        return new Response(Bun.file(path), {
          headers: {
            "content-type": "application/vnd.sqlite3",
            "content-disposition": `attachment; filename="${params.name}"`,
            "cache-control": "no-store",
          },
        });
      },
      { params: t.Object({ name: t.String({ maxLength: 100 }) }) },
    )
    .get("/api/v1/backups", () => {
      const s = backups.status();
      const record = (r: (typeof s)["last"]) =>
        r === null ? null : { ...r, started_at: iso(r.started_at), finished_at: iso(r.finished_at) };
      const file = (f: { name: string; at: number; size: number }) => ({ name: f.name, at: iso(f.at), size_bytes: f.size });
      const files = backups.files();
      return {
        data: {
          dir: s.dir,
          time: s.time,
          next_at: iso(s.nextAt),
          running: s.running ? { since: iso(s.running.since), trigger: s.running.trigger } : null,
          last: record(s.last),
          last_ok: record(s.lastOk),
          second_target: s.second,
          files: files.primary.map(file),
          second_files: files.second.map(file),
        },
      };
    })
    .post("/api/v1/backups", ({ set }) => {
      start();
      set.status = 202;
      const running = backups.status().running;
      return {
        data: { running: running ? { since: iso(running.since), trigger: running.trigger } : null },
        message: "backup started",
      };
    });
}
