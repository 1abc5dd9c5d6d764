// MQTT over WebSockets on the HTTP port (`ws://server:3000/mqtt`, and
// `wss://…:8443/mqtt` with TLS), for browser tools (MQTT Explorer, HiveMQ's
// web client, MQTT.js in a page): the earlier system's Mosquitto served it on
// 9001. Each WebSocket becomes a byte stream handed to the same broker as a
// TCP connection, so the CONNECT's credentials, the ACL, the packet and
// UTF-8 checks and every limit apply unchanged. The route itself is public
// (lib/server/http/auth/policy.ts): the MQTT login is the credential.
//
// The bridge works on Bun's own WebSockets, so it serves both Elysia's route
// (plain HTTP, or HTTPS alone) and the HTTPS listener server.ts adds beside
// plain HTTP (`upgrade` there, since Elysia upgrades only on its own server).

import type { ServerWebSocket } from "bun";
import { Elysia } from "elysia";
import { Duplex } from "node:stream";
import type { Broker } from "../mqtt/broker.ts";

/** The path of MQTT over WebSockets (MQTT.js' and most tools' default). */
export const MQTT_WS_PATH = "/mqtt";

/** Clients ask for the "mqtt" subprotocol and may refuse a server that does not name it. */
const PROTOCOL_HEADERS = { "sec-websocket-protocol": "mqtt" };

type Socket = ServerWebSocket<unknown>;

/** Creates the bridge between Bun's WebSockets and the broker. */
export function createMqttWsBridge(broker: Pick<Broker, "handleStream">) {
  const streams = new Map<Socket, Duplex>();
  const bridge = {
    open(ws: Socket): void {
      const stream = new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, callback) {
          ws.send(chunk);
          callback();
        },
        final(callback) {
          ws.close();
          callback();
        },
        destroy(err, callback) {
          streams.delete(ws);
          try {
            ws.close();
          } catch {}
          callback(err);
        },
      });
      // Where the broker's logs and per-address limits look for the peer (as on a TCP socket).
      Object.assign(stream, { remoteAddress: ws.remoteAddress, remotePort: "ws" });
      streams.set(ws, stream);
      broker.handleStream(stream, `${ws.remoteAddress}:ws`);
    },
    message(ws: Socket, message: string | Uint8Array): void {
      streams.get(ws)?.push(typeof message === "string" ? Buffer.from(message) : Buffer.from(message));
    },
    close(ws: Socket): void {
      const stream = streams.get(ws);
      streams.delete(ws);
      stream?.push(null);
      stream?.destroy();
    },
    /**
     * For a listener of our own: upgrades a request for /mqtt and returns
     * true, or returns false (not ours, answer it as usual).
     */
    upgrade(
      request: Request,
      server: { upgrade(request: Request, options: { headers: Record<string, string>; data: unknown }): boolean },
    ) {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return false;
      if (new URL(request.url).pathname !== MQTT_WS_PATH) return false;
      return server.upgrade(request, { headers: PROTOCOL_HEADERS, data: null });
    },
  };
  return bridge;
}

/** The bridge's interface. */
export type MqttWsBridge = ReturnType<typeof createMqttWsBridge>;

/** Creates the `/mqtt` WebSocket route of the app over `bridge`. */
export function createMqttWebSocket(bridge: MqttWsBridge) {
  return new Elysia().ws(MQTT_WS_PATH, {
    upgrade: PROTOCOL_HEADERS,
    // Frames are MQTT bytes, never JSON.
    parse: (_ws, message) => message,
    open: (ws) => bridge.open(ws.raw as Socket),
    message: (ws, message) => bridge.message(ws.raw as Socket, message as string | Uint8Array),
    close: (ws) => bridge.close(ws.raw as Socket),
  });
}
