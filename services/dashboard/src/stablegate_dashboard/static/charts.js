// The overview's charts (Chart.js, vendored). Data comes from the page as JSON in a
// non-executable script element; amounts are decimal strings, turned into numbers here
// for drawing only.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || !window.Chart) return;
  var data = JSON.parse(source.textContent);
  var palette = ["#6172f3", "#17b26a", "#f79009", "#2e90fa", "#ee46bc"];
  var statusColours = {
    awaiting_payment: "#98a2b3", confirming: "#2e90fa", partially_paid: "#f79009", paid: "#17b26a",
    requires_action: "#f04438", expired: "#d0d5dd", canceled: "#e4e7ec"
  };
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 11;
  Chart.defaults.color = "#667085";

  var volume = document.getElementById("volume-chart");
  if (volume) {
    new Chart(volume, {
      type: "bar",
      data: {
        labels: data.volume.labels,
        datasets: data.volume.datasets.map(function (set, index) {
          return {
            label: set.label,
            data: set.data.map(Number),
            backgroundColor: palette[index % palette.length],
            borderRadius: 3,
            maxBarThickness: 28
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { display: data.volume.datasets.length > 0, position: "bottom", labels: { boxWidth: 10 } } },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: { stacked: true, beginAtZero: true, grid: { color: "#f2f4f7" }, border: { display: false } }
        }
      }
    });
  }

  var statuses = document.getElementById("status-chart");
  if (statuses) {
    var total = data.statuses.data.reduce(function (a, b) { return a + b; }, 0);
    new Chart(statuses, {
      type: "doughnut",
      data: {
        labels: data.statuses.labels,
        datasets: [{
          data: total ? data.statuses.data : [1],
          backgroundColor: total ? data.statuses.keys.map(function (k) { return statusColours[k]; }) : ["#eaecf0"],
          borderWidth: 0
        }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        cutout: "68%",
        plugins: { legend: { display: false }, tooltip: { enabled: total > 0 } }
      }
    });
  }
})();
