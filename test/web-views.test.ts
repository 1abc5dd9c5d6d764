// The views as pure functions: "… ago" wording, and escaping. With
// @kitajs/html a child is NOT escaped unless the view marks it, so every view
// exported from views/ (found by reading the directory: a new one cannot be
// forgotten) is rendered with markup in every string that can come from a
// sensor, a form or the database, and its HTML is read back with a real HTML
// tokenizer (Bun's HTMLRewriter): no element or attribute may come from the
// data, and its text must hold the strings escaped. (This is the check
// @kitajs/ts-html-plugin promised; it cannot run with TypeScript 7.)

import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { AssetUrls } from "../lib/server/http/assets.ts";
import type { PeriodStats } from "../lib/server/history/stats.ts";
import type { DeviceLive } from "../lib/server/live/live.ts";
import type { Device, IncidentRow, Placement, Room } from "../lib/server/store/store.ts";
import type { RoomCard } from "../views/dashboard.tsx";
import type { ChartWindow } from "../views/history.tsx";
import { formatAgo, type FormState, type Shell } from "../views/parts.tsx";
import { AccountPage, UsersPage } from "../views/account.tsx";
import { LoginPage, ResetPage, SetupPage } from "../views/auth.tsx";

const T = Date.parse("2026-01-15T12:00:00Z");
const DAY = 86_400_000;

describe("'… ago'", () => {
  test("words each range", () => {
    expect(formatAgo(T, T + 3000)).toBe("just now");
    expect(formatAgo(T, T + 42_000)).toBe("42 s ago");
    expect(formatAgo(T, T + 2 * 60_000 + 30_000)).toBe("2 min ago");
    expect(formatAgo(T, T + 5 * 3_600_000)).toBe("5 h ago");
    expect(formatAgo(T, T + 3 * 86_400_000)).toBe("3 days ago");
  });
  test("a time in the future is 'just now'", () => {
    expect(formatAgo(T + 60_000, T)).toBe("just now");
  });
});

/** What a person, a sensor or the database could put in any text: markup, a quote that ends an attribute, `'` and `&`. */
const H = `<script>alert(1)</script>"><img src=x onerror=alert(1)>'&`;

// ---- hostile data for every kind of model a view takes ----

