// `GET /metrics`: the Prometheus text format (lib/server/metrics). A read,
// like the API (lib/server/http/auth/policy.ts): Prometheus sends a read API
// token (`authorization: credentials_file` or `bearer_token` in its scrape
// config); a signed-in account's session works too, so the owner can look in
// a browser. Open before the owner exists and while `public_read` is on, like
// every read.

import { Elysia } from "elysia";
import { CONTENT_TYPE, type Metrics } from "../../metrics/metrics.ts";

/** Creates `GET /metrics`. */
export function createMetricsApi({ metrics }: { metrics: Pick<Metrics, "text"> }) {
  return new Elysia({ name: "metrics" }).get(
    "/metrics",
    ({ set }) => {
      set.headers["content-type"] = CONTENT_TYPE;
      set.headers["cache-control"] = "no-store";
      return metrics.text();
    },
    { detail: { summary: "Prometheus metrics (text format 0.0.4)", tags: ["operations"] } },
  );
}
