// TechTemp pages: keeps "… ago" and device statuses current between pushes
// from the server, and shows whether live updates are connected.
//
// The server decides each status and renders the instants it changes
// (data-late-at, data-offline-at, from the device's interval): this script only
// compares them with the server's clock, estimated from data-now.
(function () {
  "use strict";
  var body = document.body;
  var steps = JSON.parse(body.getAttribute("data-ago-steps") || "[]");
  var skew = Number(body.getAttribute("data-now")) - Date.now();

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

  setInterval(refresh, 5000);
  document.addEventListener("htmx:sseOpen", function () {
    body.setAttribute("data-live", "on");
  });
  document.addEventListener("htmx:sseError", function () {
    body.setAttribute("data-live", "off");
  });
})();
