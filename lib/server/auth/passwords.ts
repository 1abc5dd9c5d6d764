// People's passwords: argon2id through Bun.password, at OWASP's minimum cost
// (19 MiB, 2 passes, 1 lane). Each hash or verify holds 19 MiB for its
// duration, so they run behind a semaphore: at most `concurrency` at once,
// at most `queue` more waiting; beyond that a sign-in is refused at once
// with 503 "busy, try again" instead of piling up memory on a Pi. The refusal
// is logged once per minute with the address and account that hit it.
//
// Random 32-byte secrets (API tokens, sensor secrets) need no slow hash:
// secrets.ts keeps their SHA-256.

import { unavailable, invalid } from "../../shared/errors.ts";
import type { Log } from "../../shared/log.ts";
import { newSecret } from "./secrets.ts";

/** The cost every password is hashed with (OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1). */
export const ARGON2ID = { algorithm: "argon2id", memoryCost: 19456, timeCost: 2 } as const;

/** What Bun.password takes as the algorithm and its cost. */
export type HashParams = Parameters<typeof Bun.password.hash>[1];

/** The shortest and longest password accepted (ASVS 2.1.1 asks ≥ 12 for new systems; the design says 10; 2.1.2: at most 128). */
export const PASSWORD_LENGTH = [10, 128] as const;

/** Checks a new password's length; throws `invalid(field, …)`. */
export function checkNewPassword(field: string, password: string): void {
  const [min, max] = PASSWORD_LENGTH;
  if ([...password].length < min) throw invalid(field, `must be at least ${min} characters`);
  if ([...password].length > max) throw invalid(field, `must be at most ${max} characters`);
}

/** Who asked for a hash, for the log line when the queue is full. */
export interface HashClient {
  address?: string;
  name?: string;
}

/** What the semaphore has done so far. */
export interface HashStats {
  running: number;
  waiting: number;
  /** Requests refused because the queue was full. */
  refused: number;
  /** The most that ran at once. */
  peakRunning: number;
  /** Hashes and verifications done. */
  completed: number;
}

/** Creates the bounded password hasher. */
export function createPasswords(options: {
  concurrency: number;
  queue: number;
  log: Log;
  now?: () => number;
  params?: HashParams;
}) {
  const { concurrency, queue, log } = options;
  const now = options.now ?? Date.now;
  const params = options.params ?? ARGON2ID;
  const waiting: (() => void)[] = [];
  const stats: HashStats = { running: 0, waiting: 0, refused: 0, peakRunning: 0, completed: 0 };
  let loggedAt = -Infinity;
  let refusedSinceLog = 0;
  // A hash of a random password, so a sign-in for an unknown account costs as much as a real one.
  let dummy: Promise<string> | null = null;

  function refuse(client: HashClient): never {
    stats.refused++;
    refusedSinceLog++;
    if (now() - loggedAt >= 60_000) {
      log.warn("password hashing busy: sign-in refused with 503 (limit password_hash_concurrency + password_hash_queue)", {
        running: stats.running,
        waiting: waiting.length,
        refused: refusedSinceLog,
        address: client.address,
        name: client.name,
      });
      loggedAt = now();
      refusedSinceLog = 0;
    }
    throw unavailable("busy, try again in a moment");
  }

  async function slot<T>(client: HashClient, work: () => Promise<T>): Promise<T> {
    if (stats.running < concurrency) stats.running++;
    else {
      if (waiting.length >= queue) refuse(client);
      // The slot is handed over by the one that frees it: `running` already counts this one then.
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        stats.waiting = waiting.length;
      });
    }
    stats.peakRunning = Math.max(stats.peakRunning, stats.running);
    try {
      return await work();
    } finally {
      stats.completed++;
      const next = waiting.shift();
      stats.waiting = waiting.length;
      if (next) next();
      else stats.running--;
    }
  }

  return {
    stats,
    /** The argon2id hash of a password, when a slot is free (503 "busy" when the queue is full). */
    hash: (password: string, client: HashClient = {}): Promise<string> => slot(client, () => Bun.password.hash(password, params)),
    /**
     * Whether `password` matches `hash`. A null hash (no such account) is
     * checked against a dummy hash, so the answer takes as long either way.
     */
    async verify(password: string, hash: string | null, client: HashClient = {}): Promise<boolean> {
      if (hash === null) {
        dummy ??= slot(client, () => Bun.password.hash(newSecret(), params)).catch((err) => {
          dummy = null;
          throw err;
        });
        const target = await dummy;
        await slot(client, () => Bun.password.verify(password, target));
        return false;
      }
      return slot(client, () => Bun.password.verify(password, hash));
    },
  };
}

/** The bounded password hasher's interface. */
export type Passwords = ReturnType<typeof createPasswords>;
