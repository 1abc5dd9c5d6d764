// The event stream of the live pages (Server-Sent Events): one hub holds the
// open streams and sends each the fragments that changed whenever the live
// summaries do, and every fragment at once to a client that missed changes
// (a page older than the last change, or a reconnect with Last-Event-ID).
// htmx's SSE extension swaps each fragment into the element of its event name.
//
// Each stream is for one view (the dashboard, a room's page, the devices
// list, a device's page, the comparison): the fragments of a change are
// rendered once per view that has a stream open, and only for those.
//
// Changes are coalesced: a card is sent at most once per COALESCE_MS (the
// first change after a quiet second at once, the ones after it together a
// second later), so a dashboard costs one card a second per room however
// fast readings arrive (100 readings/s sent ~570 KB/s before).

import type { Live, LiveChange } from "../../live/live.ts";

/** One message of the stream: the HTML for the element that listens to `event`. */
export interface Fragment {
  event: string;
  html: string;
}

/** Changes within this long of the last message are sent together, once it is over. */
export const COALESCE_MS = 1000;

/** A keep-alive comment on the event stream this often, so proxies and phones keep it open. */
const HEARTBEAT_MS = 15_000;

/** An event-stream message; every line of the HTML becomes a `data:` line. */
function sseMessage({ event, html }: Fragment, id: number): string {
  return `id: ${id}\nevent: ${event}\n${html
    .split("\n")
    .map((line) => `data: ${line}\n`)
    .join("")}\n`;
}

/** What the hub needs: the live changes, and a view's fragments to send for one (null: every fragment). */
export interface EventHubDeps {
  live: Pick<Live, "version" | "onChange">;
  fragments(change: LiveChange | null, view: string): Fragment[];
  /** The clock (injected in tests). */
  now?: () => number;
}

/** Creates the hub; `close()` ends every stream. */
export function createEventHub({ live, fragments, now = Date.now }: EventHubDeps) {
  const encoder = new TextEncoder();
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  /** Each stream's view. */
  const views = new Map<ReadableStreamDefaultController<Uint8Array>, string>();
  /** Each stream's check that its reader may still read (a session signed out, a kiosk link revoked). */
  const allowed = new Map<ReadableStreamDefaultController<Uint8Array>, () => boolean>();
  let heartbeat: ReturnType<typeof setInterval> | null = null;

  function send(controller: ReadableStreamDefaultController<Uint8Array>, text: string): void {
    try {
      controller.enqueue(encoder.encode(text));
    } catch {
      streams.delete(controller);
      allowed.delete(controller);
      views.delete(controller);
    }
  }

  /** Ends the streams whose reader may no longer read. */
  function endRefused(): void {
    for (const [controller, ok] of allowed) {
      if (ok()) continue;
      streams.delete(controller);
      allowed.delete(controller);
      views.delete(controller);
      try {
        controller.close();
      } catch {}
    }
  }

  function broadcast(text: string | ((view: string) => string)): void {
    const byView = new Map<string, string>();
    for (const controller of streams) {
      if (typeof text === "string") send(controller, text);
      else {
        const view = views.get(controller) ?? "";
        if (!byView.has(view)) byView.set(view, text(view));
        const out = byView.get(view)!;
        if (out) send(controller, out);
      }
    }
  }

  const messages = (list: Fragment[], version: number) => list.map((f) => sseMessage(f, version)).join("");

  /** The changes not sent yet (rooms merged), the time of the last message, its timer. */
  let pending: LiveChange | null = null;
  let lastSent = -Infinity;
  let timer: ReturnType<typeof setTimeout> | null = null;

  function flush(): void {
    timer = null;
    const change = pending;
    pending = null;
    if (change === null || streams.size === 0) return;
    lastSent = now();
    // A change is news for readers who may still read only (checked here and at each heartbeat).
    endRefused();
    broadcast((view) => messages(fragments(change, view), change.version));
  }

  const unsubscribe = live.onChange((change) => {
    // Rendering costs: nobody watching, nothing to render.
    if (streams.size === 0) return;
    // Merged: what any of the coalesced changes touched (extra flags, like alerts', kept).
    pending = pending
      ? {
          ...pending,
          ...change,
          rooms: new Set([...pending.rooms, ...change.rooms]),
          devices: new Set([...pending.devices, ...change.devices]),
          unplaced: pending.unplaced || change.unplaced,
          layout: pending.layout || change.layout,
        }
      : { ...change, rooms: new Set(change.rooms), devices: new Set(change.devices) };
    if (timer !== null) return;
    const wait = lastSent + COALESCE_MS - now();
    if (wait <= 0) flush();
    else timer = setTimeout(flush, wait);
  });

  return {
    /**
     * A new stream for a page rendered at live version `since` (NaN or
     * missing: it missed everything). `stillAllowed` is asked at each
     * heartbeat: a stream whose reader may no longer read is ended.
     */
    open(request: Request, since: number, stillAllowed: () => boolean = () => true, view = "dashboard"): Response {
      let self: ReadableStreamDefaultController<Uint8Array>;
      const forget = () => {
        streams.delete(self);
        allowed.delete(self);
        views.delete(self);
      };
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          self = controller;
          streams.add(controller);
          allowed.set(controller, stillAllowed);
          views.set(controller, view);
          // Ask the browser to reconnect after 2 s, and send what changed since the page was rendered.
          send(controller, "retry: 2000\n\n");
          if (!(since >= live.version)) send(controller, messages(fragments(null, view), live.version));
          heartbeat ??= setInterval(() => {
            endRefused();
            broadcast(": keep-alive\n\n");
            if (streams.size === 0 && heartbeat) {
              clearInterval(heartbeat);
              heartbeat = null;
            }
          }, HEARTBEAT_MS);
        },
        cancel: forget,
      });
      request.signal.addEventListener("abort", forget);
      return new Response(stream, {
        headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
      });
    },
    /** Ends every stream and stops listening to the live summaries. */
    close(): void {
      unsubscribe();
      if (timer) clearTimeout(timer);
      timer = null;
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
      for (const controller of streams) {
        try {
          controller.close();
        } catch {}
      }
      streams.clear();
      allowed.clear();
      views.clear();
    },
    /** Sends `list` to every open stream of a view `wanted` accepts (news that is not a live change: the outdoor weather). */
    push(list: (view: string) => Fragment[]): void {
      if (streams.size > 0) broadcast((view) => messages(list(view), live.version));
    },
  };
}
