// The rule engine: runs after the commit, off the ingest path. The store's
// `readings` listener only appends the committed batch to a queue (bounded by
// alert_queue_max; beyond it, readings are not kept in memory: the devices
// concerned are evaluated later from the database, so nothing is skipped).
// The queue is worked through in slices of a few milliseconds on later turns
// of the event loop, so no PUBACK and no page waits for rules. Staleness runs
// on the clock (tick(), every 10 s; tests call it with their own clock).
//
// State per rule and device lives in memory (evaluate.ts); incidents and the
// notifications they cause are committed together (store/alerts.ts), with
// how far the device's readings were evaluated (its watermark). At start the
// recent readings are replayed: those up to the watermark only rebuild the
// states (the stored incidents are the truth), those after it were never
// evaluated (a crash before their turn) and are evaluated now. So a restart
// neither repeats a notification nor loses one.

import type { Log } from "../../shared/log.ts";
import { expectedIntervalS } from "../live/freshness.ts";
import type { AlertRuleRow, Device, IncidentRow, Store } from "../store/store.ts";
import { newState, onClock, onFailures, onReading, readsReadings, type RuleState, type Sample, type Step } from "./evaluate.ts";
import { END_REASONS, openingText, type EndReason } from "./messages.ts";
import type { Notifier } from "./notifier.ts";
import type { AlertPublisher } from "./publisher.ts";
import { MAX_DURATION_S, type RuleSpec } from "./rules.ts";
import type { AlertSettings } from "./settings.ts";
import { quietUntil } from "./schedule.ts";

/** A rule as the engine runs it. */
export interface LiveRule {
  id: number;
  spec: RuleSpec;
  roomId: number | null;
  deviceId: number | null;
}

/** A device as the engine sees it. */
interface Dev {
  id: number;
  uid: string;
  name: string;
  homeId: string;
  roomId: number | null;
  roomUid: string | null;
  roomName: string | null;
  placedAt: number | null;
  announced: number | null;
  configured: number | null;
  lastError: string | null;
  /** The newest reading evaluated, and the one before it (their spacing is the earlier agent's interval). */
  lastTs: number;
  prevTs: number | null;
  /** When its last reading arrived (server clock), never before the engine started. */
  heard: number;
  /** The rules that apply to it now, each with its state (null: to be worked out). */
  slots: Slot[] | null;
}

/** A rule that covers a device, with its state for that device (the same object as in `states`). */
interface Slot {
  rule: LiveRule;
  state: RuleState;
  key: string;
}

/** Slice of work per turn of the event loop before yielding to ingestion and pages. */
const SLICE_MS = 8;
/** Readings read back from the database at once (catch-up after an overflow, the replay at start). */
const CHUNK = 5000;
/** The replay at start reads at most this many readings per device. */
const REPLAY_MAX = 200_000;

/** The rule's fields from its row. */
export function ruleOf(row: AlertRuleRow): LiveRule {
  const spec: RuleSpec = {
    name: row.name,
    kind: row.kind as RuleSpec["kind"],
    metric: row.metric as RuleSpec["metric"],
    min: row.min,
    max: row.max,
    hysteresis: row.hysteresis,
    duration_s: row.duration_s,
    intervals: row.intervals,
    failures: row.failures,
    dew_margin: row.dew_margin,
    severity: row.severity as RuleSpec["severity"],
    room_uid: row.room_uid,
    device_uid: row.device_uid,
    enabled: row.enabled === 1,
  };
  return { id: row.id, spec, roomId: row.room_id, deviceId: row.device_id };
}

