// The guardians' page: fill each child's card from /api/children/{id}/today and draw the map.
// The words (time, accuracy, arrival) are written first, so the page says where the child is
// even when no map tile loads; the map is drawn only if Leaflet is there.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("config").dataset.config);
  const clock = new Intl.DateTimeFormat(config.lang === "en" ? "en-GB" : "ja-JP", {
    hour: "2-digit", minute: "2-digit", timeZone: config.timezone,
  });
  const fmt = (template, values) =>
    template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));

  function describe(card, data) {
    const where = card.querySelector(".where");
    if (!data.latest) {
      where.textContent = where.dataset.none;
    } else {
      const at = fmt(config.at, { time: clock.format(new Date(data.latest.ts)) });
      const acc = data.latest.acc == null
        ? config.accuracy_unknown
        : fmt(config.accuracy, { acc: Math.round(data.latest.acc) });
      where.textContent = `${data.latest.lat.toFixed(5)}, ${data.latest.lon.toFixed(5)} (${acc}) ${at}`;
      where.dataset.ts = String(data.latest.ts);
    }
    for (const kind of ["arrival", "departure"]) {
      if (data[kind]) card.querySelector("." + kind).textContent = clock.format(new Date(data[kind]));
    }
  }

  function draw(card, data) {
    if (typeof L === "undefined" || !data.latest) return;
    const el = card.querySelector(".map");
    const here = [data.latest.lat, data.latest.lon];
    const map = L.map(el).setView(here, 16);
    L.tileLayer(config.tiles, { maxZoom: 18, attribution: config.attribution }).addTo(map);
    if (data.track.length > 1) L.polyline(data.track.map((p) => [p[0], p[1]])).addTo(map);
    if (data.latest.acc != null) L.circle(here, { radius: data.latest.acc }).addTo(map);
    L.circleMarker(here, { radius: 7, weight: 2 }).addTo(map);
    el.dataset.drawn = "1";
  }

  async function load(card) {
    const response = await fetch(`/api/children/${encodeURIComponent(card.dataset.child)}/today`,
      { credentials: "same-origin" });
    if (!response.ok) { card.dataset.state = "refused"; return; }
    const data = await response.json();
    describe(card, data);
    card.dataset.state = "loaded";
    draw(card, data);
  }

  for (const card of document.querySelectorAll(".child")) load(card);
})();
