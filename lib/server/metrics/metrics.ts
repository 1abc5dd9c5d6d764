// What /metrics shows, gathered at each scrape from what the modules already
// keep: the broker's and the ingest queue's counters and histograms, the live
// summaries (per-device values), the database files, the backups, retention's
// progress, the bridge, and the process (/proc). Counting on the side happens
// only where nothing else counts: new readings stored (the store's `readings`
// event: accepted minus stored = duplicates), MQTT subscriptions (Aedes'
// subscribe events) and the outbox depth newer agents may put in their status.
//
// Labels are bounded: reasons are a fixed list (reasons.ts), backup targets and
// device states too, and the per-device series (labels `device`, `room`) cover
// at most `maxDevices` devices (metrics_max_devices, 200): placed devices
// first, then the most recently seen; the rest are counted in
// techtemp_metrics_devices_omitted and logged once an hour.

import { statSync } from "node:fs";
import type { Log } from "../../shared/log.ts";
import type { BackupStatus } from "../backup/backups.ts";
import type { Live } from "../live/live.ts";
import type { Broker } from "../mqtt/broker.ts";
import type { Ingest } from "../mqtt/ingest.ts";
import type { Device, Store } from "../store/store.ts";
import { CONTENT_TYPE, createExposition, type Labels } from "./format.ts";
import { processFigures } from "./process.ts";
import { REFUSAL_REASONS } from "./reasons.ts";

export { CONTENT_TYPE };

/** What the bridge to another broker reports (lib/server/mqtt/bridge.ts). */
export interface BridgeFigures {
  connected: boolean;
  buffered: number;
  forwarded: number;
  dropped: number;
}

/** How often "devices omitted from /metrics" is logged. */
const OMITTED_LOG_MS = 3_600_000;
/** Most devices whose reported outbox depth is remembered (status messages of unknown devices included). */
const OUTBOX_MAX = 10_000;

