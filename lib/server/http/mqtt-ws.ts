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
import type { Log } from "../../shared/log.ts";
import type { Broker } from "../mqtt/broker.ts";

/** The path of MQTT over WebSockets (MQTT.js' and most tools' default). */
export const MQTT_WS_PATH = "/mqtt";

/** Clients ask for the "mqtt" subprotocol and may refuse a server that does not name it. */
const PROTOCOL_HEADERS = { "sec-websocket-protocol": "mqtt" };

type Socket = ServerWebSocket<unknown>;

/** A frame's room besides the largest packet: an MQTT fixed header is at most 5 bytes. */
const HEADER_BYTES = 5;
/** A refused frame or a slow reader is logged at most this often. */
const LOG_EVERY_MS = 60_000;

/**
 * Creates the bridge between Bun's WebSockets and the broker. `limits` go
 * into every listener's `websocket` options (Bun's defaults are 16 MB each):
 * a frame longer than the largest packet the broker takes is refused before
 * it is buffered, and a connection with `maxOutgoingBytes`
 * (mqtt_max_outgoing_bytes) waiting to go out to it is closed. Over TCP the
 * broker drops messages for such a subscriber instead (delivery.ts); a
 * WebSocket's frames are whole packets or parts of one, which cannot be
 * dropped without breaking the stream. The same bound holds for bytes
 * received and not yet taken by the broker.
 */
export function createMqttWsBridge(
  broker: Pick<Broker, "handleStream">,
  options: { maxPacketBytes: number; maxOutgoingBytes: number; log?: Log },
) {
  const streams = new Map<Socket, Duplex>();
  const limits = {
    maxPayloadLength: options.maxPacketBytes + HEADER_BYTES,
    // Room for a whole packet at least, however small the setting.
    backpressureLimit: Math.max(options.maxOutgoingBytes, options.maxPacketBytes + HEADER_BYTES),
    closeOnBackpressureLimit: true,
  };
  const loggedAt = { frame: -Infinity, behind: -Infinity, ahead: -Infinity };
  /** Logs a connection closed by a limit, once per cause and minute. */
  function closedByLimit(cause: keyof typeof loggedAt, message: string, ws: Socket): void {
    const at = performance.now();
    if (at - loggedAt[cause] < LOG_EVERY_MS) return;
    loggedAt[cause] = at;
    options.log?.warn(message, { address: ws.remoteAddress });
  }
  const bridge = {
    limits,
    open(ws: Socket): void {
      const stream = new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, callback) {
          // 0: dropped, the socket has backpressureLimit bytes waiting (a reader that stopped); the rest would be lost too.
          if (ws.send(chunk) === 0) {
            closedByLimit(
              "behind",
              `closed an MQTT over WebSockets connection that stopped reading: ${limits.backpressureLimit} bytes were waiting for it (mqtt_max_outgoing_bytes)`,
              ws,
            );
            ws.terminate();
          }
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
      const stream = streams.get(ws);
      if (!stream) return;
      // A client that sends faster than the broker takes its packets: closed at the same bound, not buffered without end.
      if (stream.readableLength > limits.backpressureLimit) {
        closedByLimit(
          "ahead",
          `closed an MQTT over WebSockets connection that sends faster than the broker takes: ${limits.backpressureLimit} bytes were waiting from it (mqtt_max_outgoing_bytes)`,
          ws,
        );
        ws.terminate();
        return;
      }
      stream.push(typeof message === "string" ? Buffer.from(message) : Buffer.from(message));
    },
    close(ws: Socket, code?: number, reason?: string): void {
      // Bun closes a connection whose frame is over maxPayloadLength with 1006 "Received too big message".
      if (code === 1009 || /too big/i.test(reason ?? ""))
        closedByLimit(
          "frame",
          `refused WebSocket frame: longer than mqtt_max_packet_bytes (${options.maxPacketBytes}) + ${HEADER_BYTES} bytes of header; connection closed`,
          ws,
        );
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
    close: (ws, code, reason) => bridge.close(ws.raw as Socket, code, reason),
  });
}
