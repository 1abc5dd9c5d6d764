// How the server is doing: `/health` for monitors (503 with the reasons when
// the database or the broker is down) and `/api/v1/stats`, the broker's and
// ingestion's counters for makers and monitoring.

import { Elysia } from "elysia";
import type { Broker } from "../../mqtt/broker.ts";
import type { Ingest } from "../../mqtt/ingest.ts";
import type { Store } from "../../store/store.ts";
import { runtimeStats } from "../../jit.ts";
import { iso } from "../params.ts";

/** What the health and counters routes look at. */
export interface HealthDeps {
  store: Pick<Store, "probe" | "now">;
  broker: Pick<Broker, "listening" | "stats" | "connectedClients" | "queuedMessages" | "kept">;
  ingest: Pick<Ingest, "failing" | "stats" | "pending">;
}

/** Creates `/health` and `/api/v1/stats`. */
export function createHealthApi({ store, broker, ingest }: HealthDeps) {
  return (
    new Elysia()
      .get("/health", ({ set }) => {
        const problems: Record<string, string> = {};
        try {
          store.probe();
          if (ingest.failing) problems.database = "the last commit of readings, or its sync to the card, failed (see the log)";
        } catch (err) {
          problems.database = (err as Error).message;
        }
        if (!broker.listening) problems.broker = "not accepting connections";
        if (Object.keys(problems).length === 0) return { status: "ok" };
        set.status = 503;
        return { status: "failed", ...problems, checked_at: iso(store.now()) };
      })
      // What the broker refused, how ingestion batches.
      .get("/api/v1/stats", () => ({
        data: {
          broker: {
            ...broker.stats,
            connected_clients: broker.connectedClients,
            queued_messages: broker.queuedMessages,
            // Retained messages and persistent sessions' queues, with their bounds' refusals.
            kept: broker.kept,
          },
          ingest: { ...ingest.stats, pending: ingest.pending },
          // The JIT policy (idle code in the interpreter until busy) and the executable's bytecode layout (lib/server/jit.ts).
          runtime: runtimeStats(),
        },
      }))
  );
}