/** Creates the metrics collector; `text()` renders one scrape. */
export function createMetrics(deps: {
  store: Pick<Store, "on" | "listDevices" | "ops" | "now">;
  broker: Pick<Broker, "stats" | "connectedClients" | "queuedMessages" | "aedes">;
  ingest: Pick<Ingest, "stats" | "pending" | "histograms">;
  /** The -wal file's syncs and the checkpoints (store/wal-sync.ts, store/checkpointer.ts); absent when SQLite syncs in COMMIT. */
  durability?: {
    syncs: { syncs: number; offLoop: number; failed: number };
    checkpoints: { checkpoints: number; catchUps: number; truncated: number; failed: number };
  };
  live: Pick<Live, "latest" | "summary">;
  backups: { status(): BackupStatus };
  bridge?: () => BridgeFigures | null;
  dbPath: string;
  retentionDays: number;
  maxDevices: number;
  version: string;
  log: Log;
}) {
  const { store, broker, ingest, live, log } = deps;
  let stored = 0;
  let omittedLoggedAt = -Infinity;
  const subscriptions = new Map<string, Set<string>>();
  const outbox = new Map<string, number>();

  const unsubscribe = store.on("readings", (batch) => {
    stored += batch.length;
  });
  const aedes = broker.aedes;
  const onSubscribe = (subs: { topic: string }[], client: { id: string } | null) => {
    if (!client) return;
    let set = subscriptions.get(client.id);
    if (!set) subscriptions.set(client.id, (set = new Set()));
    for (const s of subs) set.add(s.topic);
  };
  const onUnsubscribe = (topics: string[], client: { id: string } | null) => {
    if (client) for (const t of topics) subscriptions.get(client.id)?.delete(t);
  };
  const onGone = (client: { id: string } | null) => {
    if (client) subscriptions.delete(client.id);
  };
  aedes.on("subscribe", onSubscribe as never);
  aedes.on("unsubscribe", onUnsubscribe as never);
  aedes.on("clientDisconnect", onGone as never);
  // A newer agent may say how many readings wait in its outbox (`"outbox": N` in its status).
  const onStatus = (packet: { topic: string; payload: Buffer | string }, cb: () => void) => {
    try {
      const uid = packet.topic.split("/")[3]!;
      const body = JSON.parse(String(packet.payload)) as { outbox?: unknown };
      if (typeof body.outbox === "number" && Number.isFinite(body.outbox) && body.outbox >= 0) {
        if (outbox.size >= OUTBOX_MAX && !outbox.has(uid)) outbox.clear();
        outbox.set(uid, body.outbox);
      }
    } catch {
      // Not JSON: the broker refuses and counts it.
    }
    cb();
  };
  aedes.subscribe("home/+/sensors/+/status", onStatus as never, () => {});

  /** The devices with series of their own: placed first, then the most recently seen. */
  function listed(): { devices: Device[]; omitted: number } {
    const all = store.listDevices();
    const sorted = [...all].sort(
      (a, b) => Number(b.room_uid !== null) - Number(a.room_uid !== null) || (b.last_seen_at ?? 0) - (a.last_seen_at ?? 0),
    );
    return { devices: sorted.slice(0, deps.maxDevices), omitted: Math.max(0, all.length - deps.maxDevices) };
  }

  function fileSize(path: string): number {
    try {
      return statSync(path).size;
    } catch {
      return 0;
    }
  }

  function text(): string {
    const now = store.now();
    const m = createExposition();
    const bs = broker.stats;
    m.gauge("techtemp_build_info", "TechTemp's version (always 1).", [[{ version: deps.version }, 1]]);

    // ---- ingestion ----
    m.counter(
      "techtemp_readings_accepted_total",
      "Readings acknowledged as stored (PUBACK), duplicates included.",
      bs.readingsAccepted,
    );
    m.counter("techtemp_readings_stored_total", "New readings stored (a reading sent twice is stored once).", stored);
    m.counter(
      "techtemp_readings_duplicate_total",
      "Readings acknowledged that were stored already (same device and ts).",
      Math.max(0, ingest.stats.committed - stored),
    );
    m.counter(
      "techtemp_readings_refused_total",
      "Readings acknowledged and discarded, by reason.",
      REFUSAL_REASONS.map((reason) => [{ reason }, bs.refusedByReason[reason] ?? 0] as [Labels, number]),
    );
    m.counter("techtemp_mqtt_bad_topic_total", "Messages on a device topic whose ids or kind are not valid.", bs.badTopics);
    m.counter("techtemp_status_refused_total", "Status messages refused (not the contract's shape).", bs.statusRefused);
    m.counter("techtemp_mqtt_connections_refused_total", "MQTT connections refused (limits).", bs.connectionsRefused);
    m.histogram(
      "techtemp_reading_ack_seconds",
      "Time from a reading's arrival to its commit's sync to the card, when its PUBACK is sent.",
      ingest.histograms.ack.data,
    );
    m.histogram("techtemp_ingest_batch_size", "Readings per commit (group commit).", ingest.histograms.batch.data);
    m.counter("techtemp_ingest_commits_total", "Commits of readings.", ingest.stats.batches);
    m.counter(
      "techtemp_ingest_failed_commits_total",
      "Commits of readings that failed (not acknowledged).",
      ingest.stats.failedBatches,
    );
    m.gauge("techtemp_ingest_pending", "Readings waiting for their commit.", ingest.pending);
    m.counter(
      "techtemp_ingest_queue_full_total",
      "Readings refused (no PUBACK, sent again) because the queue waiting for the card was full.",
      ingest.stats.refusedFull,
    );
    if (deps.durability) {
      const { syncs, checkpoints } = deps.durability;
      m.counter("techtemp_wal_syncs_total", "Syncs of the database's -wal file to the card, by the thread that waited.", [
        [{ thread: "event_loop" }, syncs.syncs - syncs.offLoop],
        [{ thread: "off_loop" }, syncs.offLoop],
      ]);
      m.counter(
        "techtemp_wal_sync_failures_total",
        "Syncs of the -wal file that failed (readings not acknowledged).",
        syncs.failed,
      );
      m.counter("techtemp_checkpoints_total", "Checkpoints on the worker thread, by step.", [
        [{ step: "background" }, checkpoints.checkpoints],
        [{ step: "catch_up" }, checkpoints.catchUps],
        // Catch-ups that also cut a step off a -wal file grown past 16 MiB (a backup held the checkpoints back).
        [{ step: "truncate" }, checkpoints.truncated],
      ]);
      m.counter("techtemp_checkpoint_failures_total", "Checkpoints that failed (the -wal file grows).", checkpoints.failed);
    }

    // ---- MQTT ----
    m.gauge("techtemp_mqtt_clients", "MQTT clients connected.", broker.connectedClients);
    let subs = 0;
    for (const set of subscriptions.values()) subs += set.size;
    m.gauge("techtemp_mqtt_subscriptions", "Subscriptions of the connected MQTT clients.", subs);
    m.gauge("techtemp_mqtt_queued_messages", "Messages waiting behind slow subscribers.", broker.queuedMessages);

    // ---- devices ----
    const { devices, omitted } = listed();
    if (omitted > 0 && now - omittedLoggedAt >= OMITTED_LOG_MS) {
      omittedLoggedAt = now;
      log.warn("metrics: devices beyond metrics_max_devices have no series of their own", { omitted, limit: deps.maxDevices });
    }
    const byState: Record<string, number> = { online: 0, late: 0, offline: 0, never: 0 };
    const temperature: [Labels, number][] = [];
    const humidity: [Labels, number][] = [];
    const age: [Labels, number][] = [];
    const failures: [Labels, number][] = [];
    const refused: [Labels, number][] = [];
    const queued: [Labels, number][] = [];
    const up: [Labels, number][] = [];
    for (const d of devices) {
      const labels = { device: d.uid, room: d.room_uid ?? "" };
      const summary = live.summary(d, now);
      byState[summary.freshness.status] = (byState[summary.freshness.status] ?? 0) + 1;
      up.push([labels, summary.freshness.status === "online" ? 1 : 0]);
      const latest = live.latest(d);
      if (latest) {
        temperature.push([labels, latest.temperature]);
        humidity.push([labels, latest.humidity]);
      }
      if (d.last_seen_at !== null) age.push([labels, Math.max(0, (now - d.last_seen_at) / 1000)]);
      if (d.sensor_failures !== null) failures.push([labels, d.sensor_failures]);
      refused.push([labels, d.refused_count]);
      const waiting = outbox.get(d.uid);
      if (waiting !== undefined) queued.push([labels, waiting]);
    }
    m.gauge(
      "techtemp_devices",
      "Devices by status (online, late, offline, never: no reading yet).",
      Object.entries(byState).map(([state, n]) => [{ state }, n]),
    );
    m.gauge("techtemp_metrics_devices_omitted", "Devices beyond metrics_max_devices, without series of their own.", omitted);
    m.gauge("techtemp_device_up", "1 while the device is online (its last reading at most 2 intervals old).", up);
    m.gauge("techtemp_device_temperature_celsius", "The device's latest temperature.", temperature);
    m.gauge("techtemp_device_humidity_percent", "The device's latest relative humidity.", humidity);
    m.gauge("techtemp_device_last_seen_age_seconds", "Seconds since the device was last heard from.", age);
    m.gauge("techtemp_device_sensor_failures", "Consecutive failed sensor reads the device reported.", failures);
    m.counter("techtemp_device_readings_refused_total", "Readings of the device refused, since it was registered.", refused);
    m.gauge("techtemp_device_outbox_readings", "Readings waiting in the device's outbox, as its status reported.", queued);

    // ---- storage ----
    m.gauge("techtemp_database_size_bytes", "Size of techtemp.db.", fileSize(deps.dbPath));
    m.gauge(
      "techtemp_database_wal_size_bytes",
      "Size of techtemp.db-wal (checkpointed back into the database).",
      fileSize(`${deps.dbPath}-wal`),
    );
    const oldest = store.ops.oldestRawReading();
    const horizon = store.ops.rawHorizon();
    m.gauge(
      "techtemp_retention_raw_age_seconds",
      "Raw readings are kept this long (retention_raw_days; 0 = forever).",
      deps.retentionDays * 86_400,
    );
    m.gauge(
      "techtemp_retention_oldest_raw_reading_timestamp_seconds",
      "Time of the oldest raw reading kept (NaN: none).",
      oldest === null ? NaN : oldest / 1000,
    );
    m.gauge(
      "techtemp_retention_horizon_timestamp_seconds",
      "Raw readings before this may have been deleted (NaN: retention never ran).",
      horizon === null ? NaN : horizon / 1000,
    );
    // How far behind retention is: raw readings older than the retention age still kept.
    const cutoff = now - deps.retentionDays * 86_400_000;
    m.gauge(
      "techtemp_retention_backlog_seconds",
      "How much older than the retention age the oldest raw reading is (0: on time or off).",
      deps.retentionDays === 0 || oldest === null ? 0 : Math.max(0, (cutoff - oldest) / 1000),
    );

    // ---- backups ----
    const b = deps.backups.status();
    m.gauge(
      "techtemp_backup_last_success_timestamp_seconds",
      "When the newest good backup finished (NaN: none yet).",
      b.lastOk ? b.lastOk.finished_at / 1000 : NaN,
    );
    m.gauge(
      "techtemp_backup_age_seconds",
      "Age of the newest good backup (NaN: none yet).",
      b.lastOk ? Math.max(0, (now - b.lastOk.finished_at) / 1000) : NaN,
    );
    const result: [Labels, number][] = [];
    if (b.last) result.push([{ target: "local" }, b.last.error === null ? 1 : 0]);
    if (b.second) result.push([{ target: "second" }, b.second.problem === null ? 1 : 0]);
    m.gauge(
      "techtemp_backup_last_result",
      "1 when the last backup (local) or the second target worked, 0 when it failed.",
      result,
    );
    m.gauge(
      "techtemp_backup_last_duration_seconds",
      "How long the newest good backup took (copy and check).",
      b.lastOk ? b.lastOk.duration_ms / 1000 : NaN,
    );
    m.gauge("techtemp_backup_last_size_bytes", "Size of the newest good backup.", b.lastOk?.size_bytes ?? NaN);
    m.counter("techtemp_backups_total", "Backups since the server started, by result.", [
      [{ result: "ok" }, b.totals.ok],
      [{ result: "failed" }, b.totals.failed],
    ]);
    m.gauge("techtemp_backup_running", "1 while a backup runs.", b.running ? 1 : 0);

    // ---- the bridge ----
    const bridge = deps.bridge?.() ?? null;
    if (bridge) {
      m.gauge("techtemp_bridge_connected", "1 while the bridge is connected to the other broker.", bridge.connected ? 1 : 0);
      m.gauge("techtemp_bridge_buffered_messages", "Messages waiting for the other broker.", bridge.buffered);
      m.counter("techtemp_bridge_forwarded_total", "Messages the other broker acknowledged.", bridge.forwarded);
      m.counter("techtemp_bridge_dropped_total", "Readings dropped because the buffer was full (bridge_buffer).", bridge.dropped);
    }

    // ---- the process ----
    const p = processFigures();
    if (p.cpuSeconds !== null)
      m.counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", p.cpuSeconds);
    if (p.residentBytes !== null) m.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p.residentBytes);
    if (p.virtualBytes !== null) m.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtualBytes);
    if (p.startTimeSeconds !== null)
      m.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.", p.startTimeSeconds);
    if (p.openFds !== null) m.gauge("process_open_fds", "Open file descriptors.", p.openFds);
    if (p.maxFds !== null) m.gauge("process_max_fds", "Most open file descriptors allowed.", p.maxFds);
    return m.text();
  }

  return {
    text,
    /** Stops counting (the server is closing). */
    close(): void {
      unsubscribe();
      aedes.removeListener("subscribe", onSubscribe as never);
      aedes.removeListener("unsubscribe", onUnsubscribe as never);
      aedes.removeListener("clientDisconnect", onGone as never);
      aedes.unsubscribe("home/+/sensors/+/status", onStatus as never, () => {});
    },
  };
}

/** The metrics collector's interface. */
export type Metrics = ReturnType<typeof createMetrics>;