const shell: Shell = {
  assets: new Proxy({}, { get: (_, name) => `/static/0/${String(name)}` }) as AssetUrls,
  now: T,
  timeZone: "Europe/Paris",
  // Every text of the shell hostile too: an account's name, its CSRF token, a banner and its one-click form.
  viewer: { kind: "session", name: H, role: "owner", csrf: H },
  canWrite: true,
  banners: [{ id: H, text: H, action: { path: H, fields: { [H]: H }, label: H }, link: { href: H, label: H } }],
};
/** The same page seen by a viewer, the kiosk and nobody. */
const viewerShell: Shell = { ...shell, viewer: { kind: "session", name: H, role: "viewer", csrf: H }, canWrite: false };
const kioskShell: Shell = { ...shell, viewer: { kind: "kiosk", name: null, role: null, csrf: H }, canWrite: false, banners: [] };
const nobodyShell: Shell = { ...shell, viewer: { kind: "anonymous", name: null, role: null, csrf: null }, canWrite: false };
const live: DeviceLive = {
  freshness: { status: "late", lateAt: T - 60_000, offlineAt: T + 180_000 },
  intervalS: 60,
  last: { ts: T - 150_000, temperature: 21.5, humidity: 45 },
  today: { tMin: 19.5, tMax: 22.3, hMin: 40, hMax: 48 },
  comfort: { dewPoint: 9.1, humidex: 24, word: "comfortable" },
  spark: [20, null, 21, 21.5],
  trend: { temperature: 0.8, humidity: -3 },
};
const silent: DeviceLive = {
  ...live,
  freshness: { status: "never", lateAt: null, offlineAt: null },
  last: null,
  today: null,
  comfort: null,
};
const device = (over: Partial<Device> = {}): Device => ({
  id: 1,
  uid: H,
  home_id: H,
  label: H,
  model: H,
  created_at: T - DAY,
  last_seen_at: T - 60_000,
  state: "online",
  state_at: T - 60_000,
  interval_s: 60,
  version: H,
  sensor_failures: 1,
  last_error: H,
  config_interval_s: 60,
  temperature_offset: 0,
  humidity_offset: 0,
  refused_count: 2,
  last_refusal: H,
  last_refusal_at: T - 120_000,
  room_id: 1,
  room_uid: H,
  room_name: H,
  placed_at: T - DAY,
  ...over,
});
/** A backup attempt with hostile text wherever it has text. */
const backupRow = (failed: boolean) => ({
  id: 1,
  started_at: T - DAY,
  trigger: H,
  file: H,
  size_bytes: 1e6,
  duration_ms: 1200,
  integrity: H,
  error: failed ? H : null,
  second_target: H,
});
/** An account row with a hostile name. */
const account = (id: number, role: "owner" | "viewer") => ({ id, name: H, role, created_at: T - DAY, sessions: 2 });
const room: Room = { id: 1, uid: H, name: H, floor: H, side: H, created_at: T - DAY };
const placements: Placement[] = [
  { id: 1, device_uid: H, room_uid: H, room_name: H, from_ts: T - 2 * DAY, to_ts: T - DAY },
  { id: 2, device_uid: H, room_uid: H, room_name: H, from_ts: T - DAY, to_ts: null },
];
/** A form as posted back: every field typed hostile, with a hostile message. */
const posted = (...names: string[]): FormState => ({
  values: Object.fromEntries(names.map((n) => [n, H])),
  errors: Object.fromEntries(names.map((n) => [n, H])),
});
const card: RoomCard = {
  uid: H,
  name: H,
  floor: H,
  side: H,
  sensors: [
    { uid: H, name: H, live },
    { uid: H, name: H, live: silent },
  ],
};
const labels = { [H]: H };
const window: ChartWindow = {
  from: T - DAY,
  to: T,
  presets: [{ label: H, href: H, current: true }],
  back: H,
  forward: H,
  custom: posted("from", "to"),
  points: 1500,
};
const values = { min: 19.5, min_at: T - 3_600_000, max: 22.3, max_at: T - 7_200_000, mean: 21 };
const period: PeriodStats = {
  period_start: T - DAY,
  from: T - DAY,
  to: T,
  count: 1400,
  expected: 1440,
  coverage_pct: 97.2,
  temperature: values,
  humidity: values,
};

/** An incident with every text hostile. */
const incident = (over: Partial<IncidentRow> = {}): IncidentRow => ({
  id: 1,
  rule_id: 1,
  rule_name: H,
  kind: H,
  metric: H,
  severity: H,
  device_uid: H,
  device_name: H,
  home_id: H,
  room_uid: H,
  room_name: H,
  state: "open",
  started_at: T - 3_600_000,
  opened_at: T - 3_000_000,
  value: 27.5,
  threshold: 26,
  peak: 28.1,
  peak_at: T - 600_000,
  last_value: 27,
  message: H,
  acknowledged_at: null,
  acknowledged_by: null,
  ended_at: null,
  end_reason: null,
  repeats: 0,
  last_notified_at: T,
  ...over,
});
const incidents = [
  incident(),
  incident({ id: 2, severity: "critical", state: "acknowledged", acknowledged_at: T - 60_000, acknowledged_by: H }),
  incident({ id: 3, room_uid: null, room_name: null, kind: "stale", metric: null }),
];
const resolved = [incident({ id: 4, state: "resolved", ended_at: T - 60_000, end_reason: H })];
const ruleForm = () =>
  posted(
    "name",
    "kind",
    "metric",
    "min",
    "max",
    "hysteresis",
    "duration_s",
    "intervals",
    "failures",
    "dew_margin",
    "severity",
    "scope",
    "enabled",
    "preset",
  );
const channelForm = () =>
  posted(
    "name",
    "kind",
    "min_severity",
    "enabled",
    "url",
    "topic",
    "token",
    "secret",
    "host",
    "port",
    "security",
    "username",
    "password",
    "from",
    "to",
    "ca",
  );

