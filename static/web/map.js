/* The officer map: stolen bikes' last positions, clustered; filters; a card per bike; polling for
   new positions. Data: GET markers.json -> {"fields": [...], "rows": [[...]], "cursor": "..."}. */
(function () {
  "use strict";
  var M = window.EbikeMap;
  var config = M.json("map-config");
  var page = M.json("map-page");
  var strings = page.strings;
  var map = M.makeMap("map", config, strings);
  var cluster = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 50 });
  map.addLayer(cluster);

  var markers = new Map(); // vehicle id -> L.Marker
  var cursor = null;
  var loading = false;
  var form = document.getElementById("map-filters");
  var counter = document.getElementById("map-count");
  var feed = document.getElementById("map-feed");
  var problem = document.getElementById("map-problem");

  function icon(plate, fresh) {
    return L.divIcon({
      className: "stolen-marker" + (fresh ? " fresh" : ""),
      html: "<span class=\"dot\"></span><span class=\"tag\"></span>",
      iconSize: [16, 16],
      iconAnchor: [8, 8],
      popupAnchor: [0, -8]
    });
  }

  function label(marker) {
    var node = marker.getElement();
    if (node) {
      node.dataset.vehicle = marker.vehicle;
      node.querySelector(".tag").textContent = marker.plate || "";
      node.title = marker.plate || "";
    }
  }

  function filterParams() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) { if (value) params.set(key, value); });
    return params;
  }

  function card(marker) {
    var url = page.urls.card.replace("/0/", "/" + marker.vehicle + "/");
    var box = M.el("div", { "class": "map-card", "data-vehicle": marker.vehicle });
    box.appendChild(M.el("p", { "class": "muted" }, strings.loading));
    marker.bindPopup(box, { minWidth: 240 }).openPopup();
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
      .then(function (res) {
        box.textContent = "";
        if (!res.ok) { box.appendChild(M.el("p", { "class": "error" }, res.data.detail || strings.failed)); return; }
        var d = res.data;
        var head = M.el("p", { "class": "card-plate" });
        head.appendChild(M.el("span", { "class": "plate plate-green" }, d.plate || strings.no_plate));
        box.appendChild(head);
        box.appendChild(M.el("p", { "class": "card-vehicle" }, d.description));
        box.appendChild(M.el("p", { "class": "muted mono" }, d.frame_number));
        var table = M.el("table", { "class": "kv" });
        function row(th, td) {
          var tr = M.el("tr"); tr.appendChild(M.el("th", {}, th));
          var cell = M.el("td"); if (typeof td === "string") cell.textContent = td; else cell.appendChild(td);
          tr.appendChild(cell); table.appendChild(tr);
        }
        row(strings.last_fix, M.epochText(marker.fixAt));
        if (d.position) row(strings.coordinates, M.el("span", { "class": "mono card-coords" }, d.position.text));
        if (d.report) {
          row(strings.report, M.el("a", { href: d.report.url, "class": "card-report" }, d.report.number));
          row(strings.reported_at, d.report.received_at);
          row(strings.station, d.report.station);
          row(strings.status, d.report.status);
        }
        if (d.cases.length) {
          var cases = M.el("span");
          d.cases.forEach(function (c, i) {
            if (i) cases.appendChild(document.createTextNode("、"));
            cases.appendChild(M.el("a", { href: c.url, "class": "card-case" }, c.number));
          });
          row(strings.cases, cases);
        } else {
          row(strings.cases, strings.no_case);
        }
        box.appendChild(table);
        var actions = M.el("p", { "class": "card-actions" });
        actions.appendChild(M.el("a", { href: d.trace_url, "class": "button card-trace" }, strings.trace));
        actions.appendChild(M.el("a", { href: d.record_url }, strings.record));
        box.appendChild(actions);
        marker.getPopup().update(); // re-measure and pan the filled card into view
      })
      .catch(function () { box.textContent = strings.failed; });
  }

  function note(marker) {
    if (!feed) return;
    var item = M.el("li", { "data-vehicle": marker.vehicle });
    item.appendChild(M.el("time", {}, M.epochText(marker.fixAt)));
    var link = M.el("a", { href: "#" }, marker.plate || ("#" + marker.vehicle));
    link.addEventListener("click", function (e) { e.preventDefault(); focus(marker); });
    item.appendChild(link);
    feed.insertBefore(item, feed.firstChild);
    while (feed.children.length > 20) feed.removeChild(feed.lastChild);
    var empty = document.getElementById("map-feed-empty");
    if (empty) empty.hidden = true;
  }

  function focus(marker) {
    cluster.zoomToShowLayer(marker, function () { card(marker); });
  }

  function flash(marker) {
    marker.setIcon(icon(marker.plate, true));
    label(marker);
    setTimeout(function () { marker.setIcon(icon(marker.plate, false)); label(marker); }, 8000);
  }

  function apply(data, full) {
    var fields = data.fields;
    var at = {};
    fields.forEach(function (f, i) { at[f] = i; });
    var added = [];
    data.rows.forEach(function (row) {
      var id = row[at.vehicle];
      var latlng = [row[at.lat_e6] / 1e6, row[at.lon_e6] / 1e6];
      var marker = markers.get(id);
      if (marker) {
        var old = marker.getLatLng();
        if (old.lat !== latlng[0] || old.lng !== latlng[1] || marker.fixAt !== row[at.fix_at]) {
          marker.fixAt = row[at.fix_at];
          cluster.removeLayer(marker);
          marker.setLatLng(latlng);
          cluster.addLayer(marker);
          flash(marker);
          note(marker);
        }
        return;
      }
      marker = L.marker(latlng, { icon: icon(row[at.plate], !full), title: row[at.plate] });
      marker.vehicle = id;
      marker.plate = row[at.plate];
      marker.report = row[at.report];
      marker.station = row[at.station];
      marker.reportedAt = row[at.reported_at];
      marker.fixAt = row[at.fix_at];
      marker.on("click", function () { card(marker); });
      marker.on("add", function () { label(marker); });
      markers.set(id, marker);
      added.push(marker);
      if (!full) note(marker);
    });
    cluster.addLayers(added);
    counter.textContent = strings.count.replace("%(n)s", markers.size);
    if (full && markers.size) {
      map.fitBounds(cluster.getBounds(), { maxZoom: 15, padding: [30, 30] });
    }
    document.getElementById("map").dataset.ready = "1";
  }

  function clearFieldErrors() {
    form.querySelectorAll(".field.invalid").forEach(function (box) { box.classList.remove("invalid"); });
    form.querySelectorAll(".errors.from-script").forEach(function (node) { node.remove(); });
  }

  function showFieldErrors(errors) {
    /* {"field": ["message", ...]} from the endpoint, shown next to the field as the page would. */
    Object.keys(errors).forEach(function (name) {
      var input = form.querySelector("[name='" + name + "']");
      var box = input ? input.closest(".field") : null;
      if (!box) return;
      box.classList.add("invalid");
      var list = M.el("div", { "class": "errors from-script" });
      errors[name].forEach(function (message) { list.appendChild(M.el("p", { "class": "error" }, message)); });
      box.appendChild(list);
    });
  }

  function load(full) {
    if (loading) return Promise.resolve();
    loading = true;
    var params = filterParams();
    if (!full && cursor) params.set("since", cursor);
    // A poll is not the officer's activity: marked, it does not keep the session from timing out.
    var headers = full ? { Accept: "application/json" } : { Accept: "application/json", "X-Background-Request": "1" };
    return fetch(page.urls.markers + "?" + params.toString(), { credentials: "same-origin", headers: headers })
      .then(function (r) {
        // Signed out (idle timeout: 401) or sent to the login page: reloading shows the login page.
        if (r.redirected || r.status === 401) { window.location.reload(); throw new Error("session ended"); }
        return r.json().then(function (data) { return { ok: r.ok, data: data }; });
      })
      .then(function (res) {
        clearFieldErrors();
        if (!res.ok) {
          if (res.data.errors) showFieldErrors(res.data.errors);
          problem.textContent = res.data.detail || strings.bad_filter;
          problem.hidden = false;
          return;
        }
        problem.hidden = true;
        if (full) { cluster.clearLayers(); markers.clear(); if (feed) feed.textContent = ""; }
        cursor = res.data.cursor;
        apply(res.data, full);
      })
      .catch(function () { problem.textContent = strings.failed; problem.hidden = false; })
      .finally(function () { loading = false; });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var params = filterParams();
    history.replaceState(null, "", "?" + params.toString());
    cursor = null;
    load(true);
  });

  load(true);
  setInterval(function () { if (cursor) load(false); }, Math.max(2, config.poll_seconds) * 1000);
  window.ebikeOfficerMap = { map: map, cluster: cluster, markers: markers, focus: focus, reload: load };
})();
