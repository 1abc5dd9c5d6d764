// The API's OpenAPI 3.1 document, generated from the app's own routes: every
// route's path, its parameters and request body come from the TypeBox (`t`)
// schemas Elysia validates with, so the document cannot drift from what the
// server accepts. Summaries and examples the routes do not carry themselves
// (`detail`) are in SUMMARIES and EXAMPLES below, keyed by `METHOD /path`;
// test/openapi.test.ts fails when a route is missing from the document or an
// example does not pass its route's schema. Served at /openapi.json, and as a
// page at /docs rendered on the server (no script, no CDN).

import { Elysia } from "elysia";
import type { ApiDoc } from "../../../views/api-docs.tsx";
import { ApiDocsPage } from "../../../views/api-docs.tsx";
import type { Respond } from "./pages/page.ts";
import { accessOf } from "./auth/policy.ts";
import pkg from "../../../package.json" with { type: "json" };

/** A route as Elysia lists it. */
export interface RouteInfo {
  method: string;
  path: string;
  hooks?: {
    body?: unknown;
    query?: unknown;
    params?: unknown;
    response?: unknown;
    detail?: { summary?: string; description?: string; tags?: string[] };
  };
}

/** The routes the document covers: the JSON API, /health, /metrics and the document itself (the pages are HTML for people). */
export const isDocumented = (path: string): boolean =>
  path.startsWith("/api/") || path === "/health" || path === "/metrics" || path === "/openapi.json";

/** `/api/v1/devices/:uid/` → `/api/v1/devices/{uid}` */
export const openApiPath = (path: string): string =>
  (path.length > 1 ? path.replace(/\/$/, "") : path).replace(/:([A-Za-z_]+)/g, "{$1}");

/** One-line summaries of the routes that have no `detail` of their own. */
const SUMMARIES: Record<string, [string, string]> = {
  "GET /health": ["operations", "Whether the database and the broker work (503 with the reasons)"],
  "GET /metrics": ["operations", "Prometheus metrics (text format 0.0.4)"],
  "GET /openapi.json": ["operations", "This document"],
  "GET /api/v1/stats": ["operations", "The broker's and ingestion's counters"],
  "GET /api/v1/backups": ["operations", "Backups: status, files, recent attempts"],
  "POST /api/v1/backups": ["operations", "Start a backup now (202; GET shows when it is done)"],
  "GET /api/v1/devices": ["devices", "Every device, with its room and status"],
  "GET /api/v1/devices/{uid}": ["devices", "One device"],
  "POST /api/v1/devices": ["devices", "Register a device in a room (the room is created when missing)"],
  "PUT /api/v1/devices/{uid}": ["devices", "Move (optionally back-dated), rename or configure a device"],
  "DELETE /api/v1/devices/{uid}": ["devices", "Delete a device and its readings"],
  "GET /api/v1/devices/{uid}/placements": ["devices", "Where the device has been"],
  "GET /api/v1/rooms": ["rooms", "Every room"],
  "GET /api/v1/rooms/{uid}": ["rooms", "One room"],
  "POST /api/v1/rooms": ["rooms", "Create a room"],
  "PUT /api/v1/rooms/{uid}": ["rooms", "Rename a room (floor, side)"],
  "DELETE /api/v1/rooms/{uid}": ["rooms", "Delete a room with no device in it"],
  "GET /api/v1/rooms/{uid}/placements": ["rooms", "Devices placed in the room over time"],
  "GET /api/v1/readings/latest": ["readings", "The latest reading of each device"],
  "GET /api/v1/devices/{uid}/history": ["history", "A device's chart series, resolution chosen for the budget"],
  "GET /api/v1/rooms/{uid}/history": ["history", "A room's chart series (its devices over their placements)"],
  "GET /api/v1/devices/{uid}/readings": ["history", "A device's readings, newest first (the earlier API)"],
  "GET /api/v1/rooms/{uid}/readings": ["history", "A room's readings, newest first (the earlier API)"],
  "GET /api/v1/devices/{uid}/stats": ["history", "A device's statistics per day, week or month"],
  "GET /api/v1/rooms/{uid}/stats": ["history", "A room's statistics per day, week or month"],
  "GET /api/v1/devices/{uid}/export": ["history", "Download a device's history (CSV or JSON)"],
  "GET /api/v1/rooms/{uid}/export": ["history", "Download a room's history (CSV or JSON)"],
  "GET /api/v1/me": ["access", "Who is calling"],
  "GET /api/v1/tokens": ["access", "API tokens (never the secret)"],
  "POST /api/v1/tokens": ["access", "Make an API token (shown once)"],
  "DELETE /api/v1/tokens/{id}": ["access", "Revoke an API token"],
  "GET /api/v1/enrollment-tokens": ["access", "Live enrollment tokens"],
  "POST /api/v1/enrollment-tokens": ["access", "Make an enrollment token for new sensors (shown once)"],
  "DELETE /api/v1/enrollment-tokens/{id}": ["access", "Revoke an enrollment token"],
  "POST /api/v1/enroll": ["access", "Enroll a sensor with an enrollment token: its MQTT login"],
  "POST /api/v1/devices/{uid}/mqtt-password": ["access", "A new MQTT password for a device (shown once)"],
  "DELETE /api/v1/devices/{uid}/mqtt-password": [
    "access",
    "Withdraw a device's MQTT password (a stolen or retired sensor): its connections close, its readings stay",
  ],
  "GET /api/v1/settings": ["access", "The switches an upgrade keeps on"],
  "PUT /api/v1/settings": ["access", "Turn those switches on or off"],
};

