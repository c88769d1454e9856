// Incidents on a map, offline: the shipped base map (GeoJSON outlines) unless a tile
// server was configured (athar serve --tiles URL).
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") { return; }
  var map = L.map(el).setView([34.8, 38.5], 6);
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, { maxZoom: 18 }).addTo(map);
  } else {
    fetch(el.dataset.basemap).then(function (r) { return r.json(); }).then(function (data) {
      L.geoJSON(data, { style: { color: "#777", weight: 1, fillColor: "#eee", fillOpacity: 1 } })
        .addTo(map).bringToBack();
    });
  }
  if (el.dataset.places) {
    // Towns and cities for orientation, labelled in the page's language.
    var lang = document.documentElement.lang === "ar" ? "name_ar" : "name_en";
    fetch(el.dataset.places).then(function (r) { return r.json(); }).then(function (data) {
      L.geoJSON(data, {
        pointToLayer: function (feature, latlng) {
          var p = feature.properties || {};
          return L.circleMarker(latlng, {
            radius: p.rank === 1 ? 3 : 2, color: "#555", weight: 1, fillOpacity: 1
          }).bindTooltip(String(p[lang] || ""), {
            permanent: p.rank === 1, direction: "right", className: "place", opacity: 0.8
          });
        }
      }).addTo(map);
    });
  }
  fetch(el.dataset.incidents, { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (data) {
      var layer = L.geoJSON(data, {
        onEachFeature: function (feature, lyr) {
          var p = feature.properties || {};
          var a = document.createElement("a");
          a.href = "/r/" + (p.id || "");
          a.textContent = p.title || p["title.ar"] || p["title.en"] || p.id || "";
          lyr.bindPopup(a);
        }
      }).addTo(map);
      if (layer.getLayers().length) { map.fitBounds(layer.getBounds(), { maxZoom: 12 }); }
    });
}());
