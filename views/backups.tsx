/** @jsxImportSource @kitajs/html */
// The owner's backups page: when the next one runs, what the last one did (a
// failure, or a second target that is missing, in red), "Back up now", the
// backup files (download) in the backup directory and on the second target,
// and the recent attempts with their size, duration and check.

import type { BackupRecord } from "../lib/server/store/backup.ts";
import { Notice } from "./account.tsx";
import { formAttrs } from "./devices.tsx";
import { Layout } from "./layout.tsx";
import { Csrf, esc, fmtTime, type Shell } from "./parts.tsx";

/** A backup file as listed. */
export interface BackupFileRow {
  name: string;
  at: number;
  size: number;
}

/** An attempt as listed (the store's record; when it finished is not shown). */
export type BackupAttemptRow = Omit<BackupRecord, "finished_at">;

/** What the page shows. */
export interface BackupsPageData {
  shell: Shell;
  dir: string;
  time: string;
  nextAt: number | null;
  running: { since: number; trigger: string } | null;
  lastOk: BackupAttemptRow | null;
  last: BackupAttemptRow | null;
  second: { dir: string; problem: string | null; warning: string | null } | null;
  files: BackupFileRow[];
  secondFiles: BackupFileRow[];
  attempts: BackupAttemptRow[];
  /** The restore command as typed on this machine. */
  command: string;
  notice?: string;
}

const mb = (bytes: number | null) => (bytes === null ? "" : `${(bytes / 1e6).toFixed(1)} MB`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function Files({ files, download, shell }: { files: BackupFileRow[]; download: boolean; shell: Shell }): JSX.Element {
  if (files.length === 0) return <p class="muted">None yet.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>made</th>
          <th>size</th>
          <th>file</th>
        </tr>
      </thead>
      <tbody>
        {files.map((f) => (
          <tr>
            <td>{esc(fmtTime(f.at, shell.now, shell.timeZone))}</td>
            <td>{esc(mb(f.size))}</td>
            <td>
              {download ? (
                <a href={`/backups/files/${f.name}`} download="">
                  {esc(f.name)}
                </a>
              ) : (
                <code>{esc(f.name)}</code>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The status block; while a backup runs it asks again every 2 s (htmx) until it is done. */
function Status(props: BackupsPageData): JSX.Element {
  const { shell, running, last, lastOk, second } = props;
  const poll = running
    ? { "hx-get": "/backups", "hx-trigger": "every 2s", "hx-select": "#backup-status", "hx-swap": "outerHTML" }
    : {};
  return (
    <section class="panel" id="backup-status" {...poll}>
      {running ? (
        <p role="status">Backing up now (since {esc(fmtTime(running.since, shell.now, shell.timeZone))})…</p>
      ) : last && last.error !== null ? (
        <p class="error" role="alert">
          The last backup failed ({esc(fmtTime(last.started_at, shell.now, shell.timeZone))}): {esc(last.error)}
        </p>
      ) : (
        ""
      )}
      {second && second.problem ? (
        <p class="error" role="alert" id="second-target-problem">
          Second target not written: {esc(second.problem)}
        </p>
      ) : (
        ""
      )}
      {second && second.warning ? <p class="muted">{esc(second.warning)}</p> : ""}
      <p>
        {lastOk ? (
          <>
            Newest good backup: {esc(fmtTime(lastOk.started_at, shell.now, shell.timeZone))}, {esc(mb(lastOk.size_bytes))}, made
            and checked in {esc(seconds(lastOk.duration_ms))}.
          </>
        ) : (
          <>No backup yet.</>
        )}{" "}
        {props.time === "off" ? (
          <>Scheduled backups are off (backup_time = off).</>
        ) : props.nextAt !== null ? (
          <>
            Next: {esc(fmtTime(props.nextAt, shell.now, shell.timeZone))} (every day at {esc(props.time)}).
          </>
        ) : (
          ""
        )}
      </p>
      {shell.canWrite ? (
        <form {...formAttrs("/backups")} class="inline">
          <Csrf shell={shell} />
          <button type="submit" disabled={running !== null}>
            Back up now
          </button>
        </form>
      ) : (
        ""
      )}
    </section>
  );
}

/** The whole page. */
export function BackupsPage(props: BackupsPageData): JSX.Element {
  const { shell } = props;
  return (
    <Layout shell={shell} title="Backups" section="backups">
      <main id="content">
        <h1>Backups</h1>
        <Notice text={props.notice} />
        <Status {...props} />
        <h2>In {esc(props.dir)}</h2>
        <Files files={props.files} download={true} shell={shell} />
        {props.second ? (
          <>
            <h2>On the second target, {esc(props.second.dir)}</h2>
            <Files files={props.secondFiles} download={false} shell={shell} />
          </>
        ) : (
          <p class="muted">
            No second target: set <code>backup_second_dir</code> to a USB stick or a network share, so a dead SD card does not
            take the backups with it.
          </p>
        )}
        <p class="muted">
          Kept: the newest backup of each of the last 7 days, 4 weeks and 12 months. To restore one, stop the server and run{" "}
          <code>{esc(props.command)} restore FILE</code>: the current database is kept aside.
        </p>
        <h2>Recent attempts</h2>
        <table>
          <thead>
            <tr>
              <th>started</th>
              <th>by</th>
              <th>size</th>
              <th>took</th>
              <th>result</th>
            </tr>
          </thead>
          <tbody>
            {props.attempts.map((a) => (
              <tr class={a.error !== null ? "error" : ""}>
                <td>{esc(fmtTime(a.started_at, shell.now, shell.timeZone))}</td>
                <td>{esc(a.trigger)}</td>
                <td>{esc(mb(a.size_bytes))}</td>
                <td>{esc(seconds(a.duration_ms))}</td>
                <td>
                  {a.error !== null ? esc(a.error) : `checked ${esc(a.integrity ?? "")}`}
                  {a.second_target !== null ? ` · second target: ${esc(a.second_target)}` : ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </main>
    </Layout>
  );
}
