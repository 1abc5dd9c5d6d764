// Who may do what, as the database keeps it: accounts, sessions, API tokens,
// each sensor's MQTT secret, enrollment tokens, login failures, and the
// runtime settings the owner switches on the pages (migration 3). Only hashes
// of secrets are stored; hashing and every decision live in lib/server/auth.

import type { Database } from "bun:sqlite";

/** An account. */
export interface User {
  id: number;
  name: string;
  role: "owner" | "viewer";
  password_hash: string;
  created_at: number;
  updated_at: number;
}

/** A session with its account (null user for a kiosk link's session). */
export interface SessionRow {
  id_hash: string;
  user_id: number | null;
  csrf: string;
  kiosk: number;
  created_at: number;
  last_seen_at: number;
  name: string | null;
  role: "owner" | "viewer" | null;
}

/** An API token (its secret is never stored, only its SHA-256). */
export interface ApiTokenRow {
  id: number;
  name: string;
  scope: "read" | "write";
  token_hash: string;
  /** The first characters of the token, to recognise it in a list. */
  prefix: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** An enrollment token (short-lived, for `install.sh sensor --enroll`). */
export interface EnrollmentRow {
  id: number;
  token_hash: string;
  created_at: number;
  expires_at: number;
  uses: number;
  max_uses: number;
  revoked_at: number | null;
}

/** The runtime settings the owner changes on the pages. */
export type SettingKey =
  | "accept_anonymous_sensors"
  | "public_read"
  | "setup_token_hash"
  | "setup_expires_at"
  // A password reset link (`techtemp-server reset-password NAME`): one at a time.
  | "reset_token_hash"
  | "reset_user_id"
  | "reset_expires_at"
  // The read-only kiosk link of a wall tablet, when the owner made one.
  | "kiosk_token_hash";

/** The auth tables' queries. `now` is the store's clock. */
export function createAuthStore(db: Database, options: { now: () => number }) {
  const now = options.now;
  const q = {
    userCount: db.query<{ n: number }, []>("SELECT count(*) AS n FROM users"),
    ownerCount: db.query<{ n: number }, []>("SELECT count(*) AS n FROM users WHERE role = 'owner'"),
    userByName: db.query<User, [string]>("SELECT * FROM users WHERE name = ?"),
    userById: db.query<User, [number]>("SELECT * FROM users WHERE id = ?"),
    users: db.query<User, []>("SELECT * FROM users ORDER BY name"),
    insertUser: db.query<{ id: number }, [string, string, string, number, number]>(
      "INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
    ),
    setPassword: db.query<null, [string, number, number]>("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?"),
    setRole: db.query<null, [string, number, number]>("UPDATE users SET role = ?, updated_at = ? WHERE id = ?"),
    deleteUser: db.query<null, [number]>("DELETE FROM users WHERE id = ?"),

    insertSession: db.query<null, [string, number | null, string, number, number, number]>(
      "INSERT INTO sessions (id_hash, user_id, csrf, kiosk, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    session: db.query<SessionRow, [string]>(
      `SELECT s.*, u.name, u.role FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?`,
    ),
    touchSession: db.query<null, [number, string]>("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?"),
    deleteSession: db.query<null, [string]>("DELETE FROM sessions WHERE id_hash = ?"),
    deleteUserSessions: db.query<null, [number]>("DELETE FROM sessions WHERE user_id = ?"),
    userSessionCount: db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM sessions WHERE user_id = ?"),
    deleteKioskSessions: db.query<null, []>("DELETE FROM sessions WHERE kiosk = 1"),
    deleteStaleSessions: db.query<null, [number, number]>("DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?"),

    insertToken: db.query<{ id: number }, [string, string, string, string, number]>(
      "INSERT INTO api_tokens (name, scope, token_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
    ),
    tokenByHash: db.query<ApiTokenRow, [string]>("SELECT * FROM api_tokens WHERE token_hash = ?"),
    tokenByName: db.query<ApiTokenRow, [string]>("SELECT * FROM api_tokens WHERE name = ?"),
    tokenById: db.query<ApiTokenRow, [number]>("SELECT * FROM api_tokens WHERE id = ?"),
    tokens: db.query<ApiTokenRow, []>("SELECT * FROM api_tokens ORDER BY revoked_at IS NOT NULL, name"),
    touchToken: db.query<null, [number, number]>("UPDATE api_tokens SET last_used_at = ? WHERE id = ?"),
    revokeToken: db.query<null, [number, number]>("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),

    setCredential: db.query<null, [number, string, number]>(
      `INSERT INTO device_credentials (device_id, secret_hash, created_at) VALUES (?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET secret_hash = excluded.secret_hash, created_at = excluded.created_at, last_used_at = NULL`,
    ),
    credential: db.query<{ device_id: number; secret_hash: string; created_at: number; last_used_at: number | null }, [string]>(
      `SELECT c.* FROM device_credentials c JOIN devices d ON d.id = c.device_id WHERE d.uid = ?`,
    ),
    touchCredential: db.query<null, [number, number]>("UPDATE device_credentials SET last_used_at = ? WHERE device_id = ?"),
    devicesWithoutCredentials: db.query<{ n: number }, []>(
      "SELECT count(*) AS n FROM devices d WHERE NOT EXISTS (SELECT 1 FROM device_credentials c WHERE c.device_id = d.id)",
    ),

    insertEnrollment: db.query<{ id: number }, [string, number, number, number]>(
      "INSERT INTO enrollment_tokens (token_hash, created_at, expires_at, max_uses) VALUES (?, ?, ?, ?) RETURNING id",
    ),
    useEnrollment: db.query<{ id: number }, [string, number]>(
      `UPDATE enrollment_tokens SET uses = uses + 1
       WHERE token_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2 AND uses < max_uses RETURNING id`,
    ),
    liveEnrollment: db.query<EnrollmentRow, [string, number]>(
      "SELECT * FROM enrollment_tokens WHERE token_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2 AND uses < max_uses",
    ),
    enrollmentById: db.query<EnrollmentRow, [number]>("SELECT * FROM enrollment_tokens WHERE id = ?"),
    enrollments: db.query<EnrollmentRow, [number]>(
      "SELECT * FROM enrollment_tokens WHERE revoked_at IS NULL AND expires_at > ? ORDER BY created_at",
    ),
    revokeEnrollment: db.query<null, [number, number]>("UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ?"),

    failures: db.query<{ window_start: number; count: number }, [string]>(
      "SELECT window_start, count FROM login_failures WHERE key = ?",
    ),
    setFailures: db.query<null, [string, number, number]>(
      "INSERT INTO login_failures (key, window_start, count) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
    ),
    clearFailures: db.query<null, [string]>("DELETE FROM login_failures WHERE key = ?"),
    // Keys under one prefix, as a range of the primary key (`user:alice@` … `user:alice@\uffff`).
    failureSlots: db.query<{ key: string; window_start: number; count: number }, [string, string, number]>(
      "SELECT key, window_start, count FROM login_failures WHERE key >= ?1 AND key < ?2 AND window_start >= ?3 ORDER BY window_start",
    ),
    clearFailurePrefix: db.query<null, [string, string]>("DELETE FROM login_failures WHERE key >= ?1 AND key < ?2"),
    pruneFailures: db.query<null, [number]>("DELETE FROM login_failures WHERE window_start < ?"),

    setting: db.query<{ value: string }, [string]>("SELECT value FROM settings WHERE key = ?"),
    setSetting: db.query<null, [string, string]>(
      "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
    deleteSetting: db.query<null, [string]>("DELETE FROM settings WHERE key = ?"),
  };

  return {
    users: {
      count: () => q.userCount.get()!.n,
      ownerExists: () => q.ownerCount.get()!.n > 0,
      /** How many owners there are (the last one cannot be deleted). */
      owners: () => q.ownerCount.get()!.n,
      byName: (name: string) => q.userByName.get(name),
      byId: (id: number) => q.userById.get(id),
      list: () => q.users.all(),
      /** Creates an account; a taken name is a UNIQUE constraint error the caller turns into a conflict. */
      create(user: { name: string; role: User["role"]; passwordHash: string }): number {
        const t = now();
        return q.insertUser.get(user.name, user.role, user.passwordHash, t, t)!.id;
      },
      setPassword: (id: number, passwordHash: string) => void q.setPassword.run(passwordHash, now(), id),
      setRole: (id: number, role: User["role"]) => void q.setRole.run(role, now(), id),
      /** Deletes an account and (by cascade) its sessions. */
      delete: (id: number) => void q.deleteUser.run(id),
    },
    sessions: {
      create(session: { idHash: string; userId: number | null; csrf: string; kiosk?: boolean }): void {
        const t = now();
        q.insertSession.run(session.idHash, session.userId, session.csrf, session.kiosk ? 1 : 0, t, t);
      },
      get: (idHash: string) => q.session.get(idHash),
      touch: (idHash: string) => void q.touchSession.run(now(), idHash),
      delete: (idHash: string) => void q.deleteSession.run(idHash),
      /** "Sign out everywhere". */
      deleteForUser: (userId: number) => void q.deleteUserSessions.run(userId),
      /** How many sessions an account has open. */
      countForUser: (userId: number) => q.userSessionCount.get(userId)!.n,
      /** Revokes every kiosk link's session. */
      deleteKiosk: () => void q.deleteKioskSessions.run(),
      /** Removes sessions idle since `idleBefore` or created before `createdBefore`. */
      deleteStale: (idleBefore: number, createdBefore: number) => void q.deleteStaleSessions.run(idleBefore, createdBefore),
    },
    tokens: {
      create(token: { name: string; scope: ApiTokenRow["scope"]; tokenHash: string; prefix: string }): number {
        return q.insertToken.get(token.name, token.scope, token.tokenHash, token.prefix, now())!.id;
      },
      byHash: (tokenHash: string) => q.tokenByHash.get(tokenHash),
      byName: (name: string) => q.tokenByName.get(name),
      byId: (id: number) => q.tokenById.get(id),
      list: () => q.tokens.all(),
      touch: (id: number) => void q.touchToken.run(now(), id),
      /** Revokes at once; true when the token was live. */
      revoke: (id: number) => q.revokeToken.run(now(), id).changes > 0,
    },
    credentials: {
      /** Sets (or replaces) a device's MQTT secret hash. */
      set: (deviceId: number, secretHash: string) => void q.setCredential.run(deviceId, secretHash, now()),
      forDevice: (uid: string) => q.credential.get(uid),
      touch: (deviceId: number) => void q.touchCredential.run(now(), deviceId),
      /** How many devices have no MQTT secret (anonymous sensors of an upgraded install). */
      devicesWithout: () => q.devicesWithoutCredentials.get()!.n,
    },
    enrollment: {
      create(token: { tokenHash: string; expiresAt: number; maxUses: number }): number {
        return q.insertEnrollment.get(token.tokenHash, now(), token.expiresAt, token.maxUses)!.id;
      },
      /** Counts one use of a live token; false when it is unknown, expired, used up or revoked. */
      use: (tokenHash: string) => q.useEnrollment.get(tokenHash, now()) !== null,
      /** The token when it is live (known, not expired, used up or revoked), without counting a use. */
      peek: (tokenHash: string) => q.liveEnrollment.get(tokenHash, now()),
      byId: (id: number) => q.enrollmentById.get(id),
      live: () => q.enrollments.all(now()),
      revoke: (id: number) => void q.revokeEnrollment.run(now(), id),
    },
    failures: {
      /** Failures under `key` since `windowStart` (older windows count as none). */
      count(key: string, windowStart: number): number {
        const row = q.failures.get(key);
        return row && row.window_start >= windowStart ? row.count : 0;
      },
      /** Adds one failure; a window older than `windowStart` starts again at 1. Returns the new count. */
      add(key: string, windowStart: number): number {
        const row = q.failures.get(key);
        const count = row && row.window_start >= windowStart ? row.count + 1 : 1;
        q.setFailures.run(key, row && row.window_start >= windowStart ? row.window_start : now(), count);
        return count;
      },
      clear: (key: string) => void q.clearFailures.run(key),
      /** Every key starting with `prefix` whose window started at or after `since`, oldest first. */
      slots: (prefix: string, since: number) => q.failureSlots.all(prefix, `${prefix}\uffff`, since),
      /** Forgets every key starting with `prefix`. */
      clearPrefix: (prefix: string) => void q.clearFailurePrefix.run(prefix, `${prefix}\uffff`),
      prune: (before: number) => void q.pruneFailures.run(before),
    },
    settings: {
      get: (key: SettingKey) => q.setting.get(key)?.value ?? null,
      set: (key: SettingKey, value: string) => void q.setSetting.run(key, value),
      delete: (key: SettingKey) => void q.deleteSetting.run(key),
    },
  };
}

/** The auth tables' interface. */
export type AuthStore = ReturnType<typeof createAuthStore>;