/** Every exported view (a capitalised function of views/*.tsx) with the props it is rendered with. */
const RENDERS: Record<string, unknown[]> = {
  "parts.tsx Ago": [{ ts: T - 60_000, now: T, tz: "Europe/Paris" }],
  "parts.tsx Time": [
    { ts: T - 60_000, now: T, tz: "Europe/Paris" },
    { ts: T, now: T, tz: "UTC", style: "m" },
  ],
  "parts.tsx Temp": [{ c: 21.5 }, { c: -0.5, delta: true, unit: false, digits: 2 }],
  "parts.tsx StatusBadge": [{ f: live.freshness }, { f: silent.freshness }],
  "parts.tsx Sparkline": [{ values: live.spark, label: H }],
  "parts.tsx Csrf": [{ shell }, { shell: nobodyShell }],
  "parts.tsx Field": [{ label: H, id: H, error: H, hint: H, children: "" }],
  "parts.tsx Input": [{ form: posted("name"), name: "name", id: H, placeholder: H }],
  "parts.tsx PlacementTable": [
    { placements, of: "device", now: T, tz: "Europe/Paris" },
    { placements, of: "room", labels, now: T, tz: "Europe/Paris" },
    { placements, of: "room", labels: {}, now: T, tz: "Europe/Paris" },
  ],
  "layout.tsx Layout": [
    { shell, title: H, section: "dashboard", live: true, charts: true, children: "" },
    { shell: viewerShell, title: H, section: "rooms", children: "" },
    { shell: kioskShell, title: H, section: "dashboard", live: true, children: "" },
    { shell: nobodyShell, title: H, section: "account", scripts: ["auth.js"], children: "" },
  ],
  "layout.tsx ErrorPage": [
    { shell, status: 404, message: H },
    { shell, status: 400, message: H },
  ],
  "dashboard.tsx RoomCardBody": [{ room: card, shell }],
  "dashboard.tsx RoomCards": [
    { rooms: [card], shell },
    { rooms: [], shell },
  ],
  "dashboard.tsx Outdoor": [
    { outdoor: { current: { ts: T, temperature: 8.3, humidity: 76 }, problem: { message: H, since: T - DAY } }, shell },
    { outdoor: { current: null, problem: null }, shell },
    { outdoor: null, shell },
  ],
  "dashboard.tsx UnplacedBanner": [
    { devices: [{ uid: H, name: H, lastSeenAt: T - 60_000 }], shell },
    {
      devices: [
        { uid: H, name: H, lastSeenAt: null },
        { uid: H, name: H, lastSeenAt: T },
      ],
      shell,
    },
  ],
  "dashboard.tsx DashboardPage": [
    {
      shell,
      rooms: [card],
      unplaced: [{ uid: H, name: H, lastSeenAt: T }],
      outdoor: { current: null, problem: { message: H, since: T } },
      version: 3,
    },
    { shell, rooms: [{ ...card, alerts: incidents }], unplaced: [], outdoor: null, version: 3, alerts: incidents },
    { shell: kioskShell, rooms: [card], unplaced: [], outdoor: null, version: 3 },
  ],
  "devices.tsx DevicesPage": [
    {
      shell,
      version: 3,
      devices: [
        { device: device(), live },
        { device: device({ label: null, room_uid: null, room_name: null }), live: silent },
      ],
    },
  ],
  "devices.tsx DevicesTable": [
    { shell, devices: [{ device: device(), live }] },
    { shell, devices: [] },
  ],
  "devices.tsx DeviceSummary": [
    { shell, row: { device: device(), live } },
    { shell, row: { device: device(), live: silent }, oob: true },
  ],
  "history.tsx Chart": [
    { sources: [{ kind: "room", uid: H, name: H }], window, labels, shell, weather: true },
    { sources: [{ kind: "device", uid: H, name: H }], window, labels: {}, shell, weather: false },
  ],
  "history.tsx Changes": [{}],
  "devices.tsx DevicePage": [
    {
      shell,
      row: { device: device(), live },
      rooms: [room],
      placements,
      place: posted("room", "new_room", "moved_at"),
      settings: posted("label", "interval_s", "temperature_offset", "humidity_offset"),
      saved: "settings",
      window,
      labels,
      weather: true,
      version: 3,
      oob: true,
    },
    {
      shell,
      row: { device: device({ label: null, room_uid: null, room_name: null, version: null }), live: silent },
      rooms: [room],
      placements: [],
      place: { values: { room: H }, errors: {} },
      settings: posted("label"),
      newSecret: { username: H, password: H },
      window,
      labels,
      weather: false,
      version: 3,
    },
    {
      shell: viewerShell,
      row: { device: device(), live },
      rooms: [room],
      placements,
      place: posted("room"),
      settings: posted("label"),
      window,
      labels,
      weather: false,
      version: 3,
    },
  ],
  "history.tsx RoomPage": [
    { shell, room: card, version: 3, window, placements, labels, stats: { period: "day", periods: [period] }, weather: true },
    {
      shell,
      room: card,
      version: 3,
      window: { ...window, forward: null },
      placements: [],
      labels,
      stats: { period: "month", periods: [period] },
      weather: false,
    },
  ],
  "history.tsx ComparePage": [
    { shell, rooms: [room], selected: [{ uid: H, name: H }], window, labels, roomsError: H, version: 3, weather: true },
    { shell, rooms: [room], selected: [], window, labels, version: 3, weather: false },
  ],
  "rooms.tsx RoomsPage": [
    {
      shell,
      rooms: [
        { room, devices: 0 },
        { room: { ...room, floor: null, side: null }, devices: 2 },
      ],
      create: posted("name", "floor", "side"),
      edit: { uid: H, form: posted("name", "floor", "side") },
      deleteError: { uid: H, message: H },
      notice: H,
      noticeAt: { uid: H },
      oob: true,
    },
    { shell: viewerShell, rooms: [{ room, devices: 1 }], create: posted("name"), notice: H },
  ],
  "auth.tsx PasswordInput": [{ form: posted("password"), name: "password", autocomplete: "new-password" }],
  "auth.tsx LoginPage": [
    { shell: nobodyShell, form: posted("name", "password", "next"), ownerExists: true, notice: H },
    { shell: nobodyShell, form: posted("name"), ownerExists: false, notice: H },
  ],
  "auth.tsx SetupPage": [
    { shell: nobodyShell, form: posted("token", "name", "password", "password2") },
    { shell: nobodyShell, form: posted("token"), done: true },
  ],
  "auth.tsx ResetPage": [{ shell: nobodyShell, form: posted("token", "password", "password2"), account: H }],
  "account.tsx Notice": [{ text: H }],
  "account.tsx AccountPage": [
    { shell, account: account(1, "owner"), password: posted("current", "password", "password2"), notice: H },
    { shell: viewerShell, account: account(2, "viewer"), password: posted("current") },
  ],
  "account.tsx UsersPage": [
    {
      shell,
      accounts: [account(1, "owner"), account(2, "viewer"), account(3, "viewer")],
      self: 1,
      add: posted("name", "password"),
      edit: { id: 2, form: posted("password"), which: "password" },
      notice: H,
    },
    {
      shell,
      accounts: [account(1, "owner"), account(2, "viewer")],
      self: 1,
      add: posted("name"),
      edit: { id: 2, form: posted("confirm"), which: "delete" },
    },
  ],
  "security.tsx TokensPage": [
    {
      shell,
      tokens: [
        { id: 1, name: H, scope: "write", prefix: H, created_at: T - DAY, last_used_at: T, revoked_at: null },
        { id: 2, name: H, scope: "read", prefix: H, created_at: T - DAY, last_used_at: null, revoked_at: T },
      ],
      form: posted("name", "scope"),
      created: { name: H, token: H },
      notice: H,
    },
  ],
  "alerts.tsx Severity": [{ severity: H }],
  "alerts.tsx AlertBanner": [
    { alerts: incidents, shell },
    { alerts: [], shell },
  ],
  "alerts.tsx AlertsSlot": [{ alerts: incidents, shell }, { shell }],
  "alerts.tsx AlertMark": [{ alerts: incidents }, { alerts: [incident()] }],
  "alerts.tsx AlertsPage": [
    { shell, active: incidents, history: [...resolved, ...incidents], nextBefore: 4, failed: 2, notice: H },
    { shell: viewerShell, active: [], history: [], nextBefore: null, failed: 0 },
  ],
  "alerts-rules.tsx Select": [{ form: posted("kind"), name: "kind", id: H, choices: [[H, H]] }],
  "alerts-rules.tsx RulesPage": [
    {
      shell,
      rules: [{ id: 1, name: H, description: H, severity: H, scope: H, enabled: false, values: { [H]: H, name: H, kind: H } }],
      scopes: [[H, H]],
      presets: [[H, H]],
      create: ruleForm(),
      preset: ruleForm(),
      edit: { id: 1, form: ruleForm() },
      notice: H,
    },
    { shell: viewerShell, rules: [], scopes: [], presets: [], create: ruleForm(), preset: ruleForm() },
  ],
  "alerts-channels.tsx ChannelsPage": [
    {
      shell,
      channels: (["ntfy", "webhook", "email"] as const).map((kind, id) => ({
        id,
        name: H,
        kind,
        summary: H,
        minSeverity: H,
        enabled: id !== 1,
        lastOkAt: T - DAY,
        lastError: H,
        lastErrorAt: T - 60_000,
        values: { [H]: H, name: H, url: H },
      })),
      create: channelForm(),
      edit: { id: 0, form: channelForm() },
      settings: posted("quiet_start", "quiet_end", "quiet_allows_critical", "repeat_minutes", "digest_time", "link_base"),
      tested: { id: 0, error: H },
      createdSecret: { name: H, secret: H },
      homeIds: [H],
      failed: [{ id: 1, channel: H, title: H, at: T, error: H }],
      timeZone: H,
      notice: H,
    },
    {
      shell,
      channels: [],
      create: channelForm(),
      settings: posted("quiet_start"),
      tested: { id: "mqtt", error: null },
      homeIds: [],
      failed: [],
      timeZone: H,
    },
  ],
  "security.tsx SecurityPage": [
    {
      shell,
      switches: { public_read: true, accept_anonymous_sensors: true },
      anonymousDevices: 3,
      enrollments: [{ id: 1, created_at: T - DAY, expires_at: T + DAY, uses: 1, max_uses: 2 }],
      enrollForm: posted("ttl_minutes", "max_uses"),
      enrolled: { token: H, command: H },
      kioskActive: true,
      kioskLink: H,
      notice: H,
    },
    {
      shell,
      switches: { public_read: false, accept_anonymous_sensors: false },
      anonymousDevices: 1,
      enrollments: [],
      enrollForm: posted("ttl_minutes"),
      kioskActive: false,
      notice: H,
    },
  ],
  "backups.tsx BackupsPage": [
    {
      shell,
      dir: H,
      time: "03:30",
      nextAt: T + DAY,
      running: null,
      lastOk: backupRow(false),
      last: backupRow(true),
      second: { dir: H, problem: H, warning: H },
      files: [{ name: H, at: T, size: 1e6 }],
      secondFiles: [{ name: H, at: T, size: 1e6 }],
      attempts: [backupRow(false), backupRow(true)],
      command: H,
      notice: H,
    },
    {
      shell: viewerShell,
      dir: H,
      time: "off",
      nextAt: null,
      running: { since: T, trigger: H },
      lastOk: null,
      last: null,
      second: null,
      files: [],
      secondFiles: [],
      attempts: [],
      command: H,
    },
  ],
  "api-docs.tsx ApiDocsPage": [
    {
      shell,
      doc: {
        openapi: H,
        info: { title: H, version: H, description: H },
        paths: {
          [H]: {
            get: {
              operationId: H,
              summary: H,
              description: H,
              tags: [H],
              "x-access": H,
              parameters: [{ name: H, in: "query", required: true, schema: { type: H, description: H }, example: H }],
              requestBody: { content: { "application/json": { schema: { description: H }, example: { [H]: H } } } },
              responses: { [H]: { description: H } },
            },
          },
        },
      },
    },
  ],
};