/** Creates the engine: loads rules and incidents, replays recent readings, subscribes to the store. */
export function createEngine(deps: {
  store: Pick<Store, "on" | "listDevices" | "findDevice" | "recent" | "alerts">;
  notifier: Pick<Notifier, "incidentRows" | "kick" | "logOnce">;
  publisher: Pick<AlertPublisher, "publish" | "clear">;
  log: Log;
  now: () => number;
  timeZone: string;
  settings: () => AlertSettings;
  limits: { queueMax: number; maxPending: number };
  /** Told the rooms (uid; null = a device in no room) whose incidents changed. */
  onChange: (rooms: Set<string | null>) => void;
}) {
  const { store, notifier, publisher, log, now, limits } = deps;
  const db = store.alerts;
  const startedAt = now();
  let rules = new Map<number, LiveRule>();
  const devices = new Map<string, Dev>();
  const states = new Map<string, RuleState>();
  /** Incidents not resolved, by rule and device. */
  const active = new Map<string, IncidentRow>();
  const peaksToSave = new Set<string>();
  const marksToSave = new Set<Dev>();
  let queue: { uid: string; ts: number; t: number; h: number }[][] = [];
  let queued = 0;
  /** Devices whose readings did not fit in the queue: evaluated from the database from this ts on. */
  const behind = new Map<string, number>();
  let scheduled = false;
  let closed = false;
  const stats = { evaluated: 0, overflowed: 0, incidentsOpened: 0, incidentsResolved: 0 };

  const key = (ruleId: number, uid: string) => `${ruleId}:${uid}`;

  function devOf(d: Device, old?: Dev): Dev {
    return {
      id: d.id,
      uid: d.uid,
      name: d.label || d.uid,
      homeId: d.home_id ?? "home-001",
      roomId: d.room_id,
      roomUid: d.room_uid,
      roomName: d.room_name,
      placedAt: d.placed_at,
      announced: d.interval_s,
      configured: d.config_interval_s,
      lastError: d.last_error,
      lastTs: old?.lastTs ?? -Infinity,
      prevTs: old?.prevTs ?? null,
      heard: old?.heard ?? startedAt,
      slots: null,
    };
  }

  function device(uid: string): Dev | null {
    let dev = devices.get(uid);
    if (dev) return dev;
    const d = store.findDevice(uid);
    if (!d) return null;
    // Known at start, a device was loaded by the replay: this one is new, and every reading of it is still to come.
    dev = devOf(d);
    devices.set(uid, dev);
    return dev;
  }

  /** Whether a rule covers a device now: its device, a device in its room, or (neither) any device in a room. */
  const applies = (r: LiveRule, d: Dev) =>
    r.spec.enabled && (r.deviceId !== null ? r.deviceId === d.id : r.roomId !== null ? r.roomId === d.roomId : d.roomId !== null);

  function stateOf(r: LiveRule, d: Dev): RuleState {
    const k = key(r.id, d.uid);
    let s = states.get(k);
    if (!s) states.set(k, (s = newState()));
    return s;
  }

  /** The rules covering a device with their states, worked out once per change of rules or device (not per reading). */
  function slotsOf(d: Dev): Slot[] {
    d.slots ??= [...rules.values()]
      .filter((r) => applies(r, d))
      .map((rule) => ({ rule, state: stateOf(rule, d), key: key(rule.id, d.uid) }));
    return d.slots;
  }

  const changed = (...rooms: (string | null)[]) => deps.onChange(new Set(rooms));

  // ---- transitions ----

  function fire(r: LiveRule, d: Dev, step: Extract<Step, { type: "fire" }>, state: RuleState, markTs: number | null): void {
    const k = key(r.id, d.uid);
    if (active.has(k)) return;
    const where = d.roomName === null ? d.name : `${d.roomName} (${d.name})`;
    const intervalS = intervalOf(d);
    try {
      const row = db.openIncident(
        {
          rule_id: r.id,
          rule_name: r.spec.name,
          kind: r.spec.kind,
          metric: r.spec.metric,
          severity: r.spec.severity,
          device_uid: d.uid,
          device_name: d.name,
          home_id: d.homeId,
          room_uid: d.roomUid,
          room_name: d.roomName,
          started_at: step.since,
          opened_at: now(),
          value: step.value,
          threshold: step.threshold,
          peak: state.peak,
          peak_at: state.peakAt,
          last_value: step.value,
          message: openingText(r.spec, step, where, deps.timeZone, { intervalS, lastError: d.lastError }),
        },
        (row) => notifier.incidentRows("opened", row),
        limits.maxPending,
        markTs === null ? null : { deviceId: d.id, ts: markTs },
      );
      active.set(k, row);
      stats.incidentsOpened++;
      after(row);
    } catch (err) {
      // Not stored: wait again from the same start, so the next reading fires it.
      state.phase = "pending";
      log.error("cannot open an incident", { rule: r.id, device: d.uid, error: err as Error });
    }
  }

  function resolve(k: string, reason: EndReason, value: number | null, markTs: { deviceId: number; ts: number } | null): boolean {
    const open = active.get(k);
    if (!open) return true;
    const s = states.get(k);
    try {
      const row = db.resolveIncident(
        open.id,
        { at: now(), reason, value, peak: s?.peak ?? null, peakAt: s?.peakAt ?? null },
        (row) => notifier.incidentRows("resolved", row),
        limits.maxPending,
        markTs,
      );
      active.delete(k);
      peaksToSave.delete(k);
      stats.incidentsResolved++;
      if (row) after(row);
      return true;
    } catch (err) {
      log.error("cannot resolve an incident", { incident: open.id, reason: END_REASONS[reason], error: err as Error });
      return false;
    }
  }

  /** After a committed transition: the MQTT state, the notifications, the pages. */
  function after(row: IncidentRow): void {
    void publisher.publish(row);
    notifier.kick();
    if (db.outbox.pendingCount() >= limits.maxPending) {
      notifier.logOnce("outbox-full", "warn", "notification outbox full: new notifications are stored as failed", {
        limit: limits.maxPending,
        setting: "alert_outbox_max",
      });
    }
    changed(row.room_uid);
  }

  function apply(r: LiveRule, d: Dev, step: Step, state: RuleState, markTs: number | null): void {
    if (step === null) return;
    if (step.type === "fire") return fire(r, d, step, state, markTs);
    const k = key(r.id, d.uid);
    // Not stored: still firing, so the next reading clears it again.
    if (!resolve(k, "cleared", step.value, markTs === null ? null : { deviceId: d.id, ts: markTs })) state.phase = "firing";
  }

  // ---- readings ----

  function intervalOf(d: Dev): number {
    const observed = d.prevTs !== null && Number.isFinite(d.lastTs) ? (d.lastTs - d.prevTs) / 1000 : null;
    return expectedIntervalS({ announced: d.announced, configured: d.configured, observedS: observed });
  }

  /** Evaluates one reading; `live` false rebuilds states only (the replay of what was evaluated before a restart). */
  function evaluate(d: Dev, s: Sample, live: boolean): void {
    if (s.ts <= d.lastTs) return;
    d.prevTs = Number.isFinite(d.lastTs) ? d.lastTs : null;
    d.lastTs = s.ts;
    if (live) marksToSave.add(d);
    stats.evaluated++;
    for (const { rule: r, state, key: k } of slotsOf(d)) {
      // A room's rule sees the readings taken since the device came into the room.
      if (r.roomId !== null && d.placedAt !== null && s.ts < d.placedAt) continue;
      const step = onReading(r.spec, state, s);
      if (live) {
        if (step !== null) apply(r, d, step, state, s.ts);
        else if (state.phase === "firing") peaksToSave.add(k);
      } else if (step !== null && step.type === "clear" && active.has(k)) {
        // Replayed: the stored incidents say what happened. A firing state without an incident stays
        // latched (it resolved for another reason before the restart: no new alarm until it clears).
        state.phase = "firing";
      }
    }
  }

  /** Works through the queue for a few milliseconds, then yields. */
  function work(): void {
    scheduled = false;
    if (closed) return;
    const deadline = performance.now() + SLICE_MS;
    const at = now();
    try {
      while (queue.length > 0) {
        const batch = queue.shift()!;
        queued -= batch.length;
        for (const r of batch) {
          const d = device(r.uid);
          if (d === null) continue;
          d.heard = at;
          evaluate(d, { ts: r.ts, t: r.t, h: r.h }, true);
        }
        if (performance.now() > deadline) break;
      }
      if (queue.length === 0 && behind.size > 0) catchUp(deadline);
    } catch (err) {
      log.error("rule evaluation failed", { error: err as Error });
    }
    if (queue.length > 0 || behind.size > 0) schedule();
  }

  /** Evaluates from the database the readings that did not fit in the queue. */
  function catchUp(deadline: number): void {
    for (const [uid, from] of behind) {
      const d = device(uid);
      if (d === null) {
        behind.delete(uid);
        continue;
      }
      const rows = db.readingsSince(d.id, from - 1, CHUNK);
      for (const r of rows) evaluate(d, { ts: r.ts, t: r.t / 100, h: r.h / 100 }, true);
      if (rows.length < CHUNK) behind.delete(uid);
      else behind.set(uid, rows[rows.length - 1]!.ts + 1);
      if (performance.now() > deadline) return;
    }
  }

  function schedule(): void {
    if (scheduled || closed) return;
    scheduled = true;
    setImmediate(work);
  }

  let overflowLoggedAt = -Infinity;

  // ---- start: rules, incidents, replay ----

  function loadRules(): void {
    rules = new Map(db.rules().map((row) => [row.id, ruleOf(row)]));
    for (const d of devices.values()) d.slots = null;
  }

  function replay(): void {
    const marks = db.watermarks();
    for (const d of store.listDevices()) {
      const dev = devOf(d);
      devices.set(dev.uid, dev);
      const reading = slotsOf(dev)
        .map((s) => s.rule)
        .filter((r) => readsReadings(r.spec.kind));
      if (reading.length === 0) {
        const [last, prev] = store.recent.lastTwo(d.id);
        if (last) ((dev.lastTs = last.ts), (dev.prevTs = prev?.ts ?? null));
        continue;
      }
      const window = Math.min(MAX_DURATION_S, Math.max(...reading.map((r) => r.spec.duration_s))) * 1000;
      const [last] = store.recent.lastTwo(d.id);
      const mark = marks.get(d.id) ?? last?.ts ?? 0;
      let from = Math.min(mark, last?.ts ?? mark) - window - 1;
      for (let read = 0; read < REPLAY_MAX;) {
        const rows = db.readingsSince(d.id, from, CHUNK);
        for (const r of rows) evaluate(dev, { ts: r.ts, t: r.t / 100, h: r.h / 100 }, r.ts > mark);
        read += rows.length;
        if (rows.length < CHUNK) break;
        from = rows[rows.length - 1]!.ts;
      }
    }
  }

  loadRules();
  for (const row of db.activeIncidents()) {
    if (row.rule_id === null) continue;
    const k = key(row.rule_id, row.device_uid);
    active.set(k, row);
    states.set(k, {
      ...newState(),
      phase: "firing",
      since: row.started_at,
      dir: row.threshold !== null && row.value !== null && row.value < row.threshold ? -1 : 1,
      peak: row.peak ?? row.value ?? 0,
      peakAt: row.peak_at ?? row.started_at,
      last: row.last_value,
    });
  }
  replay();
  // An incident of a rule that no longer covers its device (changed while the server was down) ends now.
  for (const [k, row] of active) {
    const d = devices.get(row.device_uid);
    const r = rules.get(row.rule_id!);
    if (!d || !r || !applies(r, d)) resolve(k, !d ? "device_deleted" : !r ? "rule_deleted" : "rule_changed", null, null);
  }

  const unsubscribe = [
    store.on("readings", (batch) => {
      // Only the queue here: this runs inside the ingest commit, before its PUBACKs.
      const items = behind.size === 0 ? batch : batch.filter((r) => !behind.has(r.deviceUid));
      if (queued + items.length > limits.queueMax) {
        for (const r of items) behind.set(r.deviceUid, Math.min(behind.get(r.deviceUid) ?? Infinity, r.reading.ts));
        stats.overflowed += items.length;
        const at = now();
        if (at - overflowLoggedAt >= 60_000) {
          overflowLoggedAt = at;
          log.warn("alert queue full: evaluating from the database instead", {
            limit: limits.queueMax,
            setting: "alert_queue_max",
          });
        }
      } else if (items.length > 0) {
        queue.push(
          items.map((r) => ({ uid: r.deviceUid, ts: r.reading.ts, t: r.reading.temperature_c, h: r.reading.humidity_pct })),
        );
        queued += items.length;
      }
      schedule();
    }),
    store.on("device", (change) => onDevice(change.deviceUid, change.device)),
    store.on("status", ({ deviceUid, status, at }) => {
      const d = device(deviceUid);
      if (d === null) return;
      if (status.interval_s !== undefined) d.announced = status.interval_s;
      if (status.state !== "online" || status.sensor_failures === undefined) return;
      d.lastError = status.last_error ?? null;
      for (const { rule: r, state } of slotsOf(d)) {
        if (r.spec.kind === "failures") apply(r, d, onFailures(r.spec, state, status.sensor_failures, at), state, null);
      }
    }),
  ];

  /** A device was created, moved, renamed, reconfigured or deleted. */
  function onDevice(uid: string, after: Device | null): void {
    const old = devices.get(uid);
    if (after === null) {
      for (const [k, row] of [...active]) if (row.device_uid === uid) resolve(k, "device_deleted", null, null);
      for (const k of [...states.keys()]) if (k.endsWith(`:${uid}`)) states.delete(k);
      for (const row of db.latestIncidents()) if (row.device_uid === uid) void publisher.clear(row.home_id, row.rule_id!, uid);
      devices.delete(uid);
      return;
    }
    const dev = devOf(after, old);
    devices.set(uid, dev);
    // Rules that covered it and no longer do (it left their room) end their incidents; their states start again.
    for (const r of rules.values()) {
      if (applies(r, dev)) continue;
      const k = key(r.id, uid);
      if (active.has(k)) resolve(k, "device_moved", null, null);
      states.delete(k);
    }
  }

  return {
    stats,
    /** Readings waiting for their rules. */
    get queued() {
      return queued;
    },
    /** Incidents not resolved, oldest first. */
    active: (): IncidentRow[] => [...active.values()].sort((a, b) => a.id - b.id),
    /** Reads the rules again (after a change); `ended` rules (changed, deleted, turned off) end their incidents first. */
    rulesChanged(ended: { id: number; reason: EndReason }[] = []): void {
      for (const { id, reason } of ended) {
        for (const [k, row] of [...active]) if (row.rule_id === id) resolve(k, reason, null, null);
        for (const k of [...states.keys()]) if (k.startsWith(`${id}:`)) states.delete(k);
      }
      loadRules();
      // A new failures rule looks at what the sensors last reported.
      for (const d of store.listDevices()) {
        const dev = device(d.uid);
        if (dev === null || d.state !== "online" || d.sensor_failures === null) continue;
        for (const { rule: r, state } of slotsOf(dev)) {
          if (r.spec.kind !== "failures" || state.last !== null) continue;
          apply(r, dev, onFailures(r.spec, state, d.sensor_failures, now()), state, null);
        }
      }
    },
    /** Clears the retained MQTT states of a rule (it is being deleted). */
    clearRule(id: number): void {
      for (const row of db.latestIncidents()) if (row.rule_id === id) void publisher.clear(row.home_id, id, row.device_uid);
    },
    /** Acknowledges an incident (repeats stop); returns it as stored. */
    acknowledge(id: number, by: string | null): IncidentRow {
      const row = db.acknowledge(id, by, now()) ?? db.incident(id);
      if (row.state === "acknowledged" && row.rule_id !== null) {
        const k = key(row.rule_id, row.device_uid);
        if (active.has(k)) active.set(k, row);
        void publisher.publish(row);
        changed(row.room_uid);
      }
      return row;
    },
    /** The clock's work: staleness, repeats, and saving peaks and watermarks. */
    tick(): void {
      const at = now();
      if (db.ruleCount() !== rules.size) loadRules(); // a room's deletion took its rules with it
      for (const d of devices.values()) {
        if (!Number.isFinite(d.lastTs)) continue;
        for (const { rule: r, state, key: k } of slotsOf(d)) {
          if (r.spec.kind !== "stale") continue;
          apply(r, d, onClock(r.spec, state, d.heard, intervalOf(d), at), state, null);
          if (state.phase === "firing") peaksToSave.add(k);
        }
      }
      repeat(at);
      save();
    },
    /** Saves the worst values of open incidents and how far each device was evaluated. */
    save,
    /** Stops listening; pending work is dropped (the watermarks make the next start evaluate it). */
    close(): void {
      closed = true;
      for (const u of unsubscribe) u();
      queue = [];
    },
    /** Resolves once the queue is empty (tests); rejects after `timeoutMs`. */
    async drained(timeoutMs = 10_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (queue.length > 0 || behind.size > 0 || scheduled) {
        if (Date.now() > deadline) throw new Error(`alert queue not drained after ${timeoutMs} ms (${queued} waiting)`);
        await new Promise((r) => setImmediate(r));
      }
    },
  };

  /** Saves the worst values of open incidents and how far each device was evaluated. */
  function save(): void {
    try {
      const peaks = [...peaksToSave].flatMap((k) => {
        const row = active.get(k);
        const s = states.get(k);
        return row && s ? [{ id: row.id, peak: s.peak, peakAt: s.peakAt, last: s.last }] : [];
      });
      if (peaks.length) db.savePeaks(peaks);
      peaksToSave.clear();
      if (marksToSave.size) db.saveWatermarks([...marksToSave].map((d) => ({ deviceId: d.id, ts: d.lastTs })));
      marksToSave.clear();
    } catch (err) {
      log.error("cannot save alert progress", { error: err as Error });
    }
  }

  /** Notifies again the open incidents nobody acknowledged (not during quiet hours, unless critical ones may pass). */
  function repeat(at: number): void {
    const s = deps.settings();
    if (s.repeatMinutes === 0) return;
    const quiet = quietUntil(at, deps.timeZone, s.quiet) !== null;
    for (const [k, row] of active) {
      if (row.state !== "open" || at - row.last_notified_at < s.repeatMinutes * 60_000) continue;
      if (quiet && !(s.quietAllowsCritical && row.severity === "critical")) continue;
      try {
        const next = db.repeatIncident(row.id, at, (r) => notifier.incidentRows("repeat", r), limits.maxPending);
        if (next) active.set(k, next);
        notifier.kick();
      } catch (err) {
        log.error("cannot repeat an incident", { incident: row.id, error: err as Error });
      }
    }
  }
}

/** The engine's interface. */
export type Engine = ReturnType<typeof createEngine>;
