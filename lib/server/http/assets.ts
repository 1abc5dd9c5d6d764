// Static assets of the pages: our stylesheet, scripts, manifest and icons,
// plus htmx, its SSE extension and uPlot from node_modules. Every file is
// imported `with { type: "file" }`, so `bun build --compile` embeds it in the
// executable (a home LAN may have no internet: no CDN, and no files beside the
// binary). Served as:
//   /static/<hash>/<name>  content hash in the URL: cached for a year, immutable
//   /static/<name>         stable name (the manifest's icons): cached for an hour, revalidated by ETag
// Text files are gzipped once, on first request, and sent compressed to every
// client that accepts gzip.

import { Elysia } from "elysia";
import { readFileSync } from "node:fs";
import htmxJs from "htmx.org/dist/htmx.min.js" with { type: "file" };
import sseJs from "htmx-ext-sse/dist/sse.min.js" with { type: "file" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "file" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "file" };
import appCss from "../../../static/app.css" with { type: "file" };
import appJs from "../../../static/app.js" with { type: "file" };
import authJs from "../../../static/auth.js" with { type: "file" };
import chartJs from "../../../static/chart.js" with { type: "file" };
import iconSvg from "../../../static/icon.svg" with { type: "file" };
import icon192 from "../../../static/icon-192.png" with { type: "file" };
import icon512 from "../../../static/icon-512.png" with { type: "file" };
import iconMaskable from "../../../static/icon-maskable-512.png" with { type: "file" };
import appleTouchIcon from "../../../static/apple-touch-icon.png" with { type: "file" };
import manifest from "../../../static/manifest.webmanifest" with { type: "file" };

/** Every asset by the name it is served under, with its embedded path. */
const FILES = {
  "htmx.min.js": htmxJs,
  "sse.min.js": sseJs,
  "uPlot.iife.min.js": uplotJs,
  "uPlot.min.css": uplotCss,
  "app.css": appCss,
  "app.js": appJs,
  "auth.js": authJs,
  "chart.js": chartJs,
  "icon.svg": iconSvg,
  "icon-192.png": icon192,
  "icon-512.png": icon512,
  "icon-maskable-512.png": iconMaskable,
  "apple-touch-icon.png": appleTouchIcon,
  "manifest.webmanifest": manifest,
} as const;

/** The name of an asset. */
export type AssetName = keyof typeof FILES;
/** Asset name → URL with its content hash, for the views. */
export type AssetUrls = Record<AssetName, string>;

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  webmanifest: "application/manifest+json",
};
const YEAR = "public, max-age=31536000, immutable";
const HOUR = "public, max-age=3600";

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  gzipped: Uint8Array<ArrayBuffer> | null;
  type: string;
  hash: string;
  compressible: boolean;
}

/** Whether the client accepts gzip (`Accept-Encoding: gzip, br`; `gzip;q=0` refuses it). */
export function acceptsGzip(request: Request): boolean {
  for (const part of (request.headers.get("accept-encoding") ?? "").split(",")) {
    const [coding, ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    if (coding !== "gzip") continue;
    const q = params.find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

/** A response whose body is gzipped when the client accepts it and compressing pays. */
export function compressed(
  request: Request,
  body: string | Uint8Array<ArrayBuffer>,
  headers: Record<string, string>,
  status = 200,
): Response {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const out: Record<string, string> = { ...headers, vary: "Accept-Encoding" };
  if (bytes.length > 512 && acceptsGzip(request)) {
    out["content-encoding"] = "gzip";
    return new Response(Bun.gzipSync(bytes), { status, headers: out });
  }
  return new Response(bytes, { status, headers: out });
}

/**
 * Loads the embedded assets (reads and hashes them once) and returns their
 * URLs and the Elysia routes that serve them.
 */
export function createAssets() {
  const assets = new Map<string, Asset>();
  const urls = {} as AssetUrls;
  for (const [name, path] of Object.entries(FILES) as [AssetName, string][]) {
    const body = new Uint8Array(readFileSync(path));
    const ext = name.slice(name.lastIndexOf(".") + 1);
    const hash = new Bun.CryptoHasher("sha256").update(body).digest("hex").slice(0, 12);
    assets.set(name, { body, gzipped: null, type: TYPES[ext] ?? "application/octet-stream", hash, compressible: ext !== "png" });
    urls[name] = `/static/${hash}/${name}`;
  }

  function serve(request: Request, name: string, cacheControl: string): Response {
    const asset = assets.get(name);
    if (!asset) return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
    const etag = `"${asset.hash}"`;
    const headers: Record<string, string> = { "content-type": asset.type, "cache-control": cacheControl, etag };
    if (asset.compressible) headers.vary = "Accept-Encoding";
    if (request.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
    if (asset.compressible && acceptsGzip(request)) {
      asset.gzipped ??= Bun.gzipSync(asset.body, { level: 9 });
      return new Response(asset.gzipped, { headers: { ...headers, "content-encoding": "gzip" } });
    }
    return new Response(asset.body, { headers });
  }

  const routes = new Elysia({ name: "assets" })
    .get("/static/*", ({ params, request }) => {
      const [first, second, ...more] = params["*"].split("/");
      if (second === undefined) return serve(request, first ?? "", HOUR);
      // A URL with an old hash (a page cached before an upgrade) gets today's file, but must not be cached as immutable.
      if (more.length === 0) return serve(request, second, assets.get(second)?.hash === first ? YEAR : "no-cache");
      return serve(request, "", HOUR);
    })
    .get("/manifest.webmanifest", ({ request }) => serve(request, "manifest.webmanifest", HOUR))
    .get("/favicon.ico", ({ request }) => serve(request, "icon-192.png", HOUR));

  return { urls, routes };
}

/** The embedded static files: their URLs and routes. */
export type Assets = ReturnType<typeof createAssets>;
