// Alerts: rules evaluated after every commit (engine.ts), incidents, and
// notifications by ntfy, webhook and e-mail through an outbox (notifier.ts)
// and as retained MQTT states (publisher.ts). This factory wires them, runs
// the clock's work every 10 s (staleness, repeats, the daily digest, saving
// progress, pruning old history) and is what the API and the pages call.

import { conflict, invalid } from "../../shared/errors.ts";
import type { Log } from "../../shared/log.ts";
import type { Config } from "../config.ts";
import type { Broker } from "../mqtt/broker.ts";
import type { IncidentFilter, IncidentRow, Store } from "../store/store.ts";
import { channelJson, checkChannel, configOf, MAX_CHANNELS, type ChannelInput, type ChannelKind } from "./channels.ts";
import { digestNotification } from "./digest.ts";
import { createEngine, ruleOf } from "./engine.ts";
import type { Notification } from "./messages.ts";
import { createNotifier } from "./notifier.ts";
import { createAlertPublisher } from "./publisher.ts";
import { MAX_RULES, normalizeRule, PRESETS, type RuleInput, type RuleSpec } from "./rules.ts";
import { localTime } from "../history/zone.ts";
import { checkTimeZone } from "./schedule.ts";
import { checkSettings, readSettings, type AlertSettings, type SettingsInput } from "./settings.ts";

/** How often the clock's work runs. */
export const TICK_MS = 10_000;
/** A digest missed (the server was down at its time) is still sent this long after. */
const DIGEST_GRACE_MIN = 6 * 60;

/** The limits of the alerts module (config.ts's alert_* settings). */
export interface AlertLimits {
  queueMax: number;
  outboxMax: number;
  sendTimeoutMs: number;
  sendConcurrency: number;
  retryBaseMs: number;
  retryAttempts: number;
  historyDays: number;
}

/** The limits from the server's settings. */
export function alertLimits(c: Pick<Config, `alert_${string}` & keyof Config>): AlertLimits {
  return {
    queueMax: c.alert_queue_max,
    outboxMax: c.alert_outbox_max,
    sendTimeoutMs: c.alert_send_timeout_s * 1000,
    sendConcurrency: c.alert_send_concurrency,
    retryBaseMs: c.alert_retry_base_s * 1000,
    retryAttempts: c.alert_retry_attempts,
    historyDays: c.alert_history_days,
  };
}

