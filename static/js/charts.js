// Draws every chart of a page (and of each fragment htmx swaps in) from its JSON, which the
// server puts in <script type="application/json"> so that the Content-Security-Policy needs no
// inline script. A point with a link (customdata) opens it when clicked.
(function () {
  "use strict";

  function draw(root) {
    root.querySelectorAll("[data-figure]").forEach(function (element) {
      var source = document.getElementById(element.dataset.figure);
      if (!source || typeof Plotly === "undefined") {
        return;
      }
      var figure = JSON.parse(source.textContent);
      var config = { displaylogo: false, responsive: true, displayModeBar: false };
      Plotly.react(element, figure.data, figure.layout, config).then(function () {
        if (element.dataset.linked) {
          return;
        }
        element.dataset.linked = "yes";
        element.on("plotly_click", function (event) {
          var point = event.points && event.points[0];
          if (point && typeof point.customdata === "string" && point.customdata.charAt(0) === "/") {
            window.location.assign(point.customdata);
          }
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    draw(event.target);
  });
})();