/** Request examples (each one checked against its route's schema by test/openapi.test.ts). */
export const EXAMPLES: Record<string, { params?: Record<string, string>; query?: Record<string, string>; body?: unknown }> = {
  "GET /api/v1/devices/{uid}": { params: { uid: "aht20-f49c53" } },
  "POST /api/v1/devices": { body: { device_uid: "aht20-f49c53", room_name: "Living room", label: "By the window" } },
  "PUT /api/v1/devices/{uid}": {
    params: { uid: "aht20-f49c53" },
    body: { room_name: "Bedroom", label: "Bedside", interval_s: 60, temperature_offset: -0.4 },
  },
  "POST /api/v1/rooms": { body: { name: "Salle à manger", floor: "ground" } },
  "PUT /api/v1/rooms/{uid}": { params: { uid: "salle-a-manger" }, body: { name: "Dining room" } },
  "GET /api/v1/readings/latest": { query: { roomId: "salle-a-manger" } },
  "GET /api/v1/rooms/{uid}/history": {
    params: { uid: "bedroom" },
    query: { from: "2025-11-28", to: "2026-11-28T00:00:00Z", points: "800", bucket: "auto" },
  },
  "GET /api/v1/devices/{uid}/history": { params: { uid: "aht20-f49c53" }, query: { from: "1764288000000", bucket: "hour" } },
  "GET /api/v1/devices/{uid}/readings": { params: { uid: "aht20-f49c53" }, query: { limit: "100", bucket: "day" } },
  "GET /api/v1/rooms/{uid}/stats": { params: { uid: "bedroom" }, query: { period: "week" } },
  "GET /api/v1/rooms/{uid}/export": {
    params: { uid: "salon" },
    query: { format: "csv", from: "2025-01-01", to: "2025-12-31T23:59:59Z", bucket: "raw" },
  },
  "POST /api/v1/tokens": { body: { name: "grafana", scope: "read" } },
  "POST /api/v1/enrollment-tokens": { body: { ttl_minutes: 60, max_uses: 3 } },
  "POST /api/v1/enroll": { body: { token: "tt_enroll_example", device_uid: "aht20-f49c53", room_name: "Living room" } },
  "PUT /api/v1/settings": { body: { public_read: false } },
};

/** A TypeBox schema as plain JSON Schema: symbols dropped (JSON), our `error` messages kept as `description`. */
function jsonSchema(schema: unknown): Record<string, unknown> | undefined {
  if (schema === undefined || schema === null) return undefined;
  return JSON.parse(JSON.stringify(schema), (_key, value) => {
    if (value && typeof value === "object" && !Array.isArray(value) && typeof value.error === "string") {
      const { error, ...rest } = value as Record<string, unknown>;
      return rest.description === undefined ? { ...rest, description: error } : rest;
    }
    return value;
  }) as Record<string, unknown>;
}

