// A subscriber that stops reading must not hold up anybody else (issue 16).
// Aedes completes a message only once every subscriber's socket has taken
// it; behind a subscriber that stopped reading, its queue (mqemitter) fills
// and the publishers on those topics stop being served until that
// subscriber is cut (~10 s, the drain timeout). Mosquitto instead keeps a
// bounded queue per client and drops for that client alone.
//
// Here each live delivery to a client is handed to its socket and counted
// as done at once; the bytes wait in that socket's buffer, at most
// `maxOutgoingBytes` of them: beyond, messages to that client are dropped
// (counted, logged once a minute with its client id and address). The drain
// timeout still cuts a client whose buffer does not move for 10 s. The
// retained messages sent at SUBSCRIBE are that client's own stream and keep
// their back-pressure (they never hold up a publisher).

import type { Client } from "aedes";

type Deliver = (packet: { retain?: boolean; brokerId?: string | null }, cb: (err?: Error | null) => void) => void;

const noop = () => {};

/**
 * Makes `client`'s deliveries never wait for its socket. Call it as the
 * connection comes, before it subscribes (subscriptions capture the
 * functions). `onDrop` is called for each message dropped for it, `onSent`
 * for each one handed to its connection.
 */
export function unblockDelivery(
  client: Client,
  maxOutgoingBytes: number,
  events: { onDrop(client: Client): void; onSent(): void },
): void {
  const c = client as unknown as { deliver0: Deliver; deliverQoS: Deliver; conn: { writableLength?: number } };
  for (const name of ["deliver0", "deliverQoS"] as const) {
    const original = c[name];
    c[name] = (packet, cb) => {
      // Retained messages sent at SUBSCRIBE: no brokerId (Aedes makes them so), back-pressure kept.
      if (packet.retain && !packet.brokerId) {
        events.onSent();
        return original(packet, cb);
      }
      if ((c.conn.writableLength ?? 0) > maxOutgoingBytes) {
        events.onDrop(client);
      } else {
        events.onSent();
        original(packet, noop);
      }
      setImmediate(cb);
    };
  }
}
