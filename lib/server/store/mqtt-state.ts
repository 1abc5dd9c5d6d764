// What the broker keeps across restarts (issue 16), as the earlier system's
// Mosquitto did in its persistence file: retained messages and the
// subscriptions of persistent sessions. Written through as they change
// (lib/server/mqtt/bounds.ts calls these), read once at start. The messages
// queued for an absent persistent session stay in memory only (bounded).

import type { Database } from "bun:sqlite";

/** A retained message as kept. */
export interface RetainedRow {
  topic: string;
  payload: Uint8Array;
  qos: number;
}

/** A persistent session's subscription as kept. */
export interface SubscriptionRow {
  client_id: string;
  topic: string;
  qos: number;
}

/** Creates the broker state's statements over an open database. */
export function createMqttState(db: Database) {
  const q = {
    putRetained: db.query<null, [string, Uint8Array, number]>(
      "INSERT INTO mqtt_retained (topic, payload, qos) VALUES (?, ?, ?) ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos",
    ),
    deleteRetained: db.query<null, [string]>("DELETE FROM mqtt_retained WHERE topic = ?"),
    retained: db.query<RetainedRow, []>("SELECT topic, payload, qos FROM mqtt_retained ORDER BY topic"),
    putSubscription: db.query<null, [string, string, number]>(
      "INSERT INTO mqtt_subscriptions (client_id, topic, qos) VALUES (?, ?, ?) ON CONFLICT (client_id, topic) DO UPDATE SET qos = excluded.qos",
    ),
    deleteSubscription: db.query<null, [string, string]>("DELETE FROM mqtt_subscriptions WHERE client_id = ? AND topic = ?"),
    deleteSession: db.query<null, [string]>("DELETE FROM mqtt_subscriptions WHERE client_id = ?"),
    subscriptions: db.query<SubscriptionRow, []>(
      "SELECT client_id, topic, qos FROM mqtt_subscriptions ORDER BY client_id, topic",
    ),
  };
  return {
    /** Keeps a retained message (an empty payload removes it). */
    setRetained(topic: string, payload: Uint8Array, qos: number): void {
      if (payload.length === 0) q.deleteRetained.run(topic);
      else q.putRetained.run(topic, payload, qos);
    },
    /** Every retained message kept. */
    retained: (): RetainedRow[] => q.retained.all(),
    /** Keeps subscriptions of a persistent session. */
    addSubscriptions(clientId: string, subs: { topic: string; qos: number }[]): void {
      db.transaction(() => {
        for (const s of subs) q.putSubscription.run(clientId, s.topic, s.qos);
      })();
    },
    /** Forgets some subscriptions of a session. */
    removeSubscriptions(clientId: string, topics: string[]): void {
      db.transaction(() => {
        for (const t of topics) q.deleteSubscription.run(clientId, t);
      })();
    },
    /** Forgets a session (it connected with a clean session). */
    cleanSession: (clientId: string): void => void q.deleteSession.run(clientId),
    /** Every persistent session's subscriptions. */
    subscriptions: (): SubscriptionRow[] => q.subscriptions.all(),
  };
}

/** The broker state's interface. */
export type MqttState = ReturnType<typeof createMqttState>;
