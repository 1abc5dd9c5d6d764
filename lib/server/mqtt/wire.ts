// Checks on the bytes of each MQTT packet, before Aedes sees the packet:
// its size (refused from its length field, before the body is buffered) and
// its strings (topics, client id, username), which must be UTF-8 as
// Mosquitto checks it (mosquitto_validate_utf8: no NUL, no control
// characters, no non-characters; MQTT 3.1.1 §1.5.3). Aedes has neither
// check; its parser (mqtt-packet) reads the length in `_parseLength` and
// every string in `_parseString`, which are wrapped here. A failed check is
// a malformed packet: the parser's error, so Aedes closes the connection
// (without PUBACK or CONNACK, as Mosquitto does) and the broker logs the
// reason once per cause, address and minute. Tests: test/mqtt-protocol.test.ts.

import type { Client } from "aedes";

/** The parser's parts we wrap (mqtt-packet 9). */
interface MqttParser {
  packet: { cmd?: string; length: number; clientId?: string; protocolId?: string };
  _list: { slice(start: number, end: number): Uint8Array; readUInt16BE(offset: number): number; length: number };
  _pos: number;
  _parseLength(): boolean;
  _parseString(): string | null;
  _emitError(err: Error): void;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
// Mosquitto refuses U+0000–U+001F, U+007F–U+009F and the non-characters U+FDD0–U+FDEF, U+xFFFE, U+xFFFF.
const FORBIDDEN =
  /[\u0000-\u001f\u007f-\u009f\ufdd0-\ufdef\ufffe\uffff]|[\ud83f\ud87f\ud8bf\ud8ff\ud93f\ud97f\ud9bf\ud9ff\uda3f\uda7f\udabf\udaff\udb3f\udb7f\udbbf\udbff][\udffe\udfff]/;

/** Why `bytes` is not an MQTT UTF-8 string (as Mosquitto decides), or null when it is one. */
export function utf8Problem(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return "is not valid UTF-8";
  }
  return FORBIDDEN.test(text) ? "contains NUL, a control character or a non-character (not allowed in MQTT UTF-8)" : null;
}

/** Which string of a packet the parser is reading now, for the log line. */
function fieldName(packet: MqttParser["packet"]): string {
  if (packet.cmd === "connect") {
    if (packet.protocolId === undefined) return "protocol name";
    return packet.clientId === undefined ? "client id" : "will topic or username";
  }
  return packet.cmd === "publish" ? "topic" : "topic filter";
}

/**
 * Adds the size and UTF-8 checks to a client's parser. `max` is
 * mqtt_max_packet_bytes. The error's message is the reason the broker logs.
 */
export function guardParser(client: Client, max: number): void {
  const parser = (client as unknown as { _parser: MqttParser })._parser;
  const parseLength = parser._parseLength;
  parser._parseLength = function (this: MqttParser) {
    const ok = parseLength.call(this);
    if (ok && this.packet.length > max) {
      this._emitError(
        new Error(`packet of ${this.packet.length} bytes is larger than the limit of ${max} (mqtt_max_packet_bytes)`),
      );
      return false;
    }
    return ok;
  };
  const parseString = parser._parseString;
  parser._parseString = function (this: MqttParser) {
    // The string's bytes, read before the parser decodes them (it would turn bad bytes into U+FFFD).
    if (this._pos + 2 <= this._list.length) {
      const length = this._list.readUInt16BE(this._pos);
      const start = this._pos + 2;
      if (start + length <= this._list.length) {
        const problem = utf8Problem(this._list.slice(start, start + length));
        if (problem !== null) {
          const field = fieldName(this.packet);
          this._emitError(new Error(`malformed ${this.packet.cmd ?? "packet"}: its ${field} ${problem}`));
          // The parser stops at the first error it sees; make it see no other.
          this._emitError = () => {};
          return null;
        }
      }
    }
    return parseString.call(this);
  };
}
