// Login throttling and the hashing bound, over real HTTP on an injected
// clock (no sleeping): a brute-force loop gets at most 100 failures per
// account in any hour (ASVS 2.2.1) and 300 per address, with 429 and
// Retry-After, and is never locked out for good; a burst of sign-ins hashes
// at most password_hash_concurrency at once and is answered 503 beyond the
// queue, logged once.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPasswords } from "../lib/server/auth/passwords.ts";
import { createLog } from "../lib/shared/log.ts";
import { startServer, type TestServer } from "./helpers.ts";
import { CHEAP_HASH, fieldErrors, postLogin } from "./auth-helpers.ts";

const MIN = 60_000;

describe("a brute-force loop", () => {
  let clock = Date.parse("2026-04-01T00:00:00Z");
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, { now: () => clock, hashParams: CHEAP_HASH });
    await server.auth.accounts.addViewer("bob", "bob's real password");
  });
  afterAll(() => server?.stop());

  test("an account takes 100 failed sign-ins in an hour; the 101st is 429 with Retry-After, even with the right password, without hashing", async () => {
    const start = clock;
    for (let i = 0; i < 100; i++) {
      clock = start + i * 1000;
      expect((await postLogin(server, "bob", `guess ${i}`)).status).toBe(401);
    }
    const hashed = server.auth.passwords.stats.completed;
    const refused = await postLogin(server, "BOB", "bob's real password");
    expect(refused.status).toBe(429);
    const retry = Number(refused.headers.get("retry-after"));
    expect(fieldErrors(await refused.text()).password).toBe(
      `too many failed sign-ins for this account in the last hour; try again in ${Math.ceil(retry / 60)} minutes`,
    );
    expect((await postLogin(server, "bob", "another guess")).status).toBe(429);
    expect(server.auth.passwords.stats.completed).toBe(hashed);
    expect(server.logs.filter((l) => l.includes("sign-in throttled") && l.includes("name=")).length).toBe(1);
    // Retry-After is when the oldest failures stop counting: then the owner of the account gets in.
    clock += retry * 1000 - 1000;
    expect((await postLogin(server, "bob", "bob's real password")).status).toBe(429);
    clock += 1000;
    expect((await postLogin(server, "bob", "bob's real password")).status).toBe(303);
    expect(clock - start).toBeLessThanOrEqual(70 * MIN);
  });

  test("kept up for three hours, it never gets more than 100 guesses in any 60 minutes, and is never locked out for good", async () => {
    await server.auth.accounts.addViewer("carol", "carol's real password");
    clock += 2 * 3_600_000;
    const start = clock;
    const guesses: number[] = [];
    for (let t = start; t < start + 3 * 3_600_000; t += 20_000) {
      clock = t;
      const res = await postLogin(server, "carol", `guess ${t}`);
      if (res.status === 401) guesses.push(t);
      else expect(res.status).toBe(429);
    }
    let most = 0;
    for (const [i, t] of guesses.entries()) most = Math.max(most, guesses.slice(i).filter((u) => u < t + 60 * MIN).length);
    expect(most).toBe(100);
    expect(guesses.length).toBeGreaterThanOrEqual(250);
  }, 60_000);

  test("an address takes 300 failures an hour across accounts, then each further account is refused too", async () => {
    clock += 5 * 3_600_000;
    for (let i = 0; i < 300; i++) expect((await postLogin(server, `user${i}`, "guess")).status).toBe(401);
    const res = await postLogin(server, "someone-else", "guess");
    expect(res.status).toBe(429);
    expect(fieldErrors(await res.text()).password).toStartWith("too many failed sign-ins for this address in the last hour");
    expect(server.logs.some((l) => l.includes("failures for this address") && l.includes("address=127.0.0.1"))).toBe(true);
  }, 60_000);
});

describe("password hashing", () => {
  test("a burst of sign-ins hashes at most password_hash_concurrency at once; beyond the queue it answers 503, logged once", async () => {
    // A cost high enough that the burst arrives while the first hash runs.
    const server = await startServer(
      { password_hash_concurrency: 1, password_hash_queue: 2 },
      { hashParams: { algorithm: "argon2id", memoryCost: 65536, timeCost: 4 } },
    );
    try {
      await server.auth.accounts.addViewer("dave", "dave's real password");
      const statuses = await Promise.all(
        Array.from({ length: 12 }, () => postLogin(server, "dave", "wrong").then((r) => r.status)),
      );
      const count = (s: number) => statuses.filter((x) => x === s).length;
      expect(count(503) + count(401)).toBe(12);
      expect(count(401)).toBeGreaterThanOrEqual(3);
      expect(count(503)).toBeGreaterThanOrEqual(1);
      expect(server.auth.passwords.stats.peakRunning).toBe(1);
      const busy = await postLogin(server, "dave", "wrong");
      if (busy.status === 503) expect(fieldErrors(await busy.text()).password).toBe("busy, try again in a moment");
      expect(server.logs.filter((l) => l.includes("password hashing busy")).length).toBe(1);
      expect(server.logs.find((l) => l.includes("password hashing busy"))).toContain("address=127.0.0.1");
    } finally {
      await server.stop();
    }
  }, 60_000);

  test("the semaphore hands each freed slot to the next in line: never more than the bound, every caller answered", async () => {
    const log = createLog({ level: "error" });
    const passwords = createPasswords({ concurrency: 2, queue: 100, log, params: CHEAP_HASH });
    const hash = await passwords.hash("x");
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => passwords.verify(i % 2 ? "x" : "y", hash)));
    expect(results.filter(Boolean)).toHaveLength(25);
    expect(passwords.stats).toMatchObject({ running: 0, waiting: 0, peakRunning: 2, refused: 0, completed: 51 });
  });
});
