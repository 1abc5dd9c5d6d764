// Notification channels (ntfy, webhook, e-mail) and the outbox of
// notifications to them, like the sensor's outbox: a notification is
// committed before it is sent and marked sent (or failed, after its last
// attempt) only afterwards, so a restart neither loses one nor sends one that
// was marked sent. An incident's notifications reach a channel in order.

import type { Database } from "bun:sqlite";
import { DomainError, notFound } from "../../shared/errors.ts";

/** Named parameters of a statement ($name in the SQL). */
type Params = Record<string, string | number | null>;

/** A channel as stored; `config` is JSON holding its secrets. */
export interface ChannelRow {
  id: number;
  name: string;
  kind: "ntfy" | "webhook" | "email";
  config: string;
  min_severity: string;
  enabled: number;
  created_at: number;
  last_ok_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
}

/** A notification to queue. */
export interface NewNotification {
  channel_id: number;
  incident_id: number | null;
  event: "opened" | "repeat" | "resolved" | "test" | "digest";
  /** Unique per notification: the same event queued twice is stored once. */
  dedup: string;
  severity: string;
  payload: string;
  next_at: number;
  max_attempts: number;
}

/** A notification as stored. */
export interface OutboxRow extends NewNotification {
  id: number;
  created_at: number;
  attempts: number;
  state: "pending" | "sent" | "failed" | "skipped";
  sent_at: number | null;
  last_error: string | null;
}

/** A notification with its channel, as the sender needs it. */
export interface OutboxWithChannel extends OutboxRow {
  channel_name: string;
  channel_kind: ChannelRow["kind"];
  channel_config: string;
  channel_enabled: number;
}

/** The message a full outbox gives a notification it could not keep. */
export const OUTBOX_FULL = "not sent: the outbox is full (alert_outbox_max)";

