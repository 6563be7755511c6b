// The map of the river and sightings pages: one marker per line of the page's list that has a
// position (data-lat, data-lon), in that line's own colour (so the stylesheet is the one place
// colours live), redrawn after each refresh. Without Leaflet the map stays hidden and the list
// says it all; without tiles (no network to the tile server, or none configured) the markers
// still show.
(function () {
  "use strict";
  var holder = document.getElementById("map");
  if (!holder || !window.L) return;
  var map = L.map(holder, { scrollWheelZoom: false, zoomSnap: 0.5 });
  if (holder.dataset.tiles) {
    L.tileLayer(holder.dataset.tiles, {
      maxZoom: 18,
      attribution: holder.dataset.attribution || ""
    }).addTo(map);
  }
  var markers = L.layerGroup().addTo(map);
  var fitted = false;

  function draw() {
    var slot = document.getElementById("map-slot");
    if (!slot) return;
    if (holder.parentNode !== slot) slot.appendChild(holder);
    holder.hidden = false;
    markers.clearLayers();
    var points = [];
    document.querySelectorAll("#live li[data-lat]").forEach(function (line) {
      var at = [parseFloat(line.dataset.lat), parseFloat(line.dataset.lon)];
      L.circleMarker(at, {
        radius: 11,
        color: "#222",
        weight: 2,
        fillColor: getComputedStyle(line).backgroundColor,
        fillOpacity: 1,
        className: "marker marker-" + line.dataset.state
      })
        .bindTooltip(line.dataset.label)
        .on("click", function () {
          if (line.dataset.device) location.hash = "site-" + line.dataset.device;
        })
        .addTo(markers);
      points.push(at);
    });
    map.invalidateSize();
    if (!fitted && points.length) {
      map.fitBounds(points, { padding: [28, 28], maxZoom: 14 });
      fitted = true;
    }
  }

  draw();
  document.addEventListener("live-updated", draw);
})();
