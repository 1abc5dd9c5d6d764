// The agent's MQTT 3.1.1 client: what a sensor needs and nothing more, over
// Bun's own sockets (Bun.connect, TCP or TLS). CONNECT with a last will,
// PUBLISH at QoS 0 or 1 with a callback on its PUBACK, one SUBSCRIBE, the
// retained messages that come back (acknowledged at QoS 1), PINGREQ for the
// keepalive and DISCONNECT (SPEC "MQTT contract").
//
// Why not MQTT.js: on a Pi the agent's memory is mostly code. bench/agent.ts
// and the measurements in the README: loading MQTT.js (with mqtt-packet,
// readable-stream, bl, debug) and node:net/node:tls costs ~16 MB of RSS in the
// compiled agent; this file and Bun.connect cost a few hundred KB. The
// server's broker is still Aedes on mqtt-packet; this client is tested against
// it and against Mosquitto (test/sensor-mqtt-client.test.ts).
//
// Bounds: a packet from the broker larger than MAX_INCOMING_BYTES closes the
// connection with an error naming its size (the agent only ever receives its
// small retained config); what waits to be written is bounded by the caller
// (the drain keeps at most MAX_IN_FLIGHT readings unacknowledged).

/** The largest packet accepted from the broker (bytes, fixed header included). */
export const MAX_INCOMING_BYTES = 64 * 1024;

/** An error of the connection; `code` is the CONNACK return code (1-5) or the TLS/socket code. */
export class MqttError extends Error {
  code?: string | number;
  constructor(message: string, code?: string | number) {
    super(message);
    this.name = "MqttError";
    if (code !== undefined) this.code = code;
  }
}

/** CONNACK return codes of MQTT 3.1.1, as MQTT.js words them (the link's messages match on them). */
const REFUSED: Record<number, string> = {
  1: "Connection refused: Unacceptable protocol version",
  2: "Connection refused: Identifier rejected",
  3: "Connection refused: Server unavailable",
  4: "Connection refused: Bad username or password",
  5: "Connection refused: Not authorized",
};

export interface MqttClientOptions {
  host: string;
  port: number;
  /** null = plain TCP; otherwise TLS trusting `ca` (the system's CAs when absent), checking `serverName`. */
  tls: { ca?: string | Buffer; serverName?: string } | null;
  clientId: string;
  username?: string;
  password?: string;
  keepaliveS: number;
  /** Clean session (the agent's: its outbox is its session). */
  clean: boolean;
  will?: { topic: string; payload: string; qos: 0 | 1; retain: boolean };
  /** No CONNACK within this long: the attempt fails (ms). */
  connectTimeoutMs: number;
}

export interface MqttClientEvents {
  /** The broker accepted the connection (CONNACK 0). */
  connect(): void;
  /** A PUBLISH from the broker (acknowledged at QoS 1 once this returns). */
  message(topic: string, payload: Buffer, retained: boolean): void;
  /** Something went wrong; `close` follows. */
  error(err: MqttError): void;
  /** The connection is gone (or never came); once per client. */
  close(): void;
}

type Callback = (err?: Error) => void;

// ---- encoding ----

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** A packet: its first byte, then the parts of its body (strings are MQTT strings: length-prefixed UTF-8). */
function packet(first: number, ...parts: (Buffer | string | number[])[]): Buffer {
  const bodies = parts.map((p) => {
    if (typeof p !== "string") return Buffer.isBuffer(p) ? p : Buffer.from(p);
    const s = Buffer.from(p, "utf8");
    if (s.length > 0xffff) throw new MqttError(`a string of ${s.length} bytes is longer than MQTT allows (65,535)`);
    return Buffer.concat([Buffer.from([s.length >> 8, s.length & 0xff]), s]);
  });
  const length = bodies.reduce((n, b) => n + b.length, 0);
  return Buffer.concat([Buffer.from([first, ...remainingLength(length)]), ...bodies]);
}

const u16 = (n: number) => [n >> 8, n & 0xff];

/** The CONNECT packet for `o`. */
export function connectPacket(o: MqttClientOptions): Buffer {
  let flags = o.clean ? 0x02 : 0;
  if (o.will) flags |= 0x04 | (o.will.qos << 3) | (o.will.retain ? 0x20 : 0);
  if (o.username !== undefined) flags |= 0x80;
  if (o.password !== undefined) flags |= 0x40;
  const parts: (Buffer | string | number[])[] = ["MQTT", [4, flags, ...u16(o.keepaliveS)], o.clientId];
  if (o.will) {
    const payload = Buffer.from(o.will.payload, "utf8");
    parts.push(o.will.topic, [...u16(payload.length)], payload);
  }
  if (o.username !== undefined) parts.push(o.username);
  if (o.password !== undefined) parts.push(o.password);
  return packet(0x10, ...parts);
}

// ---- decoding ----

/** One packet read from the broker. */
export interface Incoming {
  type: number;
  flags: number;
  body: Buffer;
}

/**
 * Splits `buffer` into whole packets; returns them, what is left (a packet
 * not complete yet) and, when the bytes after the whole packets are not MQTT
 * (a malformed length, a packet over MAX_INCOMING_BYTES), why.
 */
