/* The crime-scene search: a click on the map sets the point (written into the latitude and
   longitude fields, in WGS-84 as stored), typed coordinates move it; the circle shows the radius.
   The search itself is the form's GET: the server reads, checks and audits it. */
(function () {
  "use strict";
  var M = window.EbikeMap;
  var C = window.EbikeCoords;
  var config = M.json("map-config");
  var page = M.json("scene-page");
  var map = M.makeMap("map", config, page.strings);
  var datum = config.datum;
  var lat = document.getElementById("id_lat");
  var lon = document.getElementById("id_lon");
  var radius = document.getElementById("id_radius");
  var circle = null, centre = null;

  /* The tiles' datum back to WGS-84: GCJ-02 has no closed-form inverse; a few fixed-point steps
     bring it within a millimetre. */
  function toStored(y, x) {
    if (datum !== "gcj02") return [y, x];
    var w = [y, x];
    for (var i = 0; i < 6; i++) {
      var g = C.wgs84ToGcj02(w[0], w[1]);
      w = [w[0] - (g[0] - y), w[1] - (g[1] - x)];
    }
    return w;
  }

  function draw() {
    var y = parseFloat(lat.value), x = parseFloat(lon.value), r = parseFloat(radius.value);
    if (isNaN(y) || isNaN(x) || y < -90 || y > 90 || x < -180 || x > 180) return false;
    var at = C.toDisplay(y, x, datum);
    if (!centre) {
      centre = L.circleMarker(at, { radius: 6, color: "#b42318", weight: 2, fillOpacity: 1 }).addTo(map);
      circle = L.circle(at, { radius: isNaN(r) ? 0 : r, color: "#b42318", weight: 2, fillOpacity: 0.08 }).addTo(map);
    } else {
      centre.setLatLng(at);
      circle.setLatLng(at);
      if (!isNaN(r)) circle.setRadius(r);
    }
    centre.bindTooltip(page.strings.scene);
    map.getContainer().dataset.point = y.toFixed(6) + "," + x.toFixed(6);
    return at;
  }

  map.on("click", function (e) {
    var w = toStored(e.latlng.lat, e.latlng.lng);
    lat.value = w[0].toFixed(6);
    lon.value = w[1].toFixed(6);
    draw();
  });
  [lat, lon, radius].forEach(function (input) { input.addEventListener("input", draw); });

  var at = draw();
  if (at && circle) map.fitBounds(circle.getBounds(), { padding: [40, 40], maxZoom: 17 });
  map.getContainer().dataset.ready = "1";
  window.ebikeScene = { map: map, toStored: toStored };
})();
