// Numbered schema migrations. Entry N (0-based) takes the database from
// `PRAGMA user_version = N` to N + 1. Never edit a migration that has shipped:
// add a new one at the end.

import type { Database } from "bun:sqlite";

/** A migration step, run inside a transaction. */
export type Migration = (db: Database) => void;

export const migrations: Migration[] = [
  // 1: rooms, devices, placements with history, readings.
  (db) => {
    db.exec(`
      CREATE TABLE rooms (
        id         INTEGER PRIMARY KEY,
        uid        TEXT NOT NULL UNIQUE,
        name       TEXT NOT NULL,
        floor      TEXT,
        side       TEXT,
        created_at INTEGER NOT NULL
      );

      CREATE TABLE devices (
        id                 INTEGER PRIMARY KEY,
        uid                TEXT NOT NULL UNIQUE,
        home_id            TEXT,               -- the {home_id} of its topics
        label              TEXT,
        model              TEXT,
        created_at         INTEGER NOT NULL,
        last_seen_at       INTEGER,
        -- from the retained status message: online | offline, when, what the agent announced
        state              TEXT,
        state_at           INTEGER,
        interval_s         INTEGER,
        version            TEXT,
        sensor_failures    INTEGER,
        last_error         TEXT,
        -- what the server asks of the device (the retained config message)
        config_interval_s  INTEGER,
        temperature_offset REAL NOT NULL DEFAULT 0,
        humidity_offset    REAL NOT NULL DEFAULT 0,
        -- readings refused (malformed, out of range), and the last reason
        refused_count      INTEGER NOT NULL DEFAULT 0,
        last_refusal       TEXT,
        last_refusal_at    INTEGER
      );

      -- A device is in at most one room at a time: to_ts NULL = current.
      -- An interval is [from_ts, to_ts).
      CREATE TABLE placements (
        id        INTEGER PRIMARY KEY,
        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        room_id   INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        from_ts   INTEGER NOT NULL,
        to_ts     INTEGER,
        CHECK (to_ts IS NULL OR to_ts >= from_ts)
      );
      CREATE INDEX placements_device ON placements(device_id, from_ts);
      CREATE INDEX placements_room ON placements(room_id, from_ts);
      CREATE UNIQUE INDEX placements_one_open ON placements(device_id) WHERE to_ts IS NULL;

      -- The big table, kept small: integer keys, WITHOUT ROWID so the primary
      -- key is the row (no second b-tree), values in hundredths (2 bytes each).
      -- ~21 bytes per reading on disk (bench/ingest.ts measures it).
      CREATE TABLE readings (
        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        ts        INTEGER NOT NULL,           -- epoch ms UTC
        t         INTEGER NOT NULL,           -- temperature, hundredths of °C
        h         INTEGER NOT NULL,           -- relative humidity, hundredths of %
        PRIMARY KEY (device_id, ts)
      ) WITHOUT ROWID;

      -- Rare facts about single readings, kept out of the big table:
      -- flags bit 0 = taken while the sensor's clock was not synchronised.
      CREATE TABLE reading_flags (
        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        ts        INTEGER NOT NULL,
        flags     INTEGER NOT NULL,
        PRIMARY KEY (device_id, ts)
      ) WITHOUT ROWID;
    `);
  },
  // 2: history (lib/server/store/rollups.ts): hourly and daily rollups per device, kept
  // forever (retention deletes raw readings only); the raw horizon; the
  // legacy import ledger.
  (db) => {
    for (const tier of ["hour", "day"]) {
      db.exec(`
        -- One row per device and UTC ${tier}: count, sum, min and max with
        -- the time each was first reached, values in hundredths like readings.
        CREATE TABLE rollup_${tier} (
          device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
          b         INTEGER NOT NULL,         -- bucket start, epoch ms UTC
          n         INTEGER NOT NULL,
          t_sum     INTEGER NOT NULL,
          t_min     INTEGER NOT NULL,
          t_min_ts  INTEGER NOT NULL,
          t_max     INTEGER NOT NULL,
          t_max_ts  INTEGER NOT NULL,
          h_sum     INTEGER NOT NULL,
          h_min     INTEGER NOT NULL,
          h_min_ts  INTEGER NOT NULL,
          h_max     INTEGER NOT NULL,
          h_max_ts  INTEGER NOT NULL,
          PRIMARY KEY (device_id, b)
        ) WITHOUT ROWID;
      `);
    }
    db.exec(`
      -- Small named facts: raw_horizon = raw readings before it may have been deleted by retention.
      CREATE TABLE history_meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;

      -- Per device, the span of readings imported from the earlier server, so a
      -- second import adds nothing even where retention has deleted the raw rows.
      CREATE TABLE legacy_import (
        device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        first_ts  INTEGER NOT NULL,
        last_ts   INTEGER NOT NULL
      );
    `);
  },
  // 3: who may do what (issue 11): accounts and their sessions, API tokens,
  // each sensor's MQTT secret, enrollment tokens, login failures, and runtime
  // settings. Secrets are stored only as SHA-256 (random 32-byte secrets) or
  // argon2id (passwords). An install that already holds devices is an upgrade
  // from a version without accounts: its sensors publish anonymously and its
  // API clients read without a token, so both stay allowed (shown as warnings
  // on the pages) until the owner turns them off.
  (db) => {
    db.exec(`
      CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role          TEXT NOT NULL CHECK (role IN ('owner', 'viewer')),
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      );
      CREATE TABLE sessions (
        id_hash      TEXT PRIMARY KEY,
        user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
        csrf         TEXT NOT NULL,
        kiosk        INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX sessions_user ON sessions (user_id);
      CREATE TABLE api_tokens (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE COLLATE NOCASE,
        scope        TEXT NOT NULL CHECK (scope IN ('read', 'write')),
        token_hash   TEXT NOT NULL UNIQUE,
        prefix       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at   INTEGER
      );
      CREATE TABLE device_credentials (
        device_id    INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        secret_hash  TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER
      );
      CREATE TABLE enrollment_tokens (
        id         INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        uses       INTEGER NOT NULL DEFAULT 0,
        max_uses   INTEGER NOT NULL,
        revoked_at INTEGER
      );
      CREATE TABLE login_failures (
        key          TEXT PRIMARY KEY,
        window_start INTEGER NOT NULL,
        count        INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `);
    const upgrade = db.query<{ n: number }, []>("SELECT count(*) AS n FROM devices").get()!.n > 0 ? "1" : "0";
    const set = db.query("INSERT INTO settings (key, value) VALUES (?, ?)");
    set.run("accept_anonymous_sensors", upgrade);
    set.run("public_read", upgrade);
  },
  // 4: alerts (issue 12; lib/server/store/alerts.ts): rules, incidents, notification
  // channels, the notification outbox (a row is committed before it is sent and
  // marked sent after, like the sensor's outbox), how far each device's readings
  // were evaluated, and the alert settings. Incidents copy the names they show
  // (rule, device, room) so their history outlives a deleted rule or device.
  (db) => {
    db.exec(`
      CREATE TABLE alert_rules (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('threshold', 'stale', 'failures', 'stuck', 'jump', 'mould')),
        metric      TEXT CHECK (metric IN ('temperature', 'humidity', 'dew_point')),
        min         REAL,
        max         REAL,
        hysteresis  REAL NOT NULL DEFAULT 0,
        duration_s  INTEGER NOT NULL DEFAULT 0,
        intervals   INTEGER,              -- stale: late after this many of the device's intervals
        failures    INTEGER,              -- failures: this many failed sensor reads in a row
        dew_margin  REAL,                 -- mould: air within this many °C of its dew point
        severity    TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
        -- the scope: one room (whatever device is in it), one device, or neither = every placed device
        room_id     INTEGER REFERENCES rooms(id) ON DELETE CASCADE,
        device_id   INTEGER REFERENCES devices(id) ON DELETE CASCADE,
        enabled     INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        CHECK (room_id IS NULL OR device_id IS NULL)
      );

      CREATE TABLE alert_incidents (
        id              INTEGER PRIMARY KEY,
        rule_id         INTEGER REFERENCES alert_rules(id) ON DELETE SET NULL,
        rule_name       TEXT NOT NULL,
        kind            TEXT NOT NULL,
        metric          TEXT,
        severity        TEXT NOT NULL,
        device_uid      TEXT NOT NULL,
        device_name     TEXT NOT NULL,
        home_id         TEXT NOT NULL,
        room_uid        TEXT,
        room_name       TEXT,
        state           TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
        started_at      INTEGER NOT NULL,   -- when the condition began (its first reading)
        opened_at       INTEGER NOT NULL,   -- when the rule fired
        value           REAL,               -- the value that fired it
        threshold       REAL,
        peak            REAL,
        peak_at         INTEGER,
        last_value      REAL,
        message         TEXT NOT NULL,
        acknowledged_at INTEGER,
        acknowledged_by TEXT,
        ended_at        INTEGER,
        end_reason      TEXT,
        repeats         INTEGER NOT NULL DEFAULT 0,
        last_notified_at INTEGER NOT NULL
      );
      -- At most one incident per rule and device is not resolved.
      CREATE UNIQUE INDEX alert_incidents_active ON alert_incidents (rule_id, device_uid) WHERE state != 'resolved';
      CREATE INDEX alert_incidents_started ON alert_incidents (started_at);

      CREATE TABLE alert_channels (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
        kind          TEXT NOT NULL CHECK (kind IN ('ntfy', 'webhook', 'email')),
        config        TEXT NOT NULL,        -- JSON; its secrets are never sent back by the API or the pages
        min_severity  TEXT NOT NULL DEFAULT 'info' CHECK (min_severity IN ('critical', 'warning', 'info')),
        enabled       INTEGER NOT NULL DEFAULT 1,
        created_at    INTEGER NOT NULL,
        last_ok_at    INTEGER,
        last_error    TEXT,
        last_error_at INTEGER
      );

      -- Each notification to each channel, committed before it is sent: the dedup key
      -- keeps one incident event from being queued twice (a replay after a restart).
      CREATE TABLE alert_outbox (
        id          INTEGER PRIMARY KEY,
        channel_id  INTEGER NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
        incident_id INTEGER REFERENCES alert_incidents(id) ON DELETE SET NULL,
        event       TEXT NOT NULL CHECK (event IN ('opened', 'repeat', 'resolved', 'test', 'digest')),
        dedup       TEXT NOT NULL UNIQUE,
        severity    TEXT NOT NULL,
        payload     TEXT NOT NULL,          -- the notification as JSON (title, message, incident…)
        created_at  INTEGER NOT NULL,
        next_at     INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
        sent_at     INTEGER,
        last_error  TEXT
      );
      CREATE INDEX alert_outbox_pending ON alert_outbox (channel_id, id) WHERE state = 'pending';
      CREATE INDEX alert_outbox_incident ON alert_outbox (incident_id);

      -- Per device, the newest reading whose rules ran: a restart evaluates only what came after.
      CREATE TABLE alert_watermarks (
        device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        ts        INTEGER NOT NULL
      );

      CREATE TABLE alert_settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `);
  },
  // 5 (issue 15): the home's time zone and outdoor weather. rollup_zone names
  // the zone of rollup_day's days: the rollups written before were UTC days
  // (rollups.ts ensureRollupZone rebuilds them when the home's zone differs).
  // weather_hours caches Open-Meteo's hourly outdoor readings (lib/server/weather/),
  // weather_state when it was last asked and what it answered.
  (db) => {
    db.exec(`
      CREATE TABLE rollup_zone (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        zone TEXT NOT NULL
      );
      INSERT INTO rollup_zone (id, zone) VALUES (1, 'UTC');

      CREATE TABLE weather_hours (
        ts INTEGER PRIMARY KEY,              -- hour start, epoch ms UTC
        t  INTEGER,                          -- air temperature at 2 m, hundredths of °C
        h  INTEGER                           -- relative humidity at 2 m, hundredths of %
      ) WITHOUT ROWID;
      CREATE TABLE weather_state (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        place         TEXT NOT NULL,         -- "latitude,longitude" the hours are for
        attempted_at  INTEGER NOT NULL,      -- last request (success or not)
        ok_at         INTEGER,               -- last successful one
        error         TEXT                   -- why the last one failed (null = it did not)
      );
    `);
  },
  // 6: backups (issue 13, lib/server/backup): each scheduled, manual or command-line backup,
  // with its size, duration, the integrity check of the copy and the second target's
  // result; failures too (error set). The newest 500 are kept (store/backup.ts).
  (db) => {
    db.exec(`
      CREATE TABLE backups (
        id            INTEGER PRIMARY KEY,
        started_at    INTEGER NOT NULL,
        finished_at   INTEGER NOT NULL,
        trigger       TEXT NOT NULL,        -- schedule | manual | command
        file          TEXT,                 -- name in the backup directory; NULL = no file kept
        size_bytes    INTEGER,
        duration_ms   INTEGER NOT NULL,
        integrity     TEXT,                 -- 'ok' or what integrity_check found in the copy
        error         TEXT,                 -- NULL = it worked
        second_target TEXT                  -- NULL = none configured, 'ok', or why it failed
      );
    `);
  },
  // 7 (issue 16): what the broker keeps across restarts, as the earlier Mosquitto did (its persistence file):
  // retained messages, and the subscriptions of persistent sessions (clean session off).
  (db) => {
    db.exec(`
      CREATE TABLE mqtt_retained (
        topic   TEXT PRIMARY KEY,
        payload BLOB NOT NULL,
        qos     INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE mqtt_subscriptions (
        client_id TEXT NOT NULL,
        topic     TEXT NOT NULL,
        qos       INTEGER NOT NULL,
        PRIMARY KEY (client_id, topic)
      ) WITHOUT ROWID;
    `);
  },
];
