/* The duty room's map: each open call where it was raised (rescue calls red, displacements amber)
   and, joined by a dashed line, the bike's latest position. "Show on the map" on a call's card
   brings its marker into view and opens it; a marker's popup links back to the card. */
(function () {
  "use strict";
  var M = window.EbikeMap;
  var C = window.EbikeCoords;
  var node = document.getElementById("duty-map");
  if (!node || !M || typeof L === "undefined") return;
  var data = M.json("duty-map-data");
  var strings = data.strings;
  var datum = data.config.datum;
  var map = M.makeMap("duty-map", data.config, strings);
  var COLOURS = { rescue: "#c0392b", displacement: "#d68910" };
  var markers = {}; // call id -> marker (where raised, or the latest position when none)
  var bounds = [];

  function show(point) { return C.toDisplay(point[0], point[1], datum); }

  data.calls.forEach(function (call) {
    var colour = COLOURS[call.kind] || "#2f6db5";
    var box = M.el("div", { "class": "duty-popup", "data-call": call.id });
    box.appendChild(M.el("strong", {}, call.title));
    if (call.alarm) box.appendChild(M.el("p", { "class": "muted" }, call.alarm + " · " + call.status));
    box.appendChild(M.el("a", { href: "#call-" + call.id }, "#" + call.id));
    var main = null;
    if (call.at) {
      main = L.circleMarker(show(call.at), { radius: 9, color: colour, fillColor: colour, fillOpacity: 0.8, weight: 2 })
        .bindTooltip(strings.raised_here).addTo(map);
      bounds.push(show(call.at));
    }
    if (call.now) {
      var now = L.circleMarker(show(call.now), { radius: 6, color: colour, fillColor: "#fff", fillOpacity: 1, weight: 3 })
        .bindTooltip(strings.now_here).addTo(map);
      bounds.push(show(call.now));
      if (call.at) L.polyline([show(call.at), show(call.now)], { color: colour, dashArray: "4 6", weight: 2 }).addTo(map);
      if (!main) main = now;
    }
    if (main) {
      main.bindPopup(box);
      main.callId = call.id;
      markers[call.id] = main;
    }
  });

  if (bounds.length) map.fitBounds(L.latLngBounds(bounds), { maxZoom: 16, padding: [30, 30] });

  document.querySelectorAll(".show-on-map").forEach(function (button) {
    button.addEventListener("click", function () {
      var marker = markers[button.dataset.call];
      if (!marker) return;
      node.scrollIntoView({ behavior: "smooth", block: "center" });
      map.setView(marker.getLatLng(), Math.max(map.getZoom(), 15));
      marker.openPopup();
    });
  });
  node.dataset.ready = "1";
  window.ebikeDutyMap = { map: map, markers: markers };
})();