/** What the HTML tokenizer found: every element with its attributes, and the text between tags as written. */
function tokens(html: string): { elements: { tag: string; attributes: [string, string][] }[]; text: string } {
  const elements: { tag: string; attributes: [string, string][] }[] = [];
  let text = "";
  new HTMLRewriter()
    .on("*", { element: (e) => void elements.push({ tag: e.tagName, attributes: [...e.attributes] }) })
    .onDocument({ text: (t) => void (text += t.text) })
    .transform(html);
  return { elements, text };
}

/** Why `html` shows that hostile text was not escaped (empty when it was). */
function unescaped(html: string): string[] {
  const { elements, text } = tokens(html);
  const found: string[] = [];
  for (const { tag, attributes } of elements) {
    // The views have no inline script and no image: one of these came from the data.
    if (tag === "script" && !attributes.some(([name]) => name === "src")) found.push("an inline <script>");
    if (tag === "img") found.push("an <img>");
    for (const [name] of attributes) if (name.startsWith("on")) found.push(`an ${name} attribute on <${tag}>`);
  }
  // Escaped, the tail of H reads &#x27;&amp; in text; as written it is '& (no view writes that).
  if (text.includes("'&")) found.push("a ' and an & written raw in text");
  if (text.includes("alert(1)</")) found.push("markup written raw in text");
  return found;
}

