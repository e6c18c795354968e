// The console's progressive enhancement: instants in the viewer's time zone, and live
// countdowns that turn amber at the warning and red at the breach, with a word and an icon
// as well as the colour. Without this script the server's rendering (UTC) stands.
(function () {
  "use strict";

  var LABELS = {
    ok: ["\u25f7", "On track"],
    warn: ["\u26a0", "Warning"],
    breach: ["\u2716", "Breached"]
  };
  var zone = "UTC";
  var formatter = null;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    formatter = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short"
    });
  } catch (e) {
    formatter = null;
  }

  function localTimes(root) {
    root.querySelectorAll("[data-viewer-zone]").forEach(function (el) { el.textContent = zone; });
    if (!formatter) { return; }
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (!isNaN(at.getTime())) {
        el.textContent = formatter.format(at);
        el.title = el.getAttribute("datetime");
      }
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // The same wording as api/console/views.py time_left_text.
  function leftText(seconds) {
    var whole = Math.floor(Math.abs(seconds));
    var days = Math.floor(whole / 86400);
    var hours = Math.floor((whole % 86400) / 3600);
    var minutes = Math.floor((whole % 3600) / 60);
    var secs = whole % 60;
    var text;
    if (days) { text = days + " d " + hours + " h"; }
    else if (hours) { text = hours + " h " + pad(minutes) + " min"; }
    else if (minutes) { text = minutes + " min " + pad(secs) + " s"; }
    else { text = secs + " s"; }
    return seconds > 0 ? text + " left" : "overdue by " + text;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-live='1']").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      var warnAttr = el.getAttribute("data-warn");
      var warn = warnAttr ? Date.parse(warnAttr) : NaN;
      var binding = el.getAttribute("data-binding") === "1";
      var signal = el.getAttribute("data-signal");
      if (binding && signal !== "breach") {
        if (now >= due) { signal = "breach"; }
        else if (!isNaN(warn) && now >= warn) { signal = "warn"; }
      }
      if (signal !== el.getAttribute("data-signal") && LABELS[signal]) {
        el.setAttribute("data-signal", signal);
        el.querySelector(".cd-icon").textContent = LABELS[signal][0];
        el.querySelector(".cd-word").textContent = LABELS[signal][1];
      }
      var left = el.querySelector(".cd-left");
      if (left) { left.textContent = leftText((due - now) / 1000); }
    });
  }

  function start() {
    localTimes(document);
    tick();
    window.setInterval(tick, 1000);
    document.body.addEventListener("htmx:afterSettle", function (event) {
      localTimes(event.target);
      tick();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
