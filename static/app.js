// TechTemp pages: times in the home's zone written in the browser's language,
// °C or °F as this browser chose, "… ago" and statuses kept current between
// pushes from the server, and whether live updates are connected.
//
// - Times: every <time data-fmt> holds an instant (datetime) that the server
//   wrote in the home's zone (body data-tz); it is written again here in the
//   browser's language and clock (24-hour unless the language uses 12), still
//   in the home's zone, whatever zone the browser is in.
// - Units: values in °C carry data-c (data-dc for a difference); with °F
//   chosen (the button in the top bar, kept in localStorage) they are shown
//   converted, and every unit label (class tu) says °F.
// - Statuses: the server renders the instants each status changes
//   (data-late-at, data-offline-at, from the device's interval). They are
//   aged here only while the page's live connection is open: a page the
//   server does not keep current never turns a device offline by itself.
(function () {
  "use strict";
  var body = document.body;
  var steps = JSON.parse(body.getAttribute("data-ago-steps") || "[]");
  var skew = Number(body.getAttribute("data-now")) - Date.now();
  var tz = body.getAttribute("data-tz") || undefined;
  var langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  var UNIT_KEY = "techtemp-unit";

  function storedUnit() {
    try {
      return localStorage.getItem(UNIT_KEY) === "F" ? "F" : "C";
    } catch (e) {
      return "C";
    }
  }
  var unit = storedUnit();

  // 24-hour (14:05, 04:30) unless the language counts hours in twelves (2:05 PM).
  var hour = new Intl.DateTimeFormat(langs, { hour: "numeric" }).resolvedOptions().hour12 ? "numeric" : "2-digit";
  var FORMATS = {
    dt: { day: "numeric", month: "short", hour: hour, minute: "2-digit" },
    dty: { day: "numeric", month: "short", year: "numeric", hour: hour, minute: "2-digit" },
    t: { hour: hour, minute: "2-digit" },
    d: { day: "numeric", month: "short", year: "numeric" },
    m: { month: "long", year: "numeric" },
  };
  var formatters = {};
  function format(style, ms) {
    if (!formatters[style]) {
      var options = Object.assign({ timeZone: tz }, FORMATS[style]);
      try {
        formatters[style] = new Intl.DateTimeFormat(langs, options);
      } catch (e) {
        delete options.timeZone;
        formatters[style] = new Intl.DateTimeFormat(langs, options);
      }
    }
    return formatters[style].format(ms);
  }
  function yearOf(ms) {
    return format("m", ms).replace(/\D/g, "").slice(-4);
  }
  // Shared with the charts (static/chart.js): the same language, zone and unit.
  window.techtemp = {
    tz: tz,
    langs: langs,
    format: format,
    unit: function () {
      return unit;
    },
    temp: function (c) {
      return unit === "F" ? (c * 9) / 5 + 32 : c;
    },
  };

  function localise(root) {
    var now = Date.now() + skew;
    root.querySelectorAll("time[data-fmt]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("datetime"));
      var style = el.getAttribute("data-fmt");
      if (style === "dt" && yearOf(ms) !== yearOf(now)) style = "dty";
      el.textContent = format(style, ms);
    });
    root.querySelectorAll("[data-c],[data-dc]").forEach(function (el) {
      var delta = el.hasAttribute("data-dc");
      var c = Number(el.getAttribute(delta ? "data-dc" : "data-c"));
      var v = unit === "F" ? (delta ? (c * 9) / 5 : (c * 9) / 5 + 32) : c;
      var text = v.toFixed(Number(el.getAttribute("data-digits") || 1));
      el.textContent = (delta && v > 0 ? "+" : "") + text;
    });
    root.querySelectorAll(".tu").forEach(function (el) {
      el.textContent = el.textContent.replace(/°[CF]/, unit === "F" ? "°F" : "°C");
    });
  }

  // The wording table comes from views/parts.tsx (AGO_STEPS): [below, unit, words].
  function ago(ts, now) {
    var age = Math.max(0, now - ts);
    var step = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++)
      if (age < steps[i][0]) {
        step = steps[i];
        break;
      }
    return step[1] ? Math.floor(age / step[1]) + step[2] : step[2];
  }

  function refresh() {
    var now = Date.now() + skew;
    document.querySelectorAll("[data-ago]").forEach(function (el) {
      el.textContent = ago(Number(el.getAttribute("data-ago")), now);
    });
    if (body.getAttribute("data-live") !== "on") return;
    document.querySelectorAll("[data-late-at]").forEach(function (el) {
      var status =
        now >= Number(el.getAttribute("data-offline-at"))
          ? "offline"
          : now >= Number(el.getAttribute("data-late-at"))
            ? "late"
            : "online";
      if (el.textContent !== status) {
        el.textContent = status;
        el.className = "status " + status;
      }
    });
  }

  // The °C/°F choice: a button in the top bar (shown only with JavaScript, which does the converting).
  var toggle = document.getElementById("unit-toggle");
  function label() {
    toggle.textContent = unit === "F" ? "°F" : "°C";
    toggle.setAttribute("aria-label", "Temperatures in " + (unit === "F" ? "Fahrenheit" : "Celsius") + "; switch");
  }
  if (toggle) {
    toggle.hidden = false;
    label();
    toggle.addEventListener("click", function () {
      unit = unit === "F" ? "C" : "F";
      try {
        localStorage.setItem(UNIT_KEY, unit);
      } catch (e) {}
      label();
      localise(document);
      document.dispatchEvent(new CustomEvent("techtemp:unit"));
    });
  }

  localise(document);
  // Content swapped in by htmx (live cards, a form's answer) is written the same way.
  document.addEventListener("htmx:load", function (e) {
    localise(e.target);
  });
  setInterval(refresh, 5000);
  document.addEventListener("htmx:sseOpen", function () {
    body.setAttribute("data-live", "on");
  });
  document.addEventListener("htmx:sseError", function () {
    body.setAttribute("data-live", "off");
  });
})();
