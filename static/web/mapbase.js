/* Shared by the map pages: read the JSON blocks the template wrote, make a Leaflet map with the
   configured tiles, and say so (without hiding the data layers) when no tile server answers. */
(function (global) {
  "use strict";

  function json(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : {};
  }

  function makeMap(elementId, config, strings) {
    var map = L.map(elementId, { preferCanvas: true, zoomControl: true }).setView(config.center, config.zoom);
    var failed = 0, loaded = 0, warned = false;
    var notice = document.getElementById("tile-notice");
    config.layers.forEach(function (layer) {
      var options = { attribution: layer.attribution, maxZoom: layer.max_zoom };
      if (layer.subdomains) options.subdomains = layer.subdomains;
      var tiles = L.tileLayer(layer.url, options);
      tiles.on("tileload", function () { loaded += 1; if (notice) notice.hidden = true; });
      tiles.on("tileerror", function () {
        failed += 1;
        if (!warned && loaded === 0 && notice) {
          warned = true;
          notice.textContent = strings.tiles_unavailable;
          notice.hidden = false;
        }
      });
      tiles.addTo(map);
    });
    map.getContainer().dataset.datum = config.datum;
    zone = config.time_zone;
    return map;
  }

  /* Date-times are written as the pages write them (ebike_registry/formats): "2026-12-06 14:03",
     in the county's time zone, whatever the browser's language or locale. */
  function localTime(iso) {
    /* The server sends ISO 8601 in the county's time zone ("2026-12-06T14:03:27+08:00"). */
    return iso ? iso.replace("T", " ").slice(0, 16) : "";
  }

  var zone = null;
  function epochText(seconds) {
    /* Epoch seconds in the county's time zone (config.time_zone); the parts are numbers in any
       locale, put together here rather than in a locale's order. */
    var fmt = new Intl.DateTimeFormat("en-US", {
      timeZone: zone || undefined, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"
    });
    var part = {};
    fmt.formatToParts(new Date(seconds * 1000)).forEach(function (p) { part[p.type] = p.value; });
    return part.year + "-" + part.month + "-" + part.day + " " + part.hour + ":" + part.minute;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  global.EbikeMap = { json: json, makeMap: makeMap, localTime: localTime, epochText: epochText, el: el };
})(window);
