/* "Where is my bike": one marker at the last position (already in the tiles' datum). */
(function () {
  "use strict";
  var M = window.EbikeMap;
  var config = M.json("map-config");
  var marker = M.json("bike-marker");
  var strings = M.json("map-strings");
  var map = M.makeMap("map", config, strings);
  L.circleMarker([marker.lat, marker.lon], { radius: 9, color: "#fff", weight: 2, fillColor: "#1f5fae", fillOpacity: 1 })
    .addTo(map);
  map.setView([marker.lat, marker.lon], 16);
  document.getElementById("map").dataset.ready = "1";
})();
