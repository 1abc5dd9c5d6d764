// History charts (a room, the comparison, a device): temperature and
// humidity from GET /api/v1/{rooms|devices}/:uid/history, drawn with uPlot,
// in the home's time zone and the browser's language (static/app.js), in
// °C or °F as this browser chose.
//
// - Raw readings: one line per device. Buckets (hour, day): the mean as a line
//   inside a band from the minimum to the maximum.
// - Where no sensor reported, a null breaks the line (a line never bridges
//   missing data): for raw readings, more than 2.5 times the device's usual
//   spacing; for buckets, a bucket without readings.
// - Colours from the page's palette (CSS --series-1…8, Okabe–Ito: told apart
//   with the common colour-blindnesses), one per room or device, the same in
//   both charts; the outdoor weather dashed, when it is on.
// - Zoom: drag across a chart (or pinch on a touch screen); both charts
//   follow; "Reset zoom" or a double click goes back to the window.
// - A touch shows a floating tooltip with the time and values (with units).
// - Live: when the server says a shown room or device has news (the hidden
//   #changes element of the page's event stream), the window is read again
//   and slides to now, keeping a zoom.
// Each drawn chart is listed in window.techtempCharts (tests read it).
(function () {
  "use strict";
  var T = window.techtemp;
  var charts = (window.techtempCharts = []);
  var groups = [];
  var BUCKET_S = { hour: 3600, day: 86400 };
  var QUANTITIES = [
    { key: "temperature", title: "Temperature", temp: true },
    { key: "humidity", title: "Humidity", temp: false },
  ];
  var skew = Number(document.body.getAttribute("data-now")) - Date.now();
  var partsFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: T.tz,
    hourCycle: "h23",
    hour: "2-digit",
    minute: "2-digit",
    day: "numeric",
  });
  var dayFormat = new Intl.DateTimeFormat(T.langs, { timeZone: T.tz, day: "numeric", month: "short" });
  var monthFormat = new Intl.DateTimeFormat(T.langs, { timeZone: T.tz, month: "short", year: "numeric" });

  function unitOf(q) {
    return q.temp ? "°" + T.unit() : "%";
  }
  function conv(q, v) {
    return v == null ? v : q.temp ? T.temp(v) : v;
  }

  function palette() {
    var style = getComputedStyle(document.body);
    var out = [];
    for (var i = 1; i <= 8; i++) out.push(style.getPropertyValue("--series-" + i).trim() || "#0072b2");
    return out;
  }
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  function getJson(url) {
    return fetch(url, { headers: { accept: "application/json" } }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
        return body.data;
      });
    });
  }

  function medianSpacing(xs) {
    var d = [];
    for (var i = 1; i < xs.length; i++) d.push(xs[i] - xs[i - 1]);
    d.sort(function (a, b) {
      return a - b;
    });
    return d.length ? d[d.length >> 1] : 0;
  }

  // [xs, ...columns] in seconds, with a row of nulls wherever consecutive points are further apart than maxGap seconds.
  function table(points, columns, maxGap, q) {
    var out = [[]];
    columns.forEach(function () {
      out.push([]);
    });
    var prev = null;
    points.forEach(function (p) {
      var x = Date.parse(p.ts) / 1000;
      if (prev !== null && x - prev > maxGap) {
        out[0].push((prev + x) / 2);
        for (var c = 1; c < out.length; c++) out[c].push(null);
      }
      out[0].push(x);
      columns.forEach(function (col, c) {
        out[c + 1].push(conv(q, p[col]));
      });
      prev = x;
    });
    return out;
  }

  // Tables and series of one quantity over every source's history (and the weather's).
  function build(group, q) {
    var colors = palette();
    var tables = [],
      series = [{ value: xValue }],
      bands = [],
      n = 0;
    function next() {
      var i = n++;
      return { color: colors[i % colors.length], dash: i >= colors.length ? [6, 3] : undefined };
    }
    function value(u, v) {
      return v == null ? "–" : v.toFixed(1) + " " + unitOf(q);
    }
    group.histories.forEach(function (h, r) {
      var prefix = group.sources.length > 1 ? group.sources[r].name : "";
      if (h.bucket === "raw") {
        var byDevice = {};
        h.points.forEach(function (p) {
          var id = p.device_id || group.sources[r].uid;
          (byDevice[id] = byDevice[id] || []).push(p);
        });
        var uids = Object.keys(byDevice);
        // A room of several devices: a colour per device; several rooms: a colour per room.
        var roomColor = group.sources.length > 1 ? next() : null;
        uids.forEach(function (uid) {
          var pts = byDevice[uid];
          var xs = pts.map(function (p) {
            return Date.parse(p.ts) / 1000;
          });
          tables.push(table(pts, [q.key], Math.max(2.5 * medianSpacing(xs), 1), q));
          var name = group.labels[uid] || uid;
          var label = prefix && uids.length > 1 ? prefix + " · " + name : prefix || name;
          var c = roomColor || next();
          series.push({ label: label, stroke: c.color, dash: c.dash, width: 2, spanGaps: false, value: value });
        });
      } else {
        var c = next();
        tables.push(table(h.points, [q.key, q.key + "_min", q.key + "_max"], 1.5 * BUCKET_S[h.bucket], q));
        var first = series.length;
        series.push({
          label: (prefix || "mean") + (prefix ? "" : " per " + h.bucket),
          stroke: c.color,
          dash: c.dash,
          width: 2,
          spanGaps: false,
          value: value,
        });
        series.push({ label: "min", stroke: alpha(c.color, 0.35), width: 1, spanGaps: false, value: value });
        series.push({ label: "max", stroke: alpha(c.color, 0.35), width: 1, spanGaps: false, value: value });
        bands.push({ series: [first + 2, first + 1], fill: alpha(c.color, group.sources.length > 1 ? 0.08 : 0.15) });
      }
    });
    if (group.weather && group.weather.length) {
      tables.push(table(group.weather, [q.key], 1.5 * 3600, q));
      var outside = getComputedStyle(document.body).getPropertyValue("--outside").trim() || "#888888";
      series.push({ label: "Outside", stroke: outside, dash: [4, 4], width: 1.5, spanGaps: false, value: value });
    }
    // Joined on one time axis, a series has no value at the other series' times (undefined, which uPlot
    // bridges); NULL_EXPAND (2) turns those next to a gap's null into nulls, so a gap stays a gap with several series.
    var nullModes = tables.map(function (t) {
      return t.map(function () {
        return 2;
      });
    });
    return { data: tables.length ? uPlot.join(tables, nullModes) : null, series: series, bands: bands };
  }

  function xValue(u, v) {
    return v == null ? "–" : T.format("dt", v * 1000);
  }

  // Axis labels in the home's zone and the browser's language: times within a day, the date at midnight, days, months.
  function xAxisValues(u, splits, axisIdx, space, incr) {
    return splits.map(function (s) {
      var ms = s * 1000;
      if (incr >= 28 * 86400) return monthFormat.format(ms);
      if (incr >= 86400) return dayFormat.format(ms);
      return partsFormat.format(ms).slice(-5) === "00:00" ? dayFormat.format(ms) : T.format("t", ms);
    });
  }

  function markersFor(placements, from, to) {
    var out = [];
    placements.forEach(function (p) {
      var inAt = Date.parse(p.from_ts),
        outAt = p.to_ts ? Date.parse(p.to_ts) : null;
      if (inAt >= from && inAt <= to) out.push({ ts: inAt / 1000, label: "→ " + p.device_uid });
      if (outAt !== null && outAt >= from && outAt <= to) out.push({ ts: outAt / 1000, label: p.device_uid + " →" });
    });
    return out;
  }

  function drawMarkers(markers) {
    return function (u) {
      var ctx = u.ctx,
        dpr = window.devicePixelRatio || 1,
        top = u.bbox.top,
        bottom = top + u.bbox.height;
      ctx.save();
      ctx.strokeStyle = ctx.fillStyle = getComputedStyle(document.body).color;
      ctx.globalAlpha = 0.7;
      ctx.lineWidth = dpr;
      ctx.setLineDash([4 * dpr, 4 * dpr]);
      ctx.font = 11 * dpr + "px system-ui, sans-serif";
      markers.forEach(function (m, i) {
        var x = Math.round(u.valToPos(m.ts, "x", true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, bottom);
        ctx.stroke();
        ctx.fillText(m.label, x + 3 * dpr, top + (12 + 12 * (i % 3)) * dpr);
      });
      ctx.restore();
    };
  }

  // ---- zoom ----

  function view(group) {
    return group.zoom || { min: group.from / 1000, max: group.to / 1000 };
  }
  function applyView(group) {
    var v = view(group);
    group.charts.forEach(function (c) {
      c.u.setScale("x", { min: v.min, max: v.max });
      c.zoomed = group.zoom !== null;
    });
    group.reset.hidden = group.zoom === null;
    group.el.setAttribute("data-zoomed", group.zoom ? "true" : "false");
  }
  function zoomTo(group, min, max) {
    var full = { min: group.from / 1000, max: group.to / 1000 };
    min = Math.max(min, full.min);
    max = Math.min(max, full.max);
    // Less than two minutes is not a useful view; the whole window is no zoom at all.
    if (max - min < 120) return;
    group.zoom = min <= full.min && max >= full.max ? null : { min: min, max: max };
    applyView(group);
  }

  // Pinch with two fingers; one finger moves the cursor (and the floating tooltip).
  function touchHandlers(group, u) {
    var pinch = null;
    function xOf(t) {
      return t.clientX - u.over.getBoundingClientRect().left;
    }
    u.over.addEventListener(
      "touchstart",
      function (e) {
        if (e.touches.length === 2) {
          var v = view(group);
          var a = xOf(e.touches[0]),
            b = xOf(e.touches[1]);
          pinch = { dist: Math.abs(a - b) || 1, center: u.posToVal((a + b) / 2, "x"), span: v.max - v.min };
          e.preventDefault();
        } else if (e.touches.length === 1) {
          var t = e.touches[0];
          u.setCursor({ left: xOf(t), top: t.clientY - u.over.getBoundingClientRect().top });
        }
      },
      { passive: false },
    );
    u.over.addEventListener(
      "touchmove",
      function (e) {
        if (pinch && e.touches.length === 2) {
          var d = Math.abs(xOf(e.touches[0]) - xOf(e.touches[1])) || 1;
          var span = (pinch.span * pinch.dist) / d;
          zoomTo(group, pinch.center - span / 2, pinch.center + span / 2);
          e.preventDefault();
        } else if (e.touches.length === 1) {
          var t = e.touches[0];
          u.setCursor({ left: xOf(t), top: t.clientY - u.over.getBoundingClientRect().top });
        }
      },
      { passive: false },
    );
    u.over.addEventListener("touchend", function (e) {
      if (e.touches.length < 2) pinch = null;
    });
  }

  // The floating tooltip: the time and each value at the cursor, with units.
  function tooltip(box) {
    var tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    box.appendChild(tip);
    return function (u) {
      var i = u.cursor.idx;
      if (i == null || u.cursor.left < 0) {
        tip.hidden = true;
        return;
      }
      var lines = [xValue(u, u.data[0][i])];
      u.series.forEach(function (s, k) {
        if (k === 0 || !s.show || s.label === "min" || s.label === "max") return;
        var v = u.data[k][i];
        if (v != null) lines.push(s.label + ": " + s.value(u, v));
      });
      tip.textContent = lines.join("\n");
      tip.hidden = false;
      var left = u.cursor.left + u.over.offsetLeft + 12;
      if (left + tip.offsetWidth > box.clientWidth) left = Math.max(0, u.cursor.left + u.over.offsetLeft - tip.offsetWidth - 12);
      tip.style.setProperty("left", left + "px");
      tip.style.setProperty("top", Math.max(0, u.cursor.top + u.over.offsetTop - tip.offsetHeight - 8) + "px");
    };
  }

  function draw(group) {
    var el = group.el;
    var markers = markersFor(group.placements, group.from, group.to);
    var axisColor = getComputedStyle(document.body).color;
    group.charts.forEach(function (c) {
      c.u.destroy();
      charts.splice(charts.indexOf(c), 1);
    });
    group.charts = [];
    group.area.textContent = "";
    if (
      !group.histories.some(function (h) {
        return h.points.length;
      })
    ) {
      group.area.textContent = "No readings in this window.";
      el.setAttribute("data-ready", "empty");
      return;
    }
    QUANTITIES.forEach(function (q) {
      var built = build(group, q);
      var title = document.createElement("div");
      title.className = "chart-title";
      title.textContent = q.title + " (" + unitOf(q) + ")";
      group.area.appendChild(title);
      var box = document.createElement("div");
      box.className = "chart-box";
      group.area.appendChild(box);
      var showTip = tooltip(box);
      var u = new uPlot(
        {
          width: Math.max(el.clientWidth - 16, 240),
          height: window.innerWidth < 640 ? 200 : 260,
          series: built.series,
          bands: built.bands,
          tzDate: function (ts) {
            return uPlot.tzDate(new Date(ts * 1e3), T.tz);
          },
          cursor: {
            sync: { key: el.id },
            drag: { x: true, y: false, setScale: false },
            bind: {
              dblclick: function () {
                return function () {
                  group.zoom = null;
                  applyView(group);
                  return null;
                };
              },
            },
          },
          select: { show: true },
          scales: {
            x: {
              time: true,
              range: function () {
                var v = view(group);
                return [v.min, v.max];
              },
            },
          },
          axes: [
            { stroke: axisColor, grid: { stroke: "rgba(128,128,128,.15)" }, values: xAxisValues },
            { stroke: axisColor, grid: { stroke: "rgba(128,128,128,.15)" }, size: 48 },
          ],
          hooks: {
            draw: [drawMarkers(markers)],
            setCursor: [showTip],
            setSelect: [
              function (u) {
                if (u.select.width > 4) {
                  var min = u.posToVal(u.select.left, "x");
                  var max = u.posToVal(u.select.left + u.select.width, "x");
                  u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
                  zoomTo(group, min, max);
                }
              },
            ],
          },
        },
        built.data,
        box,
      );
      touchHandlers(group, u);
      var chart = {
        element: el.id,
        quantity: q.key,
        unit: unitOf(q),
        buckets: group.histories.map(function (h) {
          return h.bucket;
        }),
        markers: markers,
        zoomed: group.zoom !== null,
        u: u,
      };
      group.charts.push(chart);
      charts.push(chart);
    });
    applyView(group);
    el.setAttribute("data-ready", "drawn");
    el.setAttribute("data-version", String(++group.drawn));
  }

  function load(group) {
    var query = "?from=" + group.from + "&to=" + group.to + "&points=" + group.points;
    var base = function (s) {
      return "/api/v1/" + (s.kind === "device" ? "devices/" : "rooms/") + encodeURIComponent(s.uid);
    };
    var single = group.sources.length === 1 && group.sources[0].kind === "room";
    return Promise.all([
      Promise.all(
        group.sources.map(function (s) {
          return getJson(base(s) + "/history" + query);
        }),
      ),
      single ? getJson(base(group.sources[0]) + "/placements") : Promise.resolve([]),
      group.withWeather
        ? getJson("/api/v1/weather?from=" + group.from + "&to=" + group.to).catch(function () {
            return { points: [] };
          })
        : Promise.resolve(null),
    ])
      .then(function (res) {
        group.histories = res[0];
        group.placements = res[1];
        group.weather = res[2] ? res[2].points : null;
        draw(group);
      })
      .catch(function (err) {
        group.area.textContent = "Cannot draw the chart: " + err.message;
        group.el.setAttribute("data-ready", "error");
      });
  }

  // News from the server: read the window again (sliding to now) when a shown room or device has some.
  function onChanges(text) {
    var news;
    try {
      news = JSON.parse(text);
    } catch (e) {
      return;
    }
    groups.forEach(function (group) {
      if (!group.live) return;
      var ours = group.sources.some(function (s) {
        return (s.kind === "room" ? news.rooms : news.devices).indexOf(s.uid) >= 0;
      });
      if (!ours) return;
      if (group.loading) {
        group.again = true;
        return;
      }
      // The server's clock, estimated; half a minute ahead so the reading that was news is inside (the estimate lags by the page's latency).
      var now = Date.now() + skew + 30000;
      var span = group.to - group.from;
      group.to = Math.max(group.to, now);
      group.from = group.to - span;
      group.loading = true;
      load(group).then(function () {
        group.loading = false;
        if (group.again) {
          group.again = false;
          onChanges(text);
        }
      });
    });
  }

  function init(el) {
    var area = document.createElement("div");
    var reset = document.createElement("button");
    reset.type = "button";
    reset.className = "secondary reset-zoom";
    reset.textContent = "Reset zoom";
    reset.hidden = true;
    el.textContent = "";
    el.appendChild(reset);
    el.appendChild(area);
    var group = {
      el: el,
      area: area,
      reset: reset,
      sources: JSON.parse(el.getAttribute("data-sources")),
      labels: JSON.parse(el.getAttribute("data-labels") || "{}"),
      from: Number(el.getAttribute("data-from")),
      to: Number(el.getAttribute("data-to")),
      points: el.getAttribute("data-points"),
      live: el.getAttribute("data-live") === "true",
      withWeather: el.getAttribute("data-weather") === "true",
      zoom: null,
      charts: [],
      histories: [],
      placements: [],
      weather: null,
      drawn: 0,
    };
    reset.addEventListener("click", function () {
      group.zoom = null;
      applyView(group);
    });
    groups.push(group);
    load(group);
  }

  document.querySelectorAll("[data-chart]").forEach(init);
  document.addEventListener("htmx:sseMessage", function (e) {
    if (e.target && e.target.id === "changes") onChanges(e.detail && e.detail.data);
  });
  // °C/°F changed: draw again in the new unit.
  document.addEventListener("techtemp:unit", function () {
    groups.forEach(function (group) {
      if (group.charts.length) draw(group);
    });
  });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      charts.forEach(function (c) {
        var el = document.getElementById(c.element);
        c.u.setSize({ width: Math.max(el.clientWidth - 16, 240), height: c.u.height });
      });
    }, 150);
  });
})();
