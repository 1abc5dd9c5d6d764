// Issue 16, HTTP bodies: a body over http_max_body_bytes is refused before
// it is read whole, whether it announces its length or comes chunked, so 8
// concurrent 50 MB posts cannot take a Pi's memory (456 MB before). Raw TCP
// sockets, so the client holds no body either.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { startServer, withTimeout, type TestServer } from "./helpers.ts";

let server: TestServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

/**
 * Posts `total` bytes to `path` over a raw socket, 64 KiB at a time, as fast
 * as the server takes them; resolves with the status line (or "" if the
 * connection ended without one) and how many bytes were written.
 */
function post(path: string, total: number, chunked: boolean): Promise<{ status: string; written: number; chunked: boolean }> {
  const port = Number(new URL(server.url).port);
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let reply = "";
    let written = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ status: reply.split("\r\n")[0] ?? "", written, chunked });
    };
    socket.on("data", (d) => {
      reply += d.toString("latin1");
      if (reply.includes("\r\n\r\n")) finish();
    });
    socket.on("error", finish);
    socket.on("close", finish);
    socket.on("connect", () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${server.token}\r\n` +
          `Content-Type: application/x-www-form-urlencoded\r\n` +
          (chunked ? "Transfer-Encoding: chunked\r\n\r\n" : `Content-Length: ${total}\r\n\r\n`),
      );
      const chunk = Buffer.alloc(65536, "a");
      const pump = () => {
        while (!done && written < total) {
          const piece = chunked ? Buffer.concat([Buffer.from("10000\r\n"), chunk, Buffer.from("\r\n")]) : chunk;
          written += chunk.length;
          if (!socket.write(piece)) return void socket.once("drain", pump);
        }
        if (!done && chunked) socket.write("0\r\n\r\n");
      };
      // A declared length is refused from the headers alone: give the answer a moment before the body,
      // or the server's close with unread bytes (a reset) could throw the 413 away before it is read.
      if (chunked) pump();
      else setTimeout(pump, 1000);
    });
  });
}

test("a 50 MB body is refused before it is read: Content-Length at once (413), chunked at the limit; the server is fine", async () => {
  const rssBefore = process.memoryUsage().rss;
  const results = await withTimeout(
    Promise.all(Array.from({ length: 8 }, (_, i) => post(i % 2 ? "/api/v1/rooms" : "/rooms", 50 * 1024 * 1024, i % 4 >= 2))),
    30_000,
    "8 posts of 50 MB",
  );
  for (const r of results) {
    // A chunked body is cut at the limit: the 413 comes, or the reset of a close with unread bytes.
    if (r.chunked) expect(["HTTP/1.1 413", ""]).toContain(r.status.slice(0, 12));
    else expect(r.status).toStartWith("HTTP/1.1 413");
    expect(r.written).toBeLessThan(50 * 1024 * 1024);
  }
  // Most of each body was never sent: the server answered (and closed) early.
  const sent = results.reduce((n, r) => n + r.written, 0);
  expect(sent).toBeLessThan(8 * 50 * 1024 * 1024);
  // The whole test process (client and server) grew by far less than one body per post (it was 456 MB).
  expect(process.memoryUsage().rss - rssBefore).toBeLessThan(150 * 1024 * 1024);
  expect((await server.api("/health")).body).toEqual({ status: "ok" });
  // A normal body still works.
  expect((await server.api("/api/v1/rooms", { body: { name: "Small body" } })).status).toBe(201);
}, 60_000);