const ERROR_RESPONSE = { description: "", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };

/** Builds the OpenAPI document from the app's routes. */
export function buildOpenApi(routes: RouteInfo[], version: string): ApiDoc {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    if (!isDocumented(route.path) || route.method === "OPTIONS" || route.method === "HEAD") continue;
    const path = openApiPath(route.path);
    const key = `${route.method} ${path}`;
    const hooks = route.hooks ?? {};
    const [tag, summary] = SUMMARIES[key] ?? ["other", `${route.method} ${path}`];
    const example = EXAMPLES[key];
    const access = accessOf(route.method, route.path);
    const parameters: unknown[] = [];
    for (const name of [...path.matchAll(/\{([A-Za-z_]+)\}/g)].map((m) => m[1]!)) {
      const schema = (jsonSchema(hooks.params) as { properties?: Record<string, unknown> } | undefined)?.properties?.[name];
      parameters.push({
        name,
        in: "path",
        required: true,
        schema: schema ?? { type: "string" },
        example: example?.params?.[name],
      });
    }
    const query = jsonSchema(hooks.query) as { properties?: Record<string, unknown>; required?: string[] } | undefined;
    for (const [name, schema] of Object.entries(query?.properties ?? {})) {
      parameters.push({
        name,
        in: "query",
        required: query?.required?.includes(name) ?? false,
        schema,
        example: example?.query?.[name],
      });
    }
    const operation: Record<string, unknown> = {
      operationId: `${route.method.toLowerCase()}${path.replace(/[{}]/g, "").replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string) => (c ?? "").toUpperCase())}`,
      summary: hooks.detail?.summary ?? summary,
      tags: hooks.detail?.tags ?? [tag],
      "x-access": access,
      parameters,
      responses: {
        [route.method === "POST" ? "201" : "200"]: { description: '`{"data": …}` (text for /metrics and exports)' },
        "400": { ...ERROR_RESPONSE, description: "Bad input: the message names the field" },
        ...(access === "public" ? {} : { "401": { ...ERROR_RESPONSE, description: "No session or API token" } }),
        ...(access === "public" || access === "read"
          ? {}
          : { "403": { ...ERROR_RESPONSE, description: "Not allowed (read-only token, viewer, CSRF)" } }),
        ...(path.includes("{") ? { "404": { ...ERROR_RESPONSE, description: "Not found" } } : {}),
      },
    };
    if (hooks.detail?.description) operation.description = hooks.detail.description;
    if (access === "public") operation.security = [];
    const body = jsonSchema(hooks.body);
    if (body) {
      operation.requestBody = {
        required: true,
        content: { "application/json": { schema: body, ...(example?.body === undefined ? {} : { example: example.body }) } },
      };
    }
    (paths[path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "TechTemp API",
      version,
      description:
        'Temperature and humidity of every room. Success is `{"data": …}`, an error `{"error": "message"}`; times are ISO-8601 UTC in answers, ISO-8601 or epoch ms in queries.',
    },
    servers: [{ url: "/" }],
    security: [{ bearerToken: [] }, { session: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerToken: { type: "http", scheme: "bearer", description: "An API token `tt_…` (read or write), from /tokens" },
        session: {
          type: "apiKey",
          in: "cookie",
          name: "techtemp_session",
          description: "A signed-in account (writes also need X-CSRF-Token)",
        },
      },
      schemas: { Error: { type: "object", required: ["error"], properties: { error: { type: "string" } } } },
    },
  } as ApiDoc;
}

/** Creates `/openapi.json` and the `/docs` page, over the routes of the finished app (`routes()` is asked at each request). */
export function createOpenApi(deps: { routes: () => RouteInfo[]; respond: Respond; version?: string }) {
  let cached: { count: number; doc: ApiDoc } | null = null;
  const doc = (): ApiDoc => {
    const routes = deps.routes();
    if (cached?.count !== routes.length)
      cached = { count: routes.length, doc: buildOpenApi(routes, deps.version ?? pkg.version) };
    return cached.doc;
  };
  return new Elysia({ name: "openapi" })
    .get("/openapi.json", () => doc())
    .get("/docs", ({ request }) => deps.respond(request, (shell) => ApiDocsPage({ shell, doc: doc() })));
}
