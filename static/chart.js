// Room and comparison charts: reads GET /api/v1/rooms/:uid/history and the
// room's placements, and draws temperature and humidity with uPlot.
//
// - Raw readings: one line per device. Aggregated buckets (hour, day): the
//   mean as a line inside a band from the minimum to the maximum.
// - Where no sensor reported, a null is inserted, and with spanGaps off uPlot
//   leaves a gap: a line never bridges missing data. For raw readings "missing"
//   means more than 2.5 times the device's usual spacing (two readings in a row
//   lost); for buckets, a bucket without readings.
// - Dashed vertical markers where a device was moved in or out of the room.
// Each drawn chart is listed in window.techtempCharts (tests read it).
(function () {
  "use strict";
  var charts = (window.techtempCharts = []);
  var BUCKET_S = { hour: 3600, day: 86400 };
  // Warm colours for temperature, cool ones for humidity; the n-th series of each chart is the same device or room.
  var QUANTITIES = [
    {
      key: "temperature",
      title: "Temperature",
      unit: "°C",
      colors: ["#d9480f", "#c2255c", "#e67700", "#ae3ec9", "#a61e4d", "#f08c00"],
    },
    { key: "humidity", title: "Humidity", unit: "%", colors: ["#1c7ed6", "#0c8599", "#2b8a3e", "#5f3dc4", "#1864ab", "#087f5b"] },
  ];

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

  // [xs, ...columns] in seconds, with a row of nulls wherever consecutive
  // points are further apart than maxGap seconds.
  function table(points, columns, maxGap) {
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
        out[c + 1].push(p[col]);
      });
      prev = x;
    });
    return out;
  }

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  // Tables and series of one quantity over every room's history.
  function build(rooms, histories, labels, q) {
    var tables = [],
      series = [{}],
      bands = [],
      color = 0;
    histories.forEach(function (h, r) {
      var prefix = rooms.length > 1 ? rooms[r].name : "";
      if (h.bucket === "raw") {
        var byDevice = {};
        h.points.forEach(function (p) {
          (byDevice[p.device_id] = byDevice[p.device_id] || []).push(p);
        });
        var uids = Object.keys(byDevice);
        uids.forEach(function (uid) {
          var pts = byDevice[uid];
          var xs = pts.map(function (p) {
            return Date.parse(p.ts) / 1000;
          });
          tables.push(table(pts, [q.key], Math.max(2.5 * medianSpacing(xs), 1)));
          var name = labels[uid] || uid;
          var label = prefix && uids.length > 1 ? prefix + " · " + name : prefix || name;
          series.push({ label: label, stroke: q.colors[color++ % q.colors.length], width: 2, spanGaps: false });
        });
      } else {
        var c = q.colors[color++ % q.colors.length];
        tables.push(table(h.points, [q.key, q.key + "_min", q.key + "_max"], 1.5 * BUCKET_S[h.bucket]));
        var first = series.length;
        series.push({ label: (prefix || "mean") + (prefix ? "" : " per " + h.bucket), stroke: c, width: 2, spanGaps: false });
        series.push({ label: "min", stroke: alpha(c, 0.35), width: 1, spanGaps: false });
        series.push({ label: "max", stroke: alpha(c, 0.35), width: 1, spanGaps: false });
        bands.push({ series: [first + 2, first + 1], fill: alpha(c, rooms.length > 1 ? 0.08 : 0.15) });
      }
    });
    return { data: tables.length ? uPlot.join(tables) : null, series: series, bands: bands };
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

  function draw(el, rooms, histories, placements) {
    var from = Number(el.getAttribute("data-from")),
      to = Number(el.getAttribute("data-to"));
    var labels = JSON.parse(el.getAttribute("data-labels") || "{}");
    var markers = markersFor(placements, from, to);
    var axisColor = getComputedStyle(document.body).color;
    el.textContent = "";
    if (
      !histories.some(function (h) {
        return h.points.length;
      })
    ) {
      el.textContent = "No readings in this window.";
      el.setAttribute("data-ready", "empty");
      return;
    }
    QUANTITIES.forEach(function (q) {
      var built = build(rooms, histories, labels, q);
      var title = document.createElement("div");
      title.className = "chart-title";
      title.textContent = q.title + " (" + q.unit + ")";
      el.appendChild(title);
      var box = document.createElement("div");
      el.appendChild(box);
      var u = new uPlot(
        {
          width: Math.max(el.clientWidth - 16, 240),
          height: window.innerWidth < 640 ? 200 : 260,
          series: built.series,
          bands: built.bands,
          cursor: { sync: { key: el.id } },
          scales: {
            x: {
              time: true,
              range: function () {
                return [from / 1000, to / 1000];
              },
            },
          },
          axes: [
            { stroke: axisColor, grid: { stroke: "rgba(128,128,128,.15)" } },
            { stroke: axisColor, grid: { stroke: "rgba(128,128,128,.15)" }, size: 44 },
          ],
          hooks: { draw: [drawMarkers(markers)] },
        },
        built.data,
        box,
      );
      charts.push({
        element: el.id,
        quantity: q.key,
        buckets: histories.map(function (h) {
          return h.bucket;
        }),
        markers: markers,
        u: u,
      });
    });
    el.setAttribute("data-ready", "drawn");
  }

  function init(el) {
    var rooms = JSON.parse(el.getAttribute("data-rooms"));
    var query =
      "?from=" + el.getAttribute("data-from") + "&to=" + el.getAttribute("data-to") + "&points=" + el.getAttribute("data-points");
    Promise.all([
      Promise.all(
        rooms.map(function (r) {
          return getJson("/api/v1/rooms/" + encodeURIComponent(r.uid) + "/history" + query);
        }),
      ),
      Promise.all(
        rooms.map(function (r) {
          return getJson("/api/v1/rooms/" + encodeURIComponent(r.uid) + "/placements");
        }),
      ),
    ])
      .then(function (res) {
        draw(el, rooms, res[0], rooms.length === 1 ? res[1][0] : []);
      })
      .catch(function (err) {
        el.textContent = "Cannot draw the chart: " + err.message;
        el.setAttribute("data-ready", "error");
      });
  }

  document.querySelectorAll("[data-chart]").forEach(init);
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
