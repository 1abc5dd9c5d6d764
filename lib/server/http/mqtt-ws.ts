// MQTT over WebSockets on the HTTP port (`ws://server:3000/mqtt`, and
// `wss://…:8443/mqtt` with TLS), for browser tools (MQTT Explorer, HiveMQ's
// web client, MQTT.js in a page): the earlier system's Mosquitto served it on
// 9001. Each WebSocket becomes a byte stream handed to the same broker as a
// TCP connection, so the CONNECT's credentials, the ACL, the packet and
// UTF-8 checks and every limit apply unchanged. The route itself is public
// (lib/server/http/auth/policy.ts): the MQTT login is the credential.

import { Elysia } from "elysia";
import { Duplex } from "node:stream";
import type { Broker } from "../mqtt/broker.ts";

/** The path of MQTT over WebSockets (MQTT.js' and most tools' default). */
export const MQTT_WS_PATH = "/mqtt";

/** Creates the `/mqtt` WebSocket route over `broker`. */
export function createMqttWebSocket({ broker }: { broker: Pick<Broker, "handleStream"> }) {
  const streams = new Map<string, Duplex>();
  return new Elysia().ws(MQTT_WS_PATH, {
    // Clients ask for the "mqtt" subprotocol and may refuse a server that does not name it.
    upgrade: { "sec-websocket-protocol": "mqtt" },
    // Frames are MQTT bytes, never JSON.
    parse: (_ws, message) => message,
    open(ws) {
      const stream = new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, callback) {
          ws.raw.send(chunk);
          callback();
        },
        final(callback) {
          ws.raw.close();
          callback();
        },
        destroy(err, callback) {
          streams.delete(ws.id);
          try {
            ws.raw.close();
          } catch {}
          callback(err);
        },
      });
      // Where the broker's logs and per-address limits look for the peer (as on a TCP socket).
      Object.assign(stream, { remoteAddress: ws.raw.remoteAddress, remotePort: "ws" });
      streams.set(ws.id, stream);
      broker.handleStream(stream, `${ws.raw.remoteAddress}:ws`);
    },
    message(ws, message) {
      const stream = streams.get(ws.id);
      if (!stream) return;
      stream.push(typeof message === "string" ? Buffer.from(message) : Buffer.from(message as Uint8Array));
    },
    close(ws) {
      const stream = streams.get(ws.id);
      streams.delete(ws.id);
      stream?.push(null);
      stream?.destroy();
    },
  });
}