export function readPackets(buffer: Buffer): { packets: Incoming[]; rest: Buffer; error?: MqttError } {
  const packets: Incoming[] = [];
  let at = 0;
  for (;;) {
    if (buffer.length - at < 2) break;
    let length = 0;
    let multiplier = 1;
    let i = at + 1;
    let complete = false;
    for (let n = 0; n < 4 && i < buffer.length; n++, i++) {
      length += (buffer[i]! & 0x7f) * multiplier;
      multiplier *= 128;
      if ((buffer[i]! & 0x80) === 0) {
        complete = true;
        i++;
        break;
      }
      if (n === 3) {
        const error = new MqttError("malformed packet from the broker: its remaining length runs past 4 bytes");
        return { packets, rest: buffer.subarray(at), error };
      }
    }
    if (!complete) break; // the length's bytes are not all here yet
    const total = i - at + length;
    if (total > MAX_INCOMING_BYTES) {
      const error = new MqttError(
        `a packet of ${total} bytes from the broker is larger than the agent accepts (${MAX_INCOMING_BYTES})`,
      );
      return { packets, rest: buffer.subarray(at), error };
    }
    if (buffer.length - at < total) break;
    packets.push({ type: buffer[at]! >> 4, flags: buffer[at]! & 0x0f, body: buffer.subarray(i, i + length) });
    at += total;
  }
  return { packets, rest: at === 0 ? buffer : buffer.subarray(at) };
}

// ---- the client ----

/** A connection to the broker; connecting starts at once. */
export interface MqttClient {
  /** Publishes; at QoS 1 `cb` runs on the PUBACK (or with an error when the connection closes first). */
  publish(topic: string, payload: string | Buffer, options: { qos: 0 | 1; retain?: boolean }, cb?: Callback): void;
  /** Subscribes to one topic filter; `cb` runs on the SUBACK (an error when the broker refused it). */
  subscribe(topic: string, options: { qos: 0 | 1 }, cb?: Callback): void;
  /** Closes: `force` drops the socket at once; otherwise DISCONNECT is sent first. `cb` runs once closed. */
  end(force: boolean, cb?: () => void): void;
}

