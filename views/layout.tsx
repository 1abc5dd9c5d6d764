/** @jsxImportSource @kitajs/html */
// The page around every view: head (stylesheet, manifest, icons, scripts),
// the navigation bar with who is signed in, the warnings every page shows,
// and <main>. The session's CSRF token rides on <body> as hx-headers, so
// every htmx request sends it (X-CSRF-Token); plain forms carry it as a
// hidden field (Csrf in parts.tsx).

import { AGO_STEPS, Csrf, esc, type Banner, type Shell } from "./parts.tsx";

/** Which section of the navigation a page belongs to. */
export type Section = "dashboard" | "compare" | "devices" | "rooms" | "account" | "alerts" | "backups" | "docs";

// htmx settings: no inline <style> (the CSP forbids it), no eval, and 4xx
// responses are swapped too: they are pages that show what to fix next to the field.
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  responseHandling: [
    { code: "204", swap: false },
    { code: "[234]..", swap: true },
    { code: "...", swap: false, error: true },
  ],
});

const NAV: [Section, string, string][] = [
  ["dashboard", "/", "Rooms"],
  ["compare", "/compare", "Compare"],
  ["devices", "/devices", "Devices"],
  ["rooms", "/rooms", "Manage rooms"],
  ["alerts", "/alerts", "Alerts"],
  // The owner's only (shown when the forms are: lib/server/http/pages/backups.ts).
  ["backups", "/backups", "Backups"],
];

/** Who is signed in, with the way to their account and out; or the way in. */
function Who({ shell }: { shell: Shell }): JSX.Element {
  const { viewer } = shell;
  if (viewer.kind === "session") {
    return (
      <div class="who">
        <a href="/account" class="account">
          {esc(viewer.name)}
          {viewer.role === "viewer" ? <small> (viewer)</small> : ""}
        </a>
        <form method="post" action="/logout" class="inline">
          <Csrf shell={shell} />
          <button type="submit" class="link">
            Sign out
          </button>
        </form>
      </div>
    );
  }
  if (viewer.kind === "anonymous" && !shell.banners.some((b) => b.id === "setup")) {
    return (
      <div class="who">
        <a href="/login">Sign in</a>
      </div>
    );
  }
  return "";
}

/** A warning across the top, with its one-click fix. */
function BannerLine({ banner, shell }: { banner: Banner; shell: Shell }): JSX.Element {
  return (
    <div class="banner" id={`banner-${banner.id}`} role="status">
      <span>{esc(banner.text)}</span>
      {banner.link ? <a href={banner.link.href}>{esc(banner.link.label)}</a> : ""}
      {banner.action ? (
        <form method="post" action={banner.action.path} class="inline">
          <Csrf shell={shell} />
          {Object.entries(banner.action.fields).map(([name, value]) => (
            <input type="hidden" name={name} value={value} />
          ))}
          <button type="submit">{esc(banner.action.label)}</button>
        </form>
      ) : (
        ""
      )}
    </div>
  );
}

/** A whole page. `live` adds the SSE extension, `charts` adds uPlot and the chart script, `scripts` more of ours. */
export function Layout(props: {
  shell: Shell;
  title: string;
  section: Section;
  live?: boolean;
  charts?: boolean;
  scripts?: "auth.js"[];
  children: JSX.Element;
}): JSX.Element {
  const { assets, now, viewer } = props.shell;
  const kiosk = viewer.kind === "kiosk";
  return (
    <>
      {"<!doctype html>"}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="color-scheme" content="light dark" />
          <meta name="theme-color" content="#0f766e" />
          <meta name="htmx-config" content={HTMX_CONFIG} />
          <title>{esc(props.title)} · TechTemp</title>
          <link rel="stylesheet" href={assets["app.css"]} />
          {props.charts ? <link rel="stylesheet" href={assets["uPlot.min.css"]} /> : ""}
          <link rel="manifest" href="/manifest.webmanifest" />
          <link rel="icon" href={assets["icon.svg"]} type="image/svg+xml" />
          <link rel="apple-touch-icon" href={assets["apple-touch-icon.png"]} />
          <script src={assets["htmx.min.js"]} defer></script>
          {props.live ? <script src={assets["sse.min.js"]} defer></script> : ""}
          <script src={assets["app.js"]} defer></script>
          {props.charts ? <script src={assets["uPlot.iife.min.js"]} defer></script> : ""}
          {props.charts ? <script src={assets["chart.js"]} defer></script> : ""}
          {(props.scripts ?? []).map((name) => (
            <script src={assets[name]} defer></script>
          ))}
        </head>
        <body
          data-now={String(now)}
          data-tz={props.shell.timeZone}
          data-ago-steps={JSON.stringify(AGO_STEPS)}
          hx-headers={viewer.csrf === null ? undefined : JSON.stringify({ "X-CSRF-Token": viewer.csrf })}
        >
          <header class="top">
            <a class="brand" href="/">
              TechTemp
            </a>
            {kiosk ? (
              ""
            ) : (
              <nav>
                {NAV.filter(([section]) => section !== "backups" || props.shell.canWrite).map(([section, href, label]) => (
                  <a href={href} aria-current={section === props.section ? "page" : undefined}>
                    {label}
                  </a>
                ))}
              </nav>
            )}
            {props.live ? <span class="live">live</span> : ""}
            <button type="button" id="unit-toggle" class="unit" hidden>
              °C
            </button>
            <Who shell={props.shell} />
          </header>
          {props.shell.banners.map((banner) => (
            <BannerLine banner={banner} shell={props.shell} />
          ))}
          {props.children}
        </body>
      </html>
    </>
  );
}

/** The heading of an error page by status. */
const TITLES: Record<number, string> = {
  401: "Sign in first",
  403: "Not allowed",
  404: "Not found",
  429: "Too many attempts",
};

/** A page for an error (unknown room, bad link, a refusal), with the message. */
export function ErrorPage(props: { shell: Shell; status: number; message: string }): JSX.Element {
  return (
    <Layout shell={props.shell} title={TITLES[props.status] ?? "Error"} section="dashboard">
      <main id="content">
        <h1>{TITLES[props.status] ?? "Something went wrong"}</h1>
        <p safe>{props.message}</p>
        <p>{props.status === 401 ? <a href="/login">Sign in</a> : <a href="/">Back to the rooms</a>}</p>
      </main>
    </Layout>
  );
}
