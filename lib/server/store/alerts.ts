// Alerts in SQLite (lib/server/alerts/ holds the logic): rules with their
// scope, incidents, and how far each device's readings were evaluated; the
// notification channels and the outbox are alerts-outbox.ts. An incident's
// transition and the notifications it causes are committed in one
// transaction, so a crash never keeps one without the other.

import type { Database } from "bun:sqlite";
import { invalid, notFound } from "../../shared/errors.ts";
import { createAlertOutbox, type NewNotification } from "./alerts-outbox.ts";

/** Named parameters of a statement ($name in the SQL). */
type Params = Record<string, string | number | null>;

export type { ChannelRow, NewNotification, OutboxRow, OutboxWithChannel } from "./alerts-outbox.ts";

/** A rule as stored, with the names of its scope. */
export interface AlertRuleRow {
  id: number;
  name: string;
  kind: string;
  metric: string | null;
  min: number | null;
  max: number | null;
  hysteresis: number;
  duration_s: number;
  intervals: number | null;
  failures: number | null;
  dew_margin: number | null;
  severity: string;
  room_id: number | null;
  device_id: number | null;
  enabled: number;
  created_at: number;
  updated_at: number;
  room_uid: string | null;
  room_name: string | null;
  device_uid: string | null;
  device_label: string | null;
}

/** The stored fields of a rule (its scope by uid; the store resolves them). */
export interface AlertRuleFields {
  name: string;
  kind: string;
  metric: string | null;
  min: number | null;
  max: number | null;
  hysteresis: number;
  duration_s: number;
  intervals: number | null;
  failures: number | null;
  dew_margin: number | null;
  severity: string;
  room_uid: string | null;
  device_uid: string | null;
  enabled: boolean;
}

/** An incident as stored. */
export interface IncidentRow {
  id: number;
  rule_id: number | null;
  rule_name: string;
  kind: string;
  metric: string | null;
  severity: string;
  device_uid: string;
  device_name: string;
  home_id: string;
  room_uid: string | null;
  room_name: string | null;
  state: "open" | "acknowledged" | "resolved";
  started_at: number;
  opened_at: number;
  value: number | null;
  threshold: number | null;
  peak: number | null;
  peak_at: number | null;
  last_value: number | null;
  message: string;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  ended_at: number | null;
  end_reason: string | null;
  repeats: number;
  last_notified_at: number;
}

/** What opening an incident stores. */
export type NewIncident = Omit<
  IncidentRow,
  "id" | "state" | "acknowledged_at" | "acknowledged_by" | "ended_at" | "end_reason" | "repeats" | "last_notified_at"
>;

/** Which incidents to list. */
export interface IncidentFilter {
  /** "active" = open or acknowledged. */
  state?: "open" | "acknowledged" | "resolved" | "active";
  roomUid?: string;
  deviceUid?: string;
  /** Started at or after / before. */
  from?: number;
  to?: number;
  /** Ids below this (the next page of a list, newest first). */
  before?: number;
  limit: number;
}

const RULE_SELECT = `
  SELECT r.*, ro.uid AS room_uid, ro.name AS room_name, d.uid AS device_uid, d.label AS device_label
  FROM alert_rules r LEFT JOIN rooms ro ON ro.id = r.room_id LEFT JOIN devices d ON d.id = r.device_id`;

/** A watermark: the newest reading of a device whose rules ran. */
export interface Watermark {
  deviceId: number;
  ts: number;
}

