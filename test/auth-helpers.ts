// Helpers of the security tests: the whole database as text (to prove a
// refused request changed nothing), sign-in through the real form, cookies
// read from answers, and a cheap password hash for tests that sign in many
// times (the production cost is measured by bench/login.ts).

import type { Database } from "bun:sqlite";
import type { HashParams } from "../lib/server/auth/passwords.ts";
import { run, type TestServer, type TestSession } from "./helpers.ts";

/** argon2id at a cost that takes a millisecond: for the brute-force loop, not for production. */
export const CHEAP_HASH: HashParams = { algorithm: "argon2id", memoryCost: 256, timeCost: 1 };

/** Every row of every table, as sorted lines of JSON: equal before and after means nothing changed. */
export function dumpDb(db: Database): string {
  const tables = db
    .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all();
  return tables
    .map(({ name }) => {
      const rows = db
        .query(`SELECT * FROM "${name}"`)
        .all()
        .map((r) => JSON.stringify(r))
        .sort();
      return `${name}\n${rows.join("\n")}`;
    })
    .join("\n\n");
}

/** The value of a cookie set by a response, or null. */
export function setCookie(res: Response, name: string): { value: string; attributes: string } | null {
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(";");
    const eq = pair!.indexOf("=");
    if (pair!.slice(0, eq).trim() === name)
      return { value: pair!.slice(eq + 1), attributes: attrs.map((a) => a.trim()).join("; ") };
  }
  return null;
}

/** Posts the sign-in form as a browser on the server's own origin would. */
export function postLogin(server: TestServer, name: string, password: string, next = "/"): Promise<Response> {
  return fetch(`${server.url}/login`, {
    method: "POST",
    body: new URLSearchParams({ name, password, next }),
    headers: { origin: server.url },
    redirect: "manual",
    signal: AbortSignal.timeout(10_000),
  });
}

/** Signs in through the form; the session (its CSRF token read from the page it opens). */
export async function login(server: TestServer, name: string, password: string): Promise<TestSession> {
  const res = await postLogin(server, name, password);
  if (res.status !== 303) throw new Error(`sign-in as ${name}: ${res.status} ${await res.text()}`);
  const cookie = `techtemp_session=${setCookie(res, "techtemp_session")!.value}`;
  const page = await (await fetch(`${server.url}/account`, { headers: { cookie } })).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!csrf) throw new Error("no CSRF token on the account page");
  return { cookie, csrf };
}

/** Runs `bun server.ts ARGS` (an operator command) against a server's data directory and port. */
export function command(server: TestServer, args: string[]) {
  return run(["bun", "server.ts", ...args], {
    cwd: `${import.meta.dir}/..`,
    env: {
      TECHTEMP_CONFIG: "/dev/null",
      TECHTEMP_DATA_DIR: server.dataDir,
      TECHTEMP_HOST: "127.0.0.1",
      TECHTEMP_HTTP_PORT: String(server.httpPort),
    },
  });
}

/** The problem shown next to each field of a page's form, by field id. */
export function fieldErrors(html: string): Record<string, string> {
  return Object.fromEntries(
    [...html.matchAll(/<span class="error" id="([\w-]+)-error" role="alert">([^<]*)<\/span>/g)].map((m) => [m[1]!, m[2]!]),
  );
}
