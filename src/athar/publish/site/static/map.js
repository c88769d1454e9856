// The map page: published incidents as points over a plain background; tiles only when
// the publisher named a tile server (data-tiles). No HTML strings: popups are built from
// DOM text nodes, so a title cannot inject markup.
(function () {
  "use strict";
  var box = document.getElementById("map");
  var points = window.ATHAR_POINTS;
  if (!box || !points || typeof L === "undefined") { return; }
  var lang = box.getAttribute("data-lang") === "ar" ? "ar" : "en";
  var map = L.map(box, { attributionControl: false });
  var tiles = box.getAttribute("data-tiles");
  if (tiles) { L.tileLayer(tiles, { maxZoom: 18 }).addTo(map); }
  var layer = L.geoJSON(points, {
    pointToLayer: function (feature, latlng) {
      return L.circleMarker(latlng, { radius: 7, color: "#8a1c1c", weight: 2, fillOpacity: 0.6 });
    },
    onEachFeature: function (feature, marker) {
      var p = feature.properties;
      var wrap = document.createElement("div");
      var link = document.createElement("a");
      link.setAttribute("href", "incident-" + p.id + ".html");
      link.textContent = p.title[lang] || p.title.en || p.title.ar || p.id;
      wrap.appendChild(link);
      if (p.date) {
        var when = document.createElement("div");
        when.textContent = p.date;
        wrap.appendChild(when);
      }
      if (p.killed) {
        var killed = document.createElement("div");
        killed.textContent = p.killed;
        wrap.appendChild(killed);
      }
      marker.bindPopup(wrap);
    }
  }).addTo(map);
  if (points.features.length) {
    map.fitBounds(layer.getBounds(), { padding: [30, 30], maxZoom: 12 });
  } else {
    map.setView([0, 0], 2);
  }
}());
