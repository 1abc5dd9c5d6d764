// The alert settings a person sets on the channels page or through the API:
// quiet hours, the repeat interval for incidents nobody acknowledged, the
// daily digest, and the address of the pages for links in notifications.
// Stored as text in alert_settings; checked here, each problem naming its field.

import { invalid } from "../../shared/errors.ts";
import { clockText, parseClock, type QuietHours } from "./schedule.ts";

/** The settings as the rest of the alerts module uses them. */
export interface AlertSettings {
  /** null: no quiet hours. */
  quiet: QuietHours | null;
  /** During quiet hours, critical incidents are still sent at once. */
  quietAllowsCritical: boolean;
  /** An open incident nobody acknowledged is notified again this often; 0 = never. */
  repeatMinutes: number;
  /** Local minute of the day of the daily digest; null = no digest. */
  digestAt: number | null;
  /** The pages' address for links in notifications (http://techtemp.local:3000), or null. */
  linkBase: string | null;
}

/** The defaults: no quiet hours, a repeat every 2 hours, no digest, no link. */
export const DEFAULT_SETTINGS: AlertSettings = {
  quiet: null,
  quietAllowsCritical: true,
  repeatMinutes: 120,
  digestAt: null,
  linkBase: null,
};

/** Most minutes between repeats (a week). */
const MAX_REPEAT_MINUTES = 10_080;

/** The settings from what alert_settings holds (anything unreadable falls back to its default). */
export function readSettings(stored: Record<string, string>): AlertSettings {
  const clock = (v: string | undefined) => {
    try {
      return v ? parseClock("x", v) : null;
    } catch {
      return null;
    }
  };
  const start = clock(stored.quiet_start);
  const end = clock(stored.quiet_end);
  const repeat = Number(stored.repeat_minutes);
  return {
    quiet: start !== null && end !== null ? { start, end } : null,
    quietAllowsCritical: stored.quiet_allows_critical !== "0",
    repeatMinutes: Number.isInteger(repeat) && repeat >= 0 ? repeat : DEFAULT_SETTINGS.repeatMinutes,
    digestAt: clock(stored.digest_time),
    linkBase: stored.link_base || null,
  };
}

/** The settings as the API shows them. */
export function settingsJson(s: AlertSettings) {
  return {
    quiet_start: s.quiet ? clockText(s.quiet.start) : null,
    quiet_end: s.quiet ? clockText(s.quiet.end) : null,
    quiet_allows_critical: s.quietAllowsCritical,
    repeat_minutes: s.repeatMinutes,
    digest_time: s.digestAt === null ? null : clockText(s.digestAt),
    link_base: s.linkBase,
  };
}

/** What changing the settings takes (any subset; null or "" clears an optional one). */
export type SettingsInput = Partial<Record<keyof ReturnType<typeof settingsJson>, unknown>>;

const optionalText = (v: unknown, field: string): string | null => {
  if (v === null || v === undefined || v === "") return null;
  if (typeof v !== "string") throw invalid(field, "must be text");
  return v.trim() || null;
};

/**
 * Checks a change of the settings over `current`; returns what to store
 * (key → text). Quiet hours need both ends; a time of day is `HH:MM`.
 */
export function checkSettings(input: SettingsInput, current: AlertSettings): Record<string, string> {
  const cur = settingsJson(current);
  const m = { ...cur, ...input };
  const start = optionalText(m.quiet_start, "quiet_start");
  const end = optionalText(m.quiet_end, "quiet_end");
  if ((start === null) !== (end === null)) {
    throw invalid(start === null ? "quiet_start" : "quiet_end", "give both ends of the quiet hours, or neither");
  }
  const startMin = start === null ? null : parseClock("quiet_start", start);
  const endMin = end === null ? null : parseClock("quiet_end", end);
  if (startMin !== null && startMin === endMin) throw invalid("quiet_end", "must differ from quiet_start");
  if (typeof m.quiet_allows_critical !== "boolean") throw invalid("quiet_allows_critical", "give true or false");
  const repeat = m.repeat_minutes;
  if (typeof repeat !== "number" || !Number.isInteger(repeat) || repeat < 0 || repeat > MAX_REPEAT_MINUTES) {
    throw invalid("repeat_minutes", `give a whole number of minutes from 0 (never) to ${MAX_REPEAT_MINUTES}`);
  }
  const digest = optionalText(m.digest_time, "digest_time");
  const digestMin = digest === null ? null : parseClock("digest_time", digest);
  let link = optionalText(m.link_base, "link_base");
  if (link !== null) {
    let url: URL | null = null;
    try {
      url = new URL(link);
    } catch {}
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash || link.length > 200) {
      throw invalid("link_base", `${JSON.stringify(link)} is not the pages' address; give one like http://techtemp.local:3000`);
    }
    link = link.replace(/\/+$/, "");
  }
  return {
    quiet_start: startMin === null ? "" : clockText(startMin),
    quiet_end: endMin === null ? "" : clockText(endMin),
    quiet_allows_critical: m.quiet_allows_critical ? "1" : "0",
    repeat_minutes: String(repeat),
    digest_time: digestMin === null ? "" : clockText(digestMin),
    link_base: link ?? "",
  };
}
