/* The trace of one bike: the simplified line since the theft and the fixes for a replay with a time
   slider, from the tracing API (GeoJSON in WGS-84; converted here when the tiles are GCJ-02); the
   stops the page lists (already in the tiles' datum), drawn as numbered markers. */
(function () {
  "use strict";
  var M = window.EbikeMap;
  var config = M.json("map-config");
  var page = M.json("trace-page");
  var strings = page.strings;
  var map = M.makeMap("map", config, strings);
  var datum = config.datum;
  var status = document.getElementById("trace-status");
  var empty = document.getElementById("trace-empty");
  var player = document.getElementById("replay");
  var slider = document.getElementById("replay-slider");
  var clock = document.getElementById("replay-time");
  var speedText = document.getElementById("replay-speed");
  var playButton = document.getElementById("replay-play");
  var MAX_PAGES = 20;

  function xy(lon, lat) { return window.EbikeCoords.toDisplay(lat, lon, datum); }

  function get(url, params) {
    var query = new URLSearchParams(params);
    if (page.urls.reason) query.set("reason", page.urls.reason);
    if (page.urls.search) query.set("search", page.urls.search);
    return fetch(url + "?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) throw new Error(data.detail || strings.failed);
          return data;
        });
      });
  }

  function loadTrajectory() {
    var points = [];
    var line = null;
    var meta = null;
    function pageAt(after, n) {
      var params = { limit: 5000 };
      if (after) { params.after = after; params.line = "false"; }
      return get(page.urls.trajectory, params).then(function (data) {
        if (!meta) meta = data.metadata;
        data.features.forEach(function (f) {
          if (f.properties.kind === "line") line = f.geometry.coordinates;
          else if (f.properties.kind === "point" && f.properties.valid && !f.properties.outlier) {
            points.push({
              time: f.properties.time,
              speed: f.properties.speed_kmh,
              latlng: xy(f.geometry.coordinates[0], f.geometry.coordinates[1])
            });
          }
        });
        if (data.metadata.truncated && n < MAX_PAGES) return pageAt(data.metadata.next_after, n + 1);
        return null;
      });
    }
    return pageAt(null, 1).then(function () { return { points: points, line: line, meta: meta }; });
  }

  var trail = null, head = null, points = [], timer = null;

  function show(i) {
    var p = points[i];
    if (!p) return;
    head.setLatLng(p.latlng);
    trail.setLatLngs(points.slice(0, i + 1).map(function (q) { return q.latlng; }));
    clock.textContent = M.localTime(p.time);
    speedText.textContent = p.speed === null || p.speed === undefined ? "" : strings.speed.replace("%(v)s", p.speed);
    slider.value = i;
    player.dataset.index = i;
  }

  function stop() {
    if (timer) { clearInterval(timer); timer = null; }
    playButton.textContent = strings.play;
    player.dataset.playing = "0";
  }

  function play() {
    if (timer) { stop(); return; }
    if (+slider.value >= points.length - 1) show(0);
    playButton.textContent = strings.pause;
    player.dataset.playing = "1";
    var step = Math.max(1, Math.ceil(points.length / 300)); // a whole replay takes about 15 s
    timer = setInterval(function () {
      var next = Math.min(points.length - 1, +slider.value + step);
      show(next);
      if (next >= points.length - 1) { stop(); player.dataset.finished = "1"; }
    }, 50);
  }

  function drawStops() {
    (page.stops || []).forEach(function (s) {
      var marker = L.marker(s.at, {
        icon: L.divIcon({ className: "stop-marker", html: "<span>" + s.rank + "</span>", iconSize: [22, 22], iconAnchor: [11, 11] }),
        title: strings.stop + " " + s.rank
      }).addTo(map);
      var when = document.querySelector("#stops li[data-rank='" + s.rank + "'] .stop-when");
      marker.bindPopup(M.el("div", {}, strings.stop + " " + s.rank + (when ? ": " + when.textContent : "")));
      var link = document.querySelector(".stop-link[data-rank='" + s.rank + "']");
      if (link) link.addEventListener("click", function (e) { e.preventDefault(); map.setView(s.at, 17); marker.openPopup(); });
    });
  }

  loadTrajectory().then(function (t) {
    var meta = t.meta;
    document.getElementById("trace-since").textContent = M.localTime(meta.since);
    document.getElementById("trace-until").textContent = M.localTime(meta.until);
    document.getElementById("trace-count").textContent = meta.count;
    status.hidden = true;
    points = t.points;
    if (!points.length) {
      empty.hidden = false;
      player.hidden = true;
      document.getElementById("map").dataset.ready = "1";
      return;
    }
    if (t.line && t.line.length > 1) {
      L.polyline(t.line.map(function (c) { return xy(c[0], c[1]); }), { color: "#8aa0b8", weight: 4, opacity: 0.8 }).addTo(map);
    }
    if (page.theft_place) {
      L.circleMarker(xy(page.theft_place[1], page.theft_place[0]), { radius: 8, color: "#b42318", weight: 3, fillOpacity: 0 })
        .addTo(map).bindTooltip(strings.theft_place);
    }
    trail = L.polyline([], { color: "#b42318", weight: 4 }).addTo(map);
    L.circleMarker(points[0].latlng, { radius: 6, color: "#17703a", fillOpacity: 1 }).addTo(map).bindTooltip(strings.start);
    head = L.marker(points[0].latlng, {
      icon: L.divIcon({ className: "replay-head", html: "<span></span>", iconSize: [18, 18], iconAnchor: [9, 9] }),
      zIndexOffset: 1000
    }).addTo(map);
    var bounds = L.latLngBounds(points.map(function (p) { return p.latlng; }));
    map.fitBounds(bounds, { padding: [30, 30], maxZoom: 17 });
    slider.max = points.length - 1;
    slider.disabled = false;
    playButton.disabled = false;
    slider.addEventListener("input", function () { stop(); show(+slider.value); });
    playButton.addEventListener("click", play);
    show(points.length - 1);
    player.hidden = false;
    document.getElementById("map").dataset.ready = "1";
  }).catch(function (err) {
    status.textContent = err.message;
    status.classList.add("error");
  });

  drawStops();

  window.ebikeTrace = { map: map, show: show, play: play, points: function () { return points; } };
})();
