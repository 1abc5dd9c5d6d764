// Random secrets and their hashes: API tokens, sensor MQTT passwords, session
// ids, enrollment and setup tokens. Each is 32 random bytes, so a fast hash
// (SHA-256) is enough to store it: there is nothing to guess by brute force,
// unlike a person's password (passwords.ts uses argon2id).

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A new secret: 32 random bytes in base64url (43 characters), after `prefix` (e.g. `tt_` for API tokens). */
export function newSecret(prefix = ""): string {
  return prefix + randomBytes(32).toString("base64url");
}

/** The SHA-256 of a secret, hex: what the database keeps. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/**
 * What a device's secret hash becomes when its MQTT credentials are withdrawn
 * (`DELETE /api/v1/devices/:uid/mqtt-password`): not hex, so no secret matches it,
 * while the device still counts as having a secret of its own (an anonymous
 * client cannot publish as it either). A new password or enrollment replaces it.
 */
export const WITHDRAWN_SECRET_HASH = "withdrawn";

/** Whether `secret` hashes to `hash`, in constant time. */
export function secretMatches(secret: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(secret), "hex");
  const b = Buffer.from(hash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}
