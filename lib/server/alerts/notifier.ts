// The outbox worker: sends what the outbox holds, one send per channel at a
// time, an incident's notifications to a channel in order (a warning held by
// quiet hours does not hold back a critical one), a few channels at once,
// never waiting on a receiver inside anything else (a receiver that hangs
// holds one socket until the send timeout, nothing more). A failed attempt is tried again later
// (waits growing ×3 from alert_retry_base_s), and after the last attempt
// the notification is marked failed: shown on the pages and in the API.
// During quiet hours a notification waits for their end (critical ones go
// out at once unless told otherwise). A notification is marked sent only
// after the receiver accepted it, and that mark is committed: a restart
// resends only what was not acknowledged by its receiver (each carries a
// stable id for a receiver that wants to drop the rare repeat of one whose
// answer was lost in the crash).

import type { Log } from "../../shared/log.ts";
import type { AlertStore, IncidentRow, NewNotification, OutboxWithChannel } from "../store/store.ts";
import { configOf, type ChannelKind } from "./channels.ts";
import { incidentNotification, type Notification } from "./messages.ts";
import { SEVERITIES, type Severity } from "./rules.ts";
import { quietUntil } from "./schedule.ts";
import { deliver, SendError } from "./senders.ts";
import type { AlertSettings } from "./settings.ts";

/** The worker's limits (config.ts's alert_* settings). */
export interface NotifierOptions {
  /** A send that takes longer is abandoned (a failed attempt). */
  timeoutMs: number;
  /** Channels sending at once. */
  concurrency: number;
  /** Wait before the second attempt; each next wait is 3 times longer (at most an hour). */
  retryBaseMs: number;
  /** Attempts before a notification is marked failed. */
  maxAttempts: number;
  /** Notifications waiting at most; beyond, new ones are stored as failed. */
  maxPending: number;
}

/** The longest wait between two attempts. */
const MAX_BACKOFF_MS = 3_600_000;
/** A limit hit or a failing channel is logged at most once per this. */
const LOG_PERIOD_MS = 3_600_000;

const rank = (s: string) => SEVERITIES.indexOf(s as Severity);

