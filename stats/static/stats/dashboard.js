// Statistics dashboard: sortable tables and three Chart.js charts (Chart.js is served locally).
(function () {
  "use strict";

  function sortValue(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    if (raw === "") return { empty: true };
    var n = Number(raw);
    return isNaN(n) ? { text: raw } : { num: n };
  }

  function compare(a, b) {
    if (a.empty || b.empty) return a.empty === b.empty ? 0 : a.empty ? 1 : -1; // unknowns last
    if (a.num !== undefined && b.num !== undefined) return a.num - b.num;
    return String(a.text !== undefined ? a.text : a.num).localeCompare(String(b.text !== undefined ? b.text : b.num), "zh");
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, index) {
      var button = th.querySelector("button") || th;
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(sortValue(r1.cells[index]), sortValue(r2.cells[index]));
          return ascending ? c : -c;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });

  var source = document.getElementById("stats-charts");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var BLUE = "#2f6db5", GREEN = "#2e8b57", RED = "#c0392b", AMBER = "#d68910";
  var label = function (id) { var c = document.getElementById(id); return c ? c.getAttribute("aria-label") : ""; };

  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) new Chart(canvas, config);
  }

  chart("chart-registrations", {
    data: {
      labels: data.registrations.labels,
      datasets: [
        { type: "bar", label: data.names.registered, data: data.registrations.registered, yAxisID: "y", backgroundColor: BLUE },
        { type: "line", label: data.names.plates, data: data.registrations.plates, yAxisID: "y1", borderColor: GREEN, backgroundColor: GREEN }
      ]
    },
    options: { animation: false, maintainAspectRatio: false, plugins: { title: { display: true, text: label("chart-registrations") } },
               scales: { y: { beginAtZero: true }, y1: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } } } }
  });
  chart("chart-thefts", {
    type: "bar",
    data: { labels: data.thefts.labels, datasets: [
      { label: data.names.reported, data: data.thefts.reported, backgroundColor: RED }, { label: data.names.recovered, data: data.thefts.recovered, backgroundColor: GREEN } ] },
    options: { animation: false, maintainAspectRatio: false, plugins: { title: { display: true, text: label("chart-thefts") } } }
  });
  chart("chart-alarms", {
    type: "bar",
    data: { labels: data.alarms.labels, datasets: [{ label: data.names.alarms, data: data.alarms.alarms, backgroundColor: AMBER }] },
    options: { animation: false, maintainAspectRatio: false, indexAxis: "y", plugins: { title: { display: true, text: label("chart-alarms") } } }
  });
})();