/** Creates the channels and outbox over an open database. */
export function createAlertOutbox(db: Database, deps: { now: () => number }) {
  const q = {
    channels: db.query<ChannelRow, []>("SELECT * FROM alert_channels ORDER BY name COLLATE NOCASE"),
    channel: db.query<ChannelRow, [number]>("SELECT * FROM alert_channels WHERE id = ?"),
    insertChannel: db.query<ChannelRow, [string, string, string, string, number, number]>(
      `INSERT INTO alert_channels (name, kind, config, min_severity, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *`,
    ),
    updateChannel: db.query<ChannelRow, [string, string, string, number, number]>(
      "UPDATE alert_channels SET name = ?, config = ?, min_severity = ?, enabled = ? WHERE id = ? RETURNING *",
    ),
    deleteChannel: db.query<null, [number]>("DELETE FROM alert_channels WHERE id = ?"),
    channelOk: db.query<null, [number, number]>("UPDATE alert_channels SET last_ok_at = ? WHERE id = ?"),
    channelError: db.query<null, [string, number, number]>(
      "UPDATE alert_channels SET last_error = ?, last_error_at = ? WHERE id = ?",
    ),

    pending: db.query<{ n: number }, []>("SELECT count(*) AS n FROM alert_outbox WHERE state = 'pending'"),
    insert: db.query<{ id: number }, Params>(
      `INSERT OR IGNORE INTO alert_outbox (channel_id, incident_id, event, dedup, severity, payload, created_at, next_at,
         max_attempts, state, last_error)
       VALUES ($channel_id, $incident_id, $event, $dedup, $severity, $payload, $created_at, $next_at, $max_attempts, $state, $last_error)
       RETURNING id`,
    ),
    // Per channel not busy, its oldest notification that is due and has nothing older of the same incident
    // pending on the channel ("resolved" never overtakes "opened"; one incident held by quiet hours or waiting
    // for a retry does not hold back another). At most one row per channel: a backlog of thousands (a
    // receiver that hangs) is not read again at every turn.
    heads: db.query<OutboxWithChannel, { $now: number; $busy: string }>(
      `SELECT o.*, c.name AS channel_name, c.kind AS channel_kind, c.config AS channel_config, c.enabled AS channel_enabled
       FROM alert_outbox o JOIN alert_channels c ON c.id = o.channel_id
       WHERE o.id IN (
         SELECT min(x.id) FROM alert_outbox x
         WHERE x.state = 'pending' AND x.next_at <= $now
           AND x.channel_id NOT IN (SELECT value FROM json_each($busy))
           AND NOT EXISTS (
             SELECT 1 FROM alert_outbox p
             WHERE p.state = 'pending' AND p.channel_id = x.channel_id AND p.incident_id = x.incident_id AND p.id < x.id)
         GROUP BY x.channel_id)
       ORDER BY o.id`,
    ),
    nextDue: db.query<{ at: number | null }, [number]>(
      "SELECT min(next_at) AS at FROM alert_outbox WHERE state = 'pending' AND next_at > ?",
    ),
    one: db.query<OutboxRow, [number]>("SELECT * FROM alert_outbox WHERE id = ?"),
    sent: db.query<null, [number, number]>(
      "UPDATE alert_outbox SET state = 'sent', attempts = attempts + 1, sent_at = ? WHERE id = ?",
    ),
    retry: db.query<null, [number, string, number]>(
      "UPDATE alert_outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
    ),
    fail: db.query<null, [string, number]>(
      "UPDATE alert_outbox SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
    ),
    skip: db.query<null, [string, number]>("UPDATE alert_outbox SET state = 'skipped', last_error = ? WHERE id = ?"),
    hold: db.query<null, [number, number]>("UPDATE alert_outbox SET next_at = ? WHERE id = ?"),
    byIncident: db.query<OutboxRow & { channel_name: string }, [number]>(
      `SELECT o.*, c.name AS channel_name FROM alert_outbox o JOIN alert_channels c ON c.id = o.channel_id
       WHERE o.incident_id = ? ORDER BY o.id`,
    ),
    prune: db.query<null, [number]>("DELETE FROM alert_outbox WHERE state != 'pending' AND created_at < ?"),
  };

  /** The channel's name is taken: a conflict naming the field. */
  const taken = (name: string) => new DomainError("conflict", `a channel named ${JSON.stringify(name)} exists already`, "name");

  function unique<T>(name: string, write: () => T): T {
    try {
      return write();
    } catch (err) {
      if (String((err as Error).message).includes("UNIQUE constraint failed: alert_channels.name")) throw taken(name);
      throw err;
    }
  }

  return {
    // ---- channels ----
    /** Every channel, by name. */
    channels: (): ChannelRow[] => q.channels.all(),
    /** One channel; not_found otherwise. */
    channel(id: number): ChannelRow {
      const row = q.channel.get(id);
      if (!row) throw notFound("channel", String(id));
      return row;
    },
    /** Stores a channel; a name taken is a conflict naming `name`. */
    createChannel: (c: { name: string; kind: ChannelRow["kind"]; config: string; min_severity: string; enabled: boolean }) =>
      unique(c.name, () => q.insertChannel.get(c.name, c.kind, c.config, c.min_severity, c.enabled ? 1 : 0, deps.now())!),
    /** Changes a channel (its kind stays). */
    updateChannel: (id: number, c: { name: string; config: string; min_severity: string; enabled: boolean }) =>
      unique(c.name, () => q.updateChannel.get(c.name, c.config, c.min_severity, c.enabled ? 1 : 0, id)!),
    /** Deletes a channel with its queued notifications. */
    deleteChannel: (id: number): void => void q.deleteChannel.run(id),
    /** Records that a channel delivered (`error` null) or failed, and when. */
    channelResult(id: number, at: number, error: string | null): void {
      if (error === null) q.channelOk.run(at, id);
      else q.channelError.run(error, at, id);
    },

    // ---- outbox ----
    /** Notifications waiting to be sent. */
    pendingCount: (): number => q.pending.get()!.n,
    /**
     * Queues a notification (call inside the transition's transaction); the
     * same dedup key again is ignored. Beyond `maxPending` waiting ones it is
     * stored as failed instead (visible, never sent). Returns its id, or null
     * when it was queued already.
     */
    enqueue(row: NewNotification, maxPending: number): number | null {
      const full = q.pending.get()!.n >= maxPending;
      const stored = q.insert.get({
        ...row,
        created_at: deps.now(),
        state: full ? "failed" : "pending",
        last_error: full ? OUTBOX_FULL : null,
      });
      return stored?.id ?? null;
    },
    /**
     * The notifications to send now: for each channel not in `busy`, its oldest one due at `now` that is the
     * oldest pending of its incident on the channel; oldest first.
     */
    heads: (now: number, busy: number[]): OutboxWithChannel[] => q.heads.all({ $now: now, $busy: JSON.stringify(busy) }),
    /** When the next notification not yet due becomes due, or null. */
    nextDue: (now: number): number | null => q.nextDue.get(now)?.at ?? null,
    /** One notification, or null. */
    notification: (id: number): OutboxRow | null => q.one.get(id),
    /** Marks a notification sent. */
    markSent: (id: number, at: number): void => void q.sent.run(at, id),
    /** Counts a failed attempt; the next one at `nextAt`. */
    markRetry: (id: number, nextAt: number, error: string): void => void q.retry.run(nextAt, error, id),
    /** Gives a notification up after its last attempt. */
    markFailed: (id: number, error: string): void => void q.fail.run(error, id),
    /** Drops a notification that has nothing left to say (its incident resolved meanwhile, its channel turned off). */
    markSkipped: (id: number, reason: string): void => void q.skip.run(reason, id),
    /** Holds a notification until `at` (quiet hours); no attempt is counted. */
    hold: (id: number, at: number): void => void q.hold.run(at, id),
    /** An incident's notifications, oldest first, with their channel's name. */
    ofIncident: (incidentId: number) => q.byIncident.all(incidentId),
    /** Notifications newest first, filtered by state. */
    list(f: { state?: OutboxRow["state"]; limit: number }): (OutboxRow & { channel_name: string })[] {
      const where = f.state ? "WHERE o.state = ?" : "";
      const sql = `SELECT o.*, c.name AS channel_name FROM alert_outbox o JOIN alert_channels c ON c.id = o.channel_id
        ${where} ORDER BY o.id DESC LIMIT ?`;
      const query = db.query<OutboxRow & { channel_name: string }, (string | number)[]>(sql);
      return f.state ? query.all(f.state, f.limit) : query.all(f.limit);
    },
    /** Deletes notifications done (sent, failed, skipped) before `ts`. */
    prune: (ts: number): void => void q.prune.run(ts),
  };
}

/** The channels and outbox interface. */
export type AlertOutboxStore = ReturnType<typeof createAlertOutbox>;