/** Creates the alert store over an open database. */
export function createAlertStore(db: Database, deps: { now: () => number }) {
  const outbox = createAlertOutbox(db, deps);
  const q = {
    rules: db.query<AlertRuleRow, []>(`${RULE_SELECT} ORDER BY r.id`),
    rule: db.query<AlertRuleRow, [number]>(`${RULE_SELECT} WHERE r.id = ?`),
    ruleCount: db.query<{ n: number }, []>("SELECT count(*) AS n FROM alert_rules"),
    roomId: db.query<{ id: number }, [string]>("SELECT id FROM rooms WHERE uid = ?"),
    deviceId: db.query<{ id: number }, [string]>("SELECT id FROM devices WHERE uid = ?"),
    insertRule: db.query<{ id: number }, Params>(
      `INSERT INTO alert_rules (name, kind, metric, min, max, hysteresis, duration_s, intervals, failures, dew_margin,
         severity, room_id, device_id, enabled, created_at, updated_at)
       VALUES ($name, $kind, $metric, $min, $max, $hysteresis, $duration_s, $intervals, $failures, $dew_margin,
         $severity, $room_id, $device_id, $enabled, $at, $at) RETURNING id`,
    ),
    updateRule: db.query<null, Params>(
      `UPDATE alert_rules SET name = $name, kind = $kind, metric = $metric, min = $min, max = $max, hysteresis = $hysteresis,
         duration_s = $duration_s, intervals = $intervals, failures = $failures, dew_margin = $dew_margin, severity = $severity,
         room_id = $room_id, device_id = $device_id, enabled = $enabled, updated_at = $at WHERE id = $id`,
    ),
    deleteRule: db.query<null, [number]>("DELETE FROM alert_rules WHERE id = ?"),

    insertIncident: db.query<IncidentRow, Params>(
      `INSERT INTO alert_incidents (rule_id, rule_name, kind, metric, severity, device_uid, device_name, home_id, room_uid,
         room_name, state, started_at, opened_at, value, threshold, peak, peak_at, last_value, message, last_notified_at)
       VALUES ($rule_id, $rule_name, $kind, $metric, $severity, $device_uid, $device_name, $home_id, $room_uid, $room_name,
         'open', $started_at, $opened_at, $value, $threshold, $peak, $peak_at, $last_value, $message, $opened_at) RETURNING *`,
    ),
    incident: db.query<IncidentRow, [number]>("SELECT * FROM alert_incidents WHERE id = ?"),
    active: db.query<IncidentRow, []>("SELECT * FROM alert_incidents WHERE state != 'resolved' ORDER BY id"),
    resolve: db.query<IncidentRow, [number, string, number | null, number | null, number | null, number]>(
      `UPDATE alert_incidents SET state = 'resolved', ended_at = ?, end_reason = ?, last_value = coalesce(?, last_value),
         peak = coalesce(?, peak), peak_at = coalesce(?, peak_at) WHERE id = ? AND state != 'resolved' RETURNING *`,
    ),
    acknowledge: db.query<IncidentRow, [number, string | null, number]>(
      `UPDATE alert_incidents SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?
       WHERE id = ? AND state = 'open' RETURNING *`,
    ),
    peak: db.query<null, [number | null, number | null, number | null, number]>(
      "UPDATE alert_incidents SET peak = ?, peak_at = ?, last_value = ? WHERE id = ? AND state != 'resolved'",
    ),
    repeat: db.query<IncidentRow, [number, number]>(
      "UPDATE alert_incidents SET repeats = repeats + 1, last_notified_at = ? WHERE id = ? AND state = 'open' RETURNING *",
    ),
    // The newest incident of each rule and device whose rule still exists: the retained MQTT state at start.
    latest: db.query<IncidentRow, []>(
      `SELECT * FROM alert_incidents WHERE id IN (
         SELECT max(id) FROM alert_incidents WHERE rule_id IS NOT NULL GROUP BY rule_id, device_uid)`,
    ),
    since: db.query<IncidentRow, [number]>("SELECT * FROM alert_incidents WHERE started_at >= ?1 OR ended_at >= ?1 ORDER BY id"),
    pruneIncidents: db.query<null, [number]>("DELETE FROM alert_incidents WHERE state = 'resolved' AND ended_at < ?"),

    watermarks: db.query<{ device_id: number; ts: number }, []>("SELECT device_id, ts FROM alert_watermarks"),
    setWatermark: db.query<null, [number, number]>(
      `INSERT INTO alert_watermarks (device_id, ts) VALUES (?1, ?2)
       ON CONFLICT (device_id) DO UPDATE SET ts = max(ts, excluded.ts)`,
    ),
    // A device's readings after a moment, oldest first, in hundredths (the replay at start).
    readingsSince: db.query<{ ts: number; t: number; h: number }, [number, number, number]>(
      "SELECT ts, t, h FROM readings WHERE device_id = ? AND ts > ? ORDER BY ts LIMIT ?",
    ),

    settings: db.query<{ key: string; value: string }, []>("SELECT key, value FROM alert_settings"),
    setSetting: db.query<null, [string, string]>(
      "INSERT INTO alert_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
  };

  /** A rule's room and device ids from their uids; an unknown one names its field. */
  function scopeIds(f: AlertRuleFields): { room_id: number | null; device_id: number | null } {
    let room_id: number | null = null;
    let device_id: number | null = null;
    if (f.room_uid !== null) {
      room_id = q.roomId.get(f.room_uid)?.id ?? null;
      if (room_id === null)
        throw invalid("room_uid", `no room ${JSON.stringify(f.room_uid)}; create it first or pick one of the rooms`);
    }
    if (f.device_uid !== null) {
      device_id = q.deviceId.get(f.device_uid)?.id ?? null;
      if (device_id === null) throw invalid("device_uid", `no device ${JSON.stringify(f.device_uid)}`);
    }
    return { room_id, device_id };
  }

  const params = (f: AlertRuleFields) => {
    const { room_uid: _r, device_uid: _d, enabled, ...rest } = f;
    return { ...rest, ...scopeIds(f), enabled: enabled ? 1 : 0, at: deps.now() };
  };

  /** Stores notifications (one transition's), then runs `after` in the same transaction. */
  const enqueueAll = (rows: NewNotification[], maxPending: number) => {
    for (const row of rows) outbox.enqueue(row, maxPending);
  };

  const openTx = db.transaction(
    (incident: NewIncident, notify: (row: IncidentRow) => NewNotification[], maxPending: number, mark: Watermark | null) => {
      const row = q.insertIncident.get(incident)!;
      enqueueAll(notify(row), maxPending);
      if (mark) q.setWatermark.run(mark.deviceId, mark.ts);
      return row;
    },
  );

  const resolveTx = db.transaction(
    (
      id: number,
      end: { at: number; reason: string; value: number | null; peak: number | null; peakAt: number | null },
      notify: (row: IncidentRow) => NewNotification[],
      maxPending: number,
      mark: Watermark | null,
    ) => {
      const row = q.resolve.get(end.at, end.reason, end.value, end.peak, end.peakAt, id);
      if (row) enqueueAll(notify(row), maxPending);
      if (mark) q.setWatermark.run(mark.deviceId, mark.ts);
      return row;
    },
  );

  const repeatTx = db.transaction(
    (id: number, at: number, notify: (row: IncidentRow) => NewNotification[], maxPending: number) => {
      const row = q.repeat.get(at, id);
      if (row) enqueueAll(notify(row), maxPending);
      return row;
    },
  );

  return {
    // ---- rules ----
    /** Every rule, oldest first. */
    rules: (): AlertRuleRow[] => q.rules.all(),
    /** One rule; not_found otherwise. */
    rule(id: number): AlertRuleRow {
      const row = q.rule.get(id);
      if (!row) throw notFound("alert rule", String(id));
      return row;
    },
    /** How many rules exist. */
    ruleCount: (): number => q.ruleCount.get()!.n,
    /** Stores a new rule; an unknown room or device names its field. */
    createRule: (f: AlertRuleFields): AlertRuleRow => q.rule.get(q.insertRule.get(params(f))!.id)!,
    /** Replaces a rule's fields. */
    updateRule(id: number, f: AlertRuleFields): AlertRuleRow {
      q.updateRule.run({ ...params(f), id });
      return q.rule.get(id)!;
    },
    /** Deletes a rule; its incidents stay (their rule_id becomes null). */
    deleteRule: (id: number): void => void q.deleteRule.run(id),

    // ---- incidents ----
    /** Opens an incident and queues its notifications (`notify` builds them from the stored row), in one transaction. */
    openIncident: (
      incident: NewIncident,
      notify: (row: IncidentRow) => NewNotification[],
      maxPending: number,
      mark: Watermark | null,
    ): IncidentRow => openTx(incident, notify, maxPending, mark),
    /** Resolves an incident (null when it was resolved already) and queues its notifications, in one transaction. */
    resolveIncident: (
      id: number,
      end: { at: number; reason: string; value: number | null; peak: number | null; peakAt: number | null },
      notify: (row: IncidentRow) => NewNotification[],
      maxPending: number,
      mark: Watermark | null,
    ): IncidentRow | null => resolveTx(id, end, notify, maxPending, mark),
    /** Counts a repeat of an open incident and queues its notifications; null when it is no longer open. */
    repeatIncident: (id: number, at: number, notify: (row: IncidentRow) => NewNotification[], maxPending: number) =>
      repeatTx(id, at, notify, maxPending),
    /** Acknowledges an open incident; null when it is not open (acknowledged or resolved already). */
    acknowledge: (id: number, by: string | null, at: number): IncidentRow | null => q.acknowledge.get(at, by, id),
    /** Writes the worst value so far of incidents that are not resolved. */
    savePeaks: db.transaction((rows: { id: number; peak: number; peakAt: number; last: number | null }[]) => {
      for (const r of rows) q.peak.run(r.peak, r.peakAt, r.last, r.id);
    }),
    /** One incident; not_found otherwise. */
    incident(id: number): IncidentRow {
      const row = q.incident.get(id);
      if (!row) throw notFound("incident", String(id));
      return row;
    },
    /** Incidents not resolved, oldest first. */
    activeIncidents: (): IncidentRow[] => q.active.all(),
    /** Incidents newest first, filtered. */
    listIncidents(f: IncidentFilter): IncidentRow[] {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (f.state === "active") where.push("state != 'resolved'");
      else if (f.state) (where.push("state = ?"), args.push(f.state));
      if (f.roomUid) (where.push("room_uid = ?"), args.push(f.roomUid));
      if (f.deviceUid) (where.push("device_uid = ?"), args.push(f.deviceUid));
      if (f.from !== undefined) (where.push("started_at >= ?"), args.push(f.from));
      if (f.to !== undefined) (where.push("started_at <= ?"), args.push(f.to));
      if (f.before !== undefined) (where.push("id < ?"), args.push(f.before));
      // Only fixed fragments are joined; every value is a bound parameter.
      const sql = `SELECT * FROM alert_incidents ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
      return db.query<IncidentRow, (string | number)[]>(sql).all(...args, f.limit);
    },
    /** Incidents that started or ended since `ts` (the daily digest). */
    incidentsSince: (ts: number): IncidentRow[] => q.since.all(ts),
    /** The newest incident of each rule and device (the retained MQTT states). */
    latestIncidents: (): IncidentRow[] => q.latest.all(),
    /** Deletes resolved incidents that ended before `ts`, and notifications done before it. */
    prune(ts: number): void {
      q.pruneIncidents.run(ts);
      outbox.prune(ts);
    },

    // ---- evaluation progress ----
    /** Per device, the newest reading evaluated. */
    watermarks: (): Map<number, number> => new Map(q.watermarks.all().map((w) => [w.device_id, w.ts])),
    /** Moves watermarks forward (never back). */
    saveWatermarks: db.transaction((marks: Watermark[]) => {
      for (const m of marks) q.setWatermark.run(m.deviceId, m.ts);
    }),
    /** A device's readings after `ts`, oldest first, at most `limit` (values in hundredths). */
    readingsSince: (deviceId: number, ts: number, limit: number) => q.readingsSince.all(deviceId, ts, limit),

    // ---- settings ----
    /** The alert settings as stored (key → text). */
    settings: (): Record<string, string> => Object.fromEntries(q.settings.all().map((r) => [r.key, r.value])),
    /** Stores alert settings. */
    saveSettings: db.transaction((values: Record<string, string>) => {
      for (const [k, v] of Object.entries(values)) q.setSetting.run(k, v);
    }),

    /** Channels and the outbox (alerts-outbox.ts). */
    outbox,
  };
}

/** The alert store's interface. */
export type AlertStore = ReturnType<typeof createAlertStore>;