export function connectMqtt(options: MqttClientOptions, on: MqttClientEvents): MqttClient {
  type Socket = Awaited<ReturnType<typeof Bun.connect>>;
  let socket: Socket | null = null;
  let closed = false;
  let connected = false;
  let input: Buffer = Buffer.alloc(0);
  /** Bytes the socket did not take yet (Bun's write may take part of a buffer); sent on `drain`. */
  let output: Buffer[] = [];
  /** Packets written before the socket opened. */
  const early: Buffer[] = [];
  const waiting = new Map<number, Callback>();
  let nextId = 1;
  let pingOutstanding = false;
  /** A clean end asked for: the socket ends once what waits to be written is out. */
  let ending = false;
  const onClosed: (() => void)[] = [];

  const connectTimer = setTimeout(
    () => fail(new MqttError("no CONNACK from the broker in time (connect timeout)")),
    options.connectTimeoutMs,
  );
  let keepaliveTimer: ReturnType<typeof setInterval> | null = null;

  function write(buf: Buffer): void {
    if (closed) return;
    if (!socket) {
      early.push(buf);
      return;
    }
    if (output.length > 0) {
      output.push(buf);
      return;
    }
    const n = socket.write(buf);
    if (n < buf.length) output.push(buf.subarray(Math.max(0, n)));
  }

  function flush(): void {
    while (socket && output.length > 0) {
      const buf = output[0]!;
      const n = socket.write(buf);
      if (n < buf.length) {
        output[0] = buf.subarray(Math.max(0, n));
        return;
      }
      output.shift();
    }
    if (socket && ending && output.length === 0) socket.end();
  }

  function packetId(): number {
    for (let tries = 0; tries < 65_535; tries++) {
      const id = nextId;
      nextId = nextId === 65_535 ? 1 : nextId + 1;
      if (!waiting.has(id)) return id;
    }
    throw new MqttError("every packet id is in use");
  }

  /** Ends the connection once: errors go to `error`, callbacks waiting get an error, then `close`. */
  function fail(err: MqttError | null): void {
    if (closed) return;
    closed = true;
    clearTimeout(connectTimer);
    if (keepaliveTimer) clearInterval(keepaliveTimer);
    connected = false;
    socket?.terminate();
    socket = null;
    if (err) on.error(err);
    const gone = new MqttError("the connection closed before the broker answered");
    for (const cb of waiting.values()) cb(gone);
    waiting.clear();
    on.close();
    for (const cb of onClosed.splice(0)) cb();
  }

  function handle(p: Incoming): void {
    pingOutstanding = false;
    switch (p.type) {
      case 2: {
        // CONNACK
        if (p.body.length < 2) throw new MqttError("malformed CONNACK from the broker");
        const code = p.body[1]!;
        if (code !== 0) throw new MqttError(REFUSED[code] ?? `Connection refused: code ${code}`, code);
        clearTimeout(connectTimer);
        connected = true;
        if (options.keepaliveS > 0) {
          keepaliveTimer = setInterval(() => {
            // No answer since the last ping: the broker or the path to it is gone.
            if (pingOutstanding) return fail(new MqttError("Keepalive timeout: the broker did not answer a ping"));
            pingOutstanding = true;
            write(Buffer.from([0xc0, 0]));
          }, options.keepaliveS * 1000);
        }
        on.connect();
        return;
      }
      case 3: {
        // PUBLISH
        const qos = (p.flags >> 1) & 3;
        if (qos > 1) throw new MqttError(`a QoS ${qos} message from the broker (the agent subscribes at QoS 1 at most)`);
        if (p.body.length < 2) throw new MqttError("malformed PUBLISH from the broker");
        const topicLength = p.body.readUInt16BE(0);
        let at = 2 + topicLength;
        if (p.body.length < at + (qos > 0 ? 2 : 0)) throw new MqttError("malformed PUBLISH from the broker");
        const topic = p.body.toString("utf8", 2, at);
        let id = 0;
        if (qos > 0) {
          id = p.body.readUInt16BE(at);
          at += 2;
        }
        on.message(topic, Buffer.from(p.body.subarray(at)), (p.flags & 1) === 1);
        if (qos === 1) write(packet(0x40, u16(id)));
        return;
      }
      case 4: // PUBACK
      case 9: {
        // SUBACK
        if (p.body.length < 2) throw new MqttError("malformed acknowledgement from the broker");
        const id = p.body.readUInt16BE(0);
        const cb = waiting.get(id);
        waiting.delete(id);
        if (p.type === 9 && p.body.length > 2 && p.body[2] === 0x80) cb?.(new MqttError("the broker refused the subscription"));
        else cb?.();
        return;
      }
      case 13: // PINGRESP
        return;
      default:
        throw new MqttError(`unexpected packet type ${p.type} from the broker`);
    }
  }

  function received(data: Buffer): void {
    if (closed) return;
    input = input.length === 0 ? data : Buffer.concat([input, data]);
    try {
      const { packets, rest, error } = readPackets(input);
      // Copied when kept: `data` is Bun's buffer, reused after this handler returns.
      input = rest.length === 0 ? Buffer.alloc(0) : Buffer.from(rest);
      for (const p of packets) {
        if (closed) return;
        handle(p);
      }
      if (error) throw error;
    } catch (err) {
      fail(err instanceof MqttError ? err : new MqttError((err as Error).message));
    }
  }

  const socketError = (err: Error & { code?: string }) => fail(new MqttError(err.message, err.code));
  /** Worded as Node's (`connect ECONNREFUSED 127.0.0.1:1883`), which the agent's log said before. */
  const connectError = (err: Error & { code?: string }) =>
    err.code && /^E[A-Z]+$/.test(err.code)
      ? fail(new MqttError(`connect ${err.code} ${options.host}:${options.port}`, err.code))
      : socketError(err);
  Bun.connect({
    hostname: options.host,
    port: options.port,
    ...(options.tls ? { tls: { ...options.tls, rejectUnauthorized: true } } : {}),
    socket: {
      open(s) {
        if (closed) {
          s.end();
          return;
        }
        socket = s;
        write(connectPacket(options));
        for (const buf of early.splice(0)) write(buf);
      },
      data: (_s, data) => received(data),
      drain: () => flush(),
      error: (_s, err) => socketError(err),
      connectError: (_s, err) => connectError(err),
      close: () => fail(null),
      end: () => fail(null),
      handshake(_s, success, authorizationError) {
        // rejectUnauthorized closes the socket; say why first (the link names the CA to check).
        if (!success && authorizationError) {
          const e = authorizationError as Error & { code?: string };
          socketError(Object.assign(new Error(e.message), { code: e.code }));
        }
      },
    },
  }).catch((err: Error & { code?: string }) => connectError(err));

  return {
    publish(topic, payload, opts, cb) {
      if (closed) {
        cb?.(new MqttError("the connection is closed"));
        return;
      }
      const first = 0x30 | (opts.qos << 1) | (opts.retain ? 1 : 0);
      const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
      if (opts.qos === 0) {
        write(packet(first, topic, body));
        cb?.();
        return;
      }
      const id = packetId();
      if (cb) waiting.set(id, cb);
      else waiting.set(id, () => {});
      write(packet(first, topic, u16(id), body));
    },
    subscribe(topic, opts, cb) {
      if (closed) {
        cb?.(new MqttError("the connection is closed"));
        return;
      }
      const id = packetId();
      waiting.set(id, cb ?? (() => {}));
      write(packet(0x82, u16(id), topic, [opts.qos]));
    },
    end(force, cb) {
      if (cb) {
        if (closed) cb();
        else onClosed.push(cb);
      }
      if (closed) return;
      if (!force && connected && socket) {
        // A clean end: the broker sees DISCONNECT (no last will), then the socket closes.
        write(Buffer.from([0xe0, 0]));
        ending = true;
        flush();
        return;
      }
      fail(null);
    },
  };
}
