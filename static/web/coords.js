/* WGS-84 -> GCJ-02 for maps whose tiles are drawn in GCJ-02 (AMap and other mainland providers).
   The same function as tracking/coords.py; both are tested against published pairs. */
(function (global) {
  "use strict";
  var A = 6378245.0;
  var EE = 0.00669342162296594323;
  var PI = Math.PI;

  function outOfChina(lat, lon) {
    return !(lon > 73.66 && lon < 135.05 && lat > 3.86 && lat < 53.55);
  }

  function deltaLat(x, y) {
    var d = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    d += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    d += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    d += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return d;
  }

  function deltaLon(x, y) {
    var d = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    d += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    d += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    d += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return d;
  }

  /* [lat, lon] in WGS-84 -> [lat, lon] in GCJ-02 */
  function wgs84ToGcj02(lat, lon) {
    if (outOfChina(lat, lon)) return [lat, lon];
    var dlat = deltaLat(lon - 105.0, lat - 35.0);
    var dlon = deltaLon(lon - 105.0, lat - 35.0);
    var rad = lat / 180.0 * PI;
    var magic = 1 - EE * Math.sin(rad) * Math.sin(rad);
    var sqrtMagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
    dlon = (dlon * 180.0) / (A / sqrtMagic * Math.cos(rad) * PI);
    return [lat + dlat, lon + dlon];
  }

  function toDisplay(lat, lon, datum) {
    return datum === "gcj02" ? wgs84ToGcj02(lat, lon) : [lat, lon];
  }

  global.EbikeCoords = { wgs84ToGcj02: wgs84ToGcj02, toDisplay: toDisplay, outOfChina: outOfChina };
})(window);
