// Sensors for the benchmarks' load generators: each a device with its own MQTT
// secret, as `install.sh sensor --enroll` makes them (hashed in the database,
// the password given to the client).

import { writeFileSync } from "node:fs";
import { hashSecret, newSecret } from "../lib/server/auth/secrets.ts";
import type { Store } from "../lib/server/store/store.ts";

/** An MQTT login: the device's uid and its secret. */
export interface Login {
  username: string;
  password: string;
}

/** Gives the device `uid` its own secret in `store`; returns its login. */
export function enrollSensor(store: Pick<Store, "setDeviceSecret">, uid: string): Login {
  const password = newSecret();
  store.setDeviceSecret(uid, hashSecret(password));
  return { username: uid, password };
}

/** Enrolls `n` sensors named bench-0000, bench-0001… (`digits` wide); returns their logins. */
export function enrollSensors(store: Pick<Store, "setDeviceSecret">, n: number, digits = 4): Login[] {
  return Array.from({ length: n }, (_, i) => enrollSensor(store, `bench-${String(i).padStart(digits, "0")}`));
}

/** Writes `logins` to `file` (owner-only) for a load generator (bench/ingest-load.ts's LOGINS); returns `file`. */
export function writeLogins(file: string, logins: Login[]): string {
  writeFileSync(file, JSON.stringify(logins), { mode: 0o600 });
  return file;
}
