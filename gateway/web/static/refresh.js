// Swaps in a fresh copy of the page's live part every data-refresh seconds, and says plainly
// when it cannot, so nobody takes old water levels for new ones. The time in that notice is in
// the city's time zone (data-tz), as every other time on the page, whatever the phone's zone.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) return;
  var every = Math.max(1, parseInt(live.dataset.refresh || "60", 10)) * 1000;
  var lastOk = new Date();
  var notice = document.createElement("p");
  notice.className = "offline";
  notice.setAttribute("role", "alert");
  notice.hidden = true;
  live.parentNode.insertBefore(notice, live);

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function cityTime(date) {
    var zone = live.dataset.tz;
    if (zone && window.Intl) {
      var parts = {};
      new Intl.DateTimeFormat("en-US", {
        timeZone: zone, month: "numeric", day: "numeric", hour: "numeric", minute: "2-digit",
        hourCycle: "h23"
      }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
      return parts.month + "/" + parts.day + " " + parseInt(parts.hour, 10) + ":" + parts.minute;
    }
    return (date.getMonth() + 1) + "/" + date.getDate() + " " + date.getHours() + ":" +
      pad(date.getMinutes());
  }

  function refresh() {
    fetch(live.dataset.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var open = {};
        live.querySelectorAll("details[open]").forEach(function (d) {
          if (d.parentNode.id) open[d.parentNode.id] = true;
        });
        live.innerHTML = html;
        Object.keys(open).forEach(function (id) {
          var d = document.querySelector("#" + id + " > details");
          if (d) d.open = true;
        });
        lastOk = new Date();
        notice.hidden = true;
        document.dispatchEvent(new Event("live-updated"));
      })
      .catch(function () {
        notice.textContent = (live.dataset.offline || "").replace("{time}", cityTime(lastOk));
        notice.hidden = false;
      });
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
