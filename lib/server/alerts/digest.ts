// The optional daily digest: once a day at the chosen local time, one
// message per channel about the last 24 hours (incidents still open, those
// that began or ended, notifications that failed), or that all was quiet:
// a digest that arrives also says the monitor itself is alive.

import type { IncidentRow } from "../store/store.ts";
import type { Notification } from "./messages.ts";
import { spanText, withUnit, type Metric } from "./rules.ts";
import { fmtLocal } from "./schedule.ts";

const DAY_MS = 86_400_000;

/** The digest for the day `date` (local, "2026-11-28"), from the incidents of the last 24 hours. */
export function digestNotification(
  incidents: IncidentRow[],
  failedNotifications: number,
  ctx: { date: string; now: number; timeZone: string; linkBase: string | null },
): Notification {
  const since = ctx.now - DAY_MS;
  const active = incidents.filter((i) => i.state !== "resolved");
  const ended = incidents.filter((i) => i.state === "resolved" && (i.ended_at ?? 0) >= since);
  const began = incidents.filter((i) => i.started_at >= since || i.opened_at >= since);
  const line = (i: IncidentRow) => {
    const place = i.room_name ?? i.device_name;
    const worst =
      i.peak !== null && (i.kind === "threshold" || i.kind === "mould") ? `, worst ${withUnit(i.peak, i.metric as Metric)}` : "";
    if (i.state === "resolved") {
      return `- ${i.rule_name} · ${place}: ${fmtLocal(i.started_at, ctx.timeZone)} to ${fmtLocal(i.ended_at!, ctx.timeZone)} (${spanText((i.ended_at! - i.started_at) / 1000)}${worst})`;
    }
    const ack = i.state === "acknowledged" ? `, acknowledged by ${i.acknowledged_by ?? "someone"}` : ", not acknowledged";
    return `- ${i.severity}: ${i.rule_name} · ${place}: since ${fmtLocal(i.started_at, ctx.timeZone)}${worst}${ack}`;
  };
  const parts: string[] = [];
  if (active.length === 0 && ended.length === 0) parts.push("No incident in the last 24 hours: all quiet.");
  else
    parts.push(
      `Last 24 hours: ${began.length} incident${began.length === 1 ? "" : "s"} began, ${ended.length} resolved; ${active.length} still open.`,
    );
  if (active.length) parts.push(`Still open:\n${active.map(line).join("\n")}`);
  if (ended.length) parts.push(`Resolved:\n${ended.map(line).join("\n")}`);
  if (failedNotifications > 0) {
    parts.push(
      `${failedNotifications} notification${failedNotifications === 1 ? "" : "s"} could not be delivered; the alerts page lists them.`,
    );
  }
  return {
    id: `digest-${ctx.date}`,
    event: "digest",
    severity: "info",
    title: active.length ? `TechTemp daily digest: ${active.length} open` : "TechTemp daily digest",
    message: parts.join("\n\n"),
    link: ctx.linkBase ? `${ctx.linkBase}/alerts` : null,
    incident: null,
    created_at: new Date(ctx.now).toISOString(),
  };
}
