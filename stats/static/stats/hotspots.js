/* The theft-hotspot map of the dashboard: the grid cells of the period (GeoJSON in WGS 84 from
   stats.selectors.theft_hotspots), shaded by thefts per cell, on the same background as the
   officer map (web/mapbase.js; cells shifted to GCJ-02 when the tiles are drawn in it). */
(function () {
  "use strict";
  var M = window.EbikeMap;
  var C = window.EbikeCoords;
  var node = document.getElementById("hotspot-map");
  if (!node || !M || typeof L === "undefined") return;
  var data = M.json("hotspot-map-data");
  var strings = data.strings;
  var map = M.makeMap("hotspot-map", data.config, strings);
  var datum = data.config.datum;
  var COLOURS = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"];
  var features = data.cells.features;
  var most = features.reduce(function (m, f) { return Math.max(m, f.properties.reports); }, 0);

  function shade(reports) {
    /* Five equal steps from one theft to the busiest cell of the period. */
    if (most <= 1) return COLOURS[COLOURS.length - 1];
    var step = Math.min(COLOURS.length - 1, Math.floor(((reports - 1) / (most - 1)) * COLOURS.length));
    return COLOURS[step];
  }

  function bounds(step) {
    /* The smallest and largest count shaded with COLOURS[step] (the inverse of shade), or null
       when no whole number of thefts falls in that step. */
    var last = step === COLOURS.length - 1;
    var low = most <= 1 ? 1 : Math.ceil(1 + (step * (most - 1)) / COLOURS.length);
    var high = last ? most : most <= 1 ? 0 : Math.ceil(1 + ((step + 1) * (most - 1)) / COLOURS.length) - 1;
    return low > high ? null : [low, high];
  }

  var layer = L.geoJSON(data.cells, {
    coordsToLatLng: function (c) { var p = C.toDisplay(c[1], c[0], datum); return L.latLng(p[0], p[1]); },
    style: function (f) {
      return { color: "#7f1d1d", weight: 0.6, fillColor: shade(f.properties.reports), fillOpacity: 0.7 };
    },
    onEachFeature: function (f, cell) {
      var p = f.properties;
      var box = M.el("div", { "class": "hotspot-card", "data-cell": p.cell });
      box.appendChild(M.el("p", {}, strings.rank + " " + p.rank + " · " + strings.reports + " " + p.reports));
      box.appendChild(M.el("p", { "class": "muted mono" }, strings.cell + " " + p.cell));
      cell.bindPopup(box);
    }
  }).addTo(map);

  if (features.length) {
    map.fitBounds(layer.getBounds(), { maxZoom: 14, padding: [20, 20] });
    var legend = L.control({ position: "bottomright" });
    legend.onAdd = function () {
      var box = M.el("div", { "class": "hotspot-legend" });
      box.appendChild(M.el("strong", {}, strings.legend));
      COLOURS.forEach(function (colour, step) {
        var b = bounds(step);
        if (!b) return;
        var text = b[0] === b[1] ? String(b[0]) : b[0] + "–" + b[1];
        var row = M.el("div");
        var swatch = M.el("i");
        swatch.style.background = colour;
        row.appendChild(swatch);
        row.appendChild(document.createTextNode(text));
        box.appendChild(row);
      });
      return box;
    };
    legend.addTo(map);
  }
  node.dataset.ready = "1";
  window.ebikeHotspotMap = { map: map, layer: layer };
})();