const viewsDir = join(import.meta.dir, "..", "views");
const views: [key: string, view: (props: never) => JSX.Element][] = [];
for (const file of readdirSync(viewsDir).filter((f) => f.endsWith(".tsx"))) {
  const mod = (await import(join(viewsDir, file))) as Record<string, unknown>;
  for (const [name, value] of Object.entries(mod)) {
    if (typeof value === "function" && /^[A-Z]/.test(name))
      views.push([`${file} ${name}`, value as (props: never) => JSX.Element]);
  }
}

describe("escaping in every view", () => {
  test("every view in views/ has hostile data here (add it for a new view)", () => {
    expect(views.length).toBeGreaterThan(10);
    expect(views.map(([key]) => key).filter((key) => !(key in RENDERS))).toEqual([]);
    expect(Object.keys(RENDERS).filter((key) => !views.some(([k]) => k === key))).toEqual([]);
  });

  test("the check sees markup that is not escaped", () => {
    expect(unescaped(`<p>${H}</p>`)).not.toEqual([]);
    expect(unescaped(`<p title="${H}">x</p>`)).not.toEqual([]);
    expect(unescaped(`<p>Tom's R&amp;D</p><script src="/a.js"></script>`)).toEqual([]);
  });

  for (const [key, view] of views) {
    test(`${key} shows hostile text as text`, () => {
      for (const props of RENDERS[key] ?? []) {
        const html = view(props as never) as string;
        expect(typeof html).toBe("string");
        expect(unescaped(html)).toEqual([]);
      }
    });
  }

  test("a password typed into a form is never written back into a page", () => {
    const typed = "my-secret-password-123";
    const form = { values: { name: "x", password: typed, password2: typed, current: typed }, errors: {} };
    const pages = [
      LoginPage({ shell: nobodyShell, form, ownerExists: true }),
      SetupPage({ shell: nobodyShell, form }),
      ResetPage({ shell: nobodyShell, form }),
      AccountPage({ shell, account: { id: 1, name: "x", role: "owner", created_at: T, sessions: 1 }, password: form }),
      UsersPage({ shell, accounts: [], self: 1, add: form }),
    ];
    for (const html of pages) expect(html as string).not.toContain(typed);
  });

  test("the hostile text reaches the pages (the data is not ignored)", () => {
    for (const [key, view] of views) {
      // No text of their own.
      if (/ (Ago|StatusBadge|Time|Temp|Changes)$/.test(key)) continue;
      if (key.endsWith(" PasswordInput")) continue; // never writes what was typed (the next test)
      const html = (RENDERS[key] ?? []).map((props) => view(props as never) as string).join("");
      expect(html, key).toContain("alert(1)");
    }
  });
});
