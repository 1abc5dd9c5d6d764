// The OpenAPI document: generated from the routes, so every API route is in
// it (a route added without it fails here), and every example it shows is
// accepted by the real server's validation; the /docs page renders it offline.

import { afterEach, expect, test } from "bun:test";
import { EXAMPLES, isDocumented, openApiPath } from "../lib/server/http/openapi.ts";
import { startServer, type TestServer } from "./helpers.ts";

let cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function server(): Promise<TestServer> {
  const s = await startServer({ backup_time: "off" });
  cleanup.push(() => s.stop());
  return s;
}

test("every route of the API is in /openapi.json, with its parameters and body schema", async () => {
  const s = await server();
  const { status, body: doc } = await s.api("/openapi.json");
  expect(status).toBe(200);
  expect(doc.openapi).toBe("3.1.0");
  const documented = s.routes
    .map((r) => r.split(" ") as [string, string])
    .filter(([method, path]) => isDocumented(path) && method !== "OPTIONS" && method !== "HEAD");
  expect(documented.length).toBeGreaterThan(30);
  const missing = documented.filter(([method, path]) => doc.paths[openApiPath(path)]?.[method.toLowerCase()] === undefined);
  expect(missing).toEqual([]);
  // And nothing that is not a route.
  const listed = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`),
  );
  expect(listed.length).toBe(new Set(documented.map(([m, p]) => `${m} ${openApiPath(p)}`)).size);
  // Schemas come from the routes: the body of POST /api/v1/devices names its fields and their rules.
  const post = doc.paths["/api/v1/devices"].post;
  expect(post.requestBody.content["application/json"].schema.required).toEqual(["device_uid", "room_name"]);
  expect(post.requestBody.content["application/json"].schema.properties.device_uid.description).toContain("1-50 characters");
  const history = doc.paths["/api/v1/rooms/{uid}/history"].get;
  expect(history.parameters.map((p: { name: string }) => p.name)).toEqual(["uid", "from", "to", "points", "bucket"]);
  expect(doc.paths["/health"].get.security).toEqual([]);
  expect(doc.paths["/api/v1/tokens"].post["x-access"]).toBe("write");
  // Every example names a route that exists.
  for (const key of Object.keys(EXAMPLES)) {
    const [method, path] = key.split(" ") as [string, string];
    expect({ key, found: doc.paths[path]?.[method.toLowerCase()] !== undefined }).toEqual({ key, found: true });
  }
});

test("every example is accepted by the real server's validation (no 400), and a broken one would not be", async () => {
  const s = await server();
  // What the examples refer to.
  await s.api("/api/v1/devices", { body: { device_uid: "aht20-f49c53", room_name: "Living room" } });
  for (const name of ["Bedroom", "Salon", "Salle à manger"]) await s.api("/api/v1/rooms", { body: { name } });
  const send = async (key: string, example: (typeof EXAMPLES)[string]) => {
    const [method, template] = key.split(" ") as [string, string];
    let path = template;
    for (const [k, v] of Object.entries(example.params ?? {})) path = path.replace(`{${k}}`, encodeURIComponent(v));
    const query = new URLSearchParams(example.query ?? {}).toString();
    return s.api(query ? `${path}?${query}` : path, { method, body: example.body });
  };
  for (const [key, example] of Object.entries(EXAMPLES)) {
    const r = await send(key, example);
    // 401 for the enrollment example (its token is an example), 409 for one already made: the input itself was accepted.
    expect({ key, status: r.status, error: r.status === 400 ? r.body.error : undefined }).toEqual({
      key,
      status: r.status,
      error: undefined,
    });
    expect(r.status).toBeLessThan(500);
  }
  // The same check catches an example that does not fit its schema.
  const broken = await send("POST /api/v1/devices", { body: { device_uid: "not a uid!", room_name: "x" } });
  expect(broken.status).toBe(400);
  expect(broken.body.error).toContain("device_uid");
});

test("/docs renders the document as a page: every path, who may call it, a curl line; no inline script", async () => {
  const s = await server();
  const res = await s.fetch("/docs");
  expect(res.status).toBe(200);
  const html = await res.text();
  const { body: doc } = await s.api("/openapi.json");
  for (const path of Object.keys(doc.paths)) expect(html).toContain(path.replace(/&/g, "&amp;"));
  expect(html).toContain("curl -s -X POST -H &quot;Authorization: Bearer $TOKEN&quot;");
  expect(html).toContain("a write token, or the owner&#x27;s session");
  expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
});