/** Creates the worker. `kick()` after queuing; `close()` waits a moment for sends in flight, then abandons them (they stay queued). */
export function createNotifier(deps: {
  store: AlertStore;
  log: Log;
  now: () => number;
  timeZone: string;
  settings: () => AlertSettings;
  options: NotifierOptions;
  /** Delivery (tests of the worker may pass their own); senders.ts's by default. */
  deliver?: typeof deliver;
}) {
  const { store, log, now, options } = deps;
  const send = deps.deliver ?? deliver;
  const inFlight = new Map<number, AbortController>();
  /** The sends in flight, to wait for at close. */
  const sending = new Set<Promise<void>>();
  const idleWaiters = new Set<() => void>();
  const loggedAt = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let scheduled = false;
  /** Closing: no new send starts. */
  let stopping = false;
  /** Closed: what is still in flight was abandoned. */
  let closed = false;

  /** Logs once per key and period. */
  function logOnce(key: string, level: "warn" | "error", msg: string, fields: Record<string, unknown>): void {
    const at = now();
    if (at - (loggedAt.get(key) ?? -Infinity) < LOG_PERIOD_MS) return;
    if (loggedAt.size > 1000) loggedAt.clear();
    loggedAt.set(key, at);
    log[level](msg, fields);
  }

  /** The notifications of an incident event, one per channel that wants its severity. */
  function incidentRows(event: "opened" | "repeat" | "resolved", incident: IncidentRow): NewNotification[] {
    const at = now();
    const settings = deps.settings();
    return store.outbox
      .channels()
      .filter((c) => c.enabled === 1 && rank(incident.severity) <= rank(c.min_severity))
      .map((c) => {
        const dedup = `i${incident.id}-${event}${event === "repeat" ? `${incident.repeats}` : ""}-c${c.id}`;
        const n = incidentNotification(event, incident, dedup, { timeZone: deps.timeZone, linkBase: settings.linkBase, now: at });
        return row(c.id, incident.id, n, at);
      });
  }

  const row = (channelId: number, incidentId: number | null, n: Notification, at: number): NewNotification => ({
    channel_id: channelId,
    incident_id: incidentId,
    event: n.event,
    dedup: n.id,
    severity: n.severity,
    payload: JSON.stringify(n),
    next_at: at,
    max_attempts: options.maxAttempts,
  });

  /** Why a due notification should not be sent after all, or null. */
  function pointless(head: OutboxWithChannel): string | null {
    if (head.channel_enabled !== 1) return "the channel is turned off";
    if (head.incident_id !== null && (head.event === "opened" || head.event === "repeat")) {
      const incident = store.incident(head.incident_id);
      if (incident.state === "resolved")
        return "the incident resolved before it was sent; its resolved message says when it began";
      if (head.event === "repeat" && incident.state !== "open") return "the incident was acknowledged";
    }
    return null;
  }

  async function attempt(head: OutboxWithChannel): Promise<void> {
    const controller = new AbortController();
    inFlight.set(head.channel_id, controller);
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(options.timeoutMs)]);
    const n = JSON.parse(head.payload) as Notification;
    let error: SendError | null = null;
    try {
      await send(head.channel_kind as ChannelKind, configOf({ config: head.channel_config }), n, signal);
    } catch (err) {
      error = err instanceof SendError ? err : new SendError((err as Error).message, false);
    } finally {
      inFlight.delete(head.channel_id);
    }
    if (closed && error) return; // abandoned by close(): it stays queued for the next start
    const at = now();
    try {
      if (error === null) {
        store.outbox.markSent(head.id, at);
        store.outbox.channelResult(head.channel_id, at, null);
      } else {
        const attempts = head.attempts + 1;
        store.outbox.channelResult(head.channel_id, at, error.message);
        if (error.permanent || attempts >= head.max_attempts) {
          store.outbox.markFailed(head.id, error.message);
          logOnce(`failed:${head.channel_id}`, "error", "notification failed; giving up", {
            channel: head.channel_name,
            event: n.event,
            attempts,
            error: error.message,
          });
        } else {
          const wait = Math.min(MAX_BACKOFF_MS, options.retryBaseMs * 3 ** (attempts - 1));
          store.outbox.markRetry(head.id, at + wait, error.message);
          logOnce(`retry:${head.channel_id}`, "warn", "notification not delivered; will try again", {
            channel: head.channel_name,
            attempts,
            next_in_s: Math.round(wait / 1000),
            error: error.message,
          });
        }
      }
    } catch (err) {
      log.error("cannot record a notification's result", { error: err as Error });
    }
    kick();
  }

  /** Starts every due send there is room for; sets the timer for the next one. */
  function run(): void {
    scheduled = false;
    if (stopping) return;
    let nextAt = Infinity;
    let blocked = false;
    let again = false;
    try {
      const at = now();
      const quiet = deps.settings();
      // One notification of a channel at a time: channels sending now are left out.
      for (const head of store.outbox.heads(at, [...inFlight.keys()])) {
        const reason = pointless(head);
        if (reason !== null) {
          store.outbox.markSkipped(head.id, reason);
          again = true; // the channel's next one may be due
          continue;
        }
        const exempt = head.event === "test" || (quiet.quietAllowsCritical && head.severity === "critical");
        const until = exempt ? null : quietUntil(at, deps.timeZone, quiet.quiet);
        if (until !== null) {
          store.outbox.hold(head.id, until);
          again = true; // the channel's next one may be exempt (critical)
          continue;
        }
        if (inFlight.size >= options.concurrency) {
          blocked = true;
          continue;
        }
        const p = attempt(head);
        sending.add(p);
        void p.finally(() => sending.delete(p));
      }
      const next = store.outbox.nextDue(at);
      if (next !== null) nextAt = Math.min(nextAt, next);
      if (again) kick();
    } catch (err) {
      log.error("cannot read the notification outbox", { error: err as Error });
      nextAt = now() + 10_000;
    }
    if (timer) clearTimeout(timer);
    timer = null;
    if (Number.isFinite(nextAt)) {
      // At most a minute: the clock may be a test's, and timers drift.
      timer = setTimeout(run, Math.max(10, Math.min(60_000, nextAt - now())));
    }
    // Idle: nothing in flight and nothing due now (what waits for later, or for quiet hours to end, does not count).
    if (inFlight.size === 0 && !blocked && !again) for (const w of idleWaiters) w();
  }

  /** Looks at the outbox soon (after queuing, and after each send). */
  function kick(): void {
    if (scheduled || stopping) return;
    scheduled = true;
    setImmediate(run);
  }

  return {
    incidentRows,
    /** A notification row of any kind (digest, tests). */
    row,
    kick,
    /** Logs a limit hit (the outbox full) once per hour. */
    logOnce,
    /** Sends a test to a channel now, outside the outbox (nothing to keep if it fails); resolves with the error or null. */
    async test(kind: ChannelKind, config: ReturnType<typeof configOf>, n: Notification): Promise<string | null> {
      try {
        await send(kind, config, n, AbortSignal.timeout(options.timeoutMs));
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    },
    /** Resolves once nothing is in flight and nothing is due (tests wait on it); rejects after `timeoutMs`. */
    idle(timeoutMs = 10_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(t);
          idleWaiters.delete(done);
          resolve();
        };
        const t = setTimeout(() => {
          idleWaiters.delete(done);
          reject(new Error(`notifications still in flight or due after ${timeoutMs} ms`));
        }, timeoutMs);
        idleWaiters.add(done);
        kick();
      });
    },
    /** Sends in flight now. */
    get inFlight() {
      return inFlight.size;
    },
    /** Stops; sends in flight get `graceMs` to finish, then are abandoned (still queued for the next start). */
    async close(graceMs = 2000): Promise<void> {
      stopping = true;
      if (timer) clearTimeout(timer);
      timer = null;
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.allSettled([...sending]), new Promise((r) => (grace = setTimeout(r, graceMs)))]);
      clearTimeout(grace);
      closed = true;
      for (const c of inFlight.values()) c.abort();
      await Promise.allSettled([...sending]);
    },
  };
}

/** The outbox worker's interface. */
export type Notifier = ReturnType<typeof createNotifier>;
