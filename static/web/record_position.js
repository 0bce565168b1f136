/* The filing record's small map: one marker at the bike's last position (already in the tiles'
   datum); the coordinates are written beside it. */
(function () {
  "use strict";
  var M = window.EbikeMap;
  var config = M.json("map-config");
  var page = M.json("record-position");
  if (!page.at) return;
  var map = M.makeMap("map", config, page.strings);
  L.circleMarker(page.at, { radius: 8, color: "#fff", weight: 2, fillColor: "#b42318", fillOpacity: 1 }).addTo(map);
  map.setView(page.at, 16);
  map.getContainer().dataset.ready = "1";
})();