/** Creates the alerts module; `close()` stops it (call before the broker and the database close). */
export function createAlerts(deps: {
  store: Store;
  broker: Pick<Broker, "publish">;
  log: Log;
  limits: AlertLimits;
  /** The home's time zone, `home_timezone` (quiet hours, the digest, times in messages). */
  timeZone: string;
  /** The clock; default the store's. */
  now?: () => number;
}) {
  const { store, log, limits } = deps;
  const db = store.alerts;
  const now = deps.now ?? store.now;
  const timeZone = checkTimeZone(deps.timeZone);
  let settings: AlertSettings = readSettings(db.settings());
  const listeners = new Set<(rooms: Set<string | null>) => void>();

  const notifier = createNotifier({
    store: db,
    log: log.child("notify"),
    now,
    timeZone,
    settings: () => settings,
    options: {
      timeoutMs: limits.sendTimeoutMs,
      concurrency: limits.sendConcurrency,
      retryBaseMs: limits.retryBaseMs,
      maxAttempts: limits.retryAttempts,
      maxPending: limits.outboxMax,
    },
  });
  const publisher = createAlertPublisher({ broker: deps.broker, log: log.child("mqtt") });
  const engine = createEngine({
    store,
    notifier,
    publisher,
    log,
    now,
    timeZone,
    settings: () => settings,
    limits: { queueMax: limits.queueMax, maxPending: limits.outboxMax },
    onChange(rooms) {
      for (const l of listeners) {
        try {
          l(rooms);
        } catch (err) {
          log.error("an alert listener failed", { error: err as Error });
        }
      }
    },
  });

  // The broker keeps retained messages in memory: every rule and device's newest state again.
  for (const row of db.latestIncidents()) void publisher.publish(row);
  notifier.kick();

  let lastDigest: string | null = null;
  let closing: Promise<void> | null = null;
  let lastPrune = 0;

  function digest(at: number): void {
    if (settings.digestAt === null) return;
    const local = localTime(at, timeZone);
    const late = local.minutes - settings.digestAt;
    if (late < 0 || late > DIGEST_GRACE_MIN || lastDigest === local.date) return;
    lastDigest = local.date;
    const failed = db.outbox.list({ state: "failed", limit: 1000 }).filter((n) => n.created_at >= at - 86_400_000).length;
    const n = digestNotification(db.incidentsSince(at - 86_400_000), failed, {
      date: local.date,
      now: at,
      timeZone,
      linkBase: settings.linkBase,
    });
    for (const c of db.outbox.channels()) {
      if (c.enabled !== 1) continue;
      // The dedup key makes a second digest of the same day (a restart) a no-op.
      db.outbox.enqueue(notifier.row(c.id, null, { ...n, id: `${n.id}-c${c.id}` }, at), limits.outboxMax);
    }
    notifier.kick();
  }

  function tick(): void {
    const at = now();
    try {
      engine.tick();
      digest(at);
      if (at - lastPrune > 86_400_000) {
        lastPrune = at;
        db.prune(at - limits.historyDays * 86_400_000);
      }
    } catch (err) {
      log.error("alert clock work failed", { error: err as Error });
    }
    notifier.kick();
  }
  const timer = setInterval(tick, TICK_MS);

  const specOf = (id: number): RuleSpec => ruleOf(db.rule(id)).spec;
  /** Whether two rules fire on the same things (a rename changes nothing that is running). */
  const sameCondition = (a: RuleSpec, b: RuleSpec) => JSON.stringify({ ...a, name: "" }) === JSON.stringify({ ...b, name: "" });

  return {
    timeZone,
    engine,
    notifier,

    rules: {
      list: () => db.rules(),
      get: (id: number) => db.rule(id),
      /** Presets: the earlier TechTemp's thresholds and one rule of each other kind. */
      presets: PRESETS,
      /** Creates a rule from input (or `preset` with overrides); throws invalid naming the field. */
      create(input: RuleInput & { preset?: unknown }): ReturnType<typeof db.rule> {
        if (db.ruleCount() >= MAX_RULES) throw conflict(`there are ${MAX_RULES} rules already, the most a home may have`);
        const { preset, ...rest } = input;
        let base: RuleInput = {};
        if (preset !== undefined && preset !== null && preset !== "") {
          const found = PRESETS.find((p) => p.id === preset);
          if (!found) throw invalid("preset", `${JSON.stringify(preset)} is not one of ${PRESETS.map((p) => p.id).join(", ")}`);
          base = found.spec;
        }
        const spec = normalizeRule({ ...base, ...rest });
        const row = db.createRule(spec);
        engine.rulesChanged();
        return row;
      },
      /** Changes a rule; a change of what it watches ends its open incidents (they were about the old rule). */
      update(id: number, input: RuleInput): ReturnType<typeof db.rule> {
        const before = specOf(id);
        const spec = normalizeRule(input, before);
        const row = db.updateRule(id, spec);
        const ended = sameCondition(before, spec)
          ? []
          : [{ id, reason: spec.enabled ? ("rule_changed" as const) : ("rule_disabled" as const) }];
        engine.rulesChanged(ended);
        return row;
      },
      /** Deletes a rule: its open incidents resolve, its retained MQTT states are removed; its history stays. */
      remove(id: number): void {
        db.rule(id);
        engine.rulesChanged([{ id, reason: "rule_deleted" }]);
        engine.clearRule(id);
        db.deleteRule(id);
        engine.rulesChanged();
      },
    },

    incidents: {
      list: (f: IncidentFilter) => db.listIncidents(f),
      get: (id: number) => db.incident(id),
      /** An incident's notifications, oldest first. */
      notifications: (id: number) => db.outbox.ofIncident(id),
      /** Acknowledges it (repeats stop); a resolved incident is a conflict. */
      acknowledge(id: number, by: string | null): IncidentRow {
        const row = engine.acknowledge(id, by);
        if (row.state === "resolved") throw conflict(`incident ${id} is resolved already`);
        return row;
      },
    },

    channels: {
      list: () => db.outbox.channels(),
      get: (id: number) => db.outbox.channel(id),
      json: channelJson,
      /** Creates a channel; a webhook without a secret gets one, returned here once. */
      create(input: ChannelInput) {
        if (db.outbox.channels().length >= MAX_CHANNELS) throw conflict(`there are ${MAX_CHANNELS} channels already`);
        const c = checkChannel(input);
        const row = db.outbox.createChannel({ ...c, config: JSON.stringify(c.config) });
        return { row, secret: c.generatedSecret };
      },
      /** Changes a channel; secrets left out stay as they are. */
      update(id: number, input: ChannelInput) {
        const row = db.outbox.channel(id);
        const c = checkChannel(input, {
          name: row.name,
          kind: row.kind,
          min_severity: row.min_severity,
          enabled: row.enabled === 1,
          config: configOf(row),
        });
        return db.outbox.updateChannel(id, { ...c, config: JSON.stringify(c.config) });
      },
      /** Deletes a channel with what it still had to send. */
      remove(id: number): void {
        db.outbox.channel(id);
        db.outbox.deleteChannel(id);
      },
      /** Sends a test now; resolves with the problem, or null when the receiver accepted it. */
      async test(id: number): Promise<string | null> {
        const row = db.outbox.channel(id);
        const at = now();
        const n: Notification = {
          id: `test-${row.id}-${at}`,
          event: "test",
          severity: "info",
          title: "TechTemp test notification",
          message: `This is a test of the channel "${row.name}". Alerts of severity ${row.min_severity} and above will arrive like this.`,
          link: settings.linkBase ? `${settings.linkBase}/alerts` : null,
          incident: null,
          created_at: new Date(at).toISOString(),
        };
        const error = await notifier.test(row.kind as ChannelKind, configOf(row), n);
        db.outbox.channelResult(row.id, now(), error);
        return error;
      },
      /** Publishes a test message on `home/{home_id}/alerts/test` (not retained). */
      async testMqtt(homeId: string): Promise<void> {
        await publisher.test(
          homeId,
          JSON.stringify({ state: "test", message: "TechTemp test message", at: new Date(now()).toISOString() }),
        );
      },
    },

    settings: {
      get: (): AlertSettings => settings,
      /** Changes the settings; throws invalid naming the field. */
      update(input: SettingsInput): AlertSettings {
        db.saveSettings(checkSettings(input, settings));
        settings = readSettings(db.settings());
        notifier.kick(); // quiet hours may have ended for what waits
        return settings;
      },
    },

    notifications: {
      list: (f: { state?: "pending" | "sent" | "failed" | "skipped"; limit: number }) => db.outbox.list(f),
    },

    /** Incidents not resolved, oldest first (the dashboard's banner and the cards' marks). */
    active: (): IncidentRow[] => engine.active(),
    /** Calls `listener` with the rooms (uid; null = no room) whose incidents changed. Returns an unsubscribe. */
    onChange(listener: (rooms: Set<string | null>) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** The clock's work now (the timer runs it every 10 s; tests with their own clock call it). */
    tick,
    /** Resolves once queued readings are evaluated and nothing due is left to send (tests). */
    async idle(timeoutMs = 10_000): Promise<void> {
      await engine.drained(timeoutMs);
      await notifier.idle(timeoutMs);
    },
    /** Stops the clock and the rules; saves progress; gives sends in flight a moment. */
    close(): Promise<void> {
      closing ??= (async () => {
        clearInterval(timer);
        engine.close();
        engine.save();
        listeners.clear();
        await notifier.close();
      })();
      return closing;
    },
  };
}

/** The alerts module's interface. */
export type Alerts = ReturnType<typeof createAlerts>;
