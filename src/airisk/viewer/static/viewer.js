/* airisk viewer: the only script. It polls the status of running runs shown on the page and
   updates their status and counts in place (textContent only: nothing from the server is parsed
   as HTML). Served from this server; the CSP allows no other script. */
(function () {
  "use strict";
  var LIVE = ["running"];
  var PERIOD_MS = 2000;

  function liveRows() {
    return Array.prototype.filter.call(document.querySelectorAll("[data-run]"), function (el) {
      return LIVE.indexOf(el.getAttribute("data-status")) >= 0;
    });
  }

  function setField(row, name, value) {
    var el = row.querySelector('[data-field="' + name + '"]');
    if (el && value !== undefined && value !== null) { el.textContent = String(value); }
  }

  function apply(run) {
    var rows = document.querySelectorAll("[data-run]");
    Array.prototype.forEach.call(rows, function (row) {
      if (row.getAttribute("data-run") !== run.id) { return; }
      var c = run.counts || {};
      row.setAttribute("data-status", run.status);
      var st = row.querySelector('[data-field="status"]');
      if (st) { st.textContent = run.status; st.className = "status status-" + run.status; }
      setField(row, "items", c.items);
      setField(row, "responses", c.responses);
      setField(row, "errors", c.errors);
      setField(row, "violating", c.violating);
      setField(row, "judged", (c.violating || 0) + (c.non_violating || 0));
    });
  }

  function poll() {
    var rows = liveRows();
    if (!rows.length) { return; }
    var ids = rows.map(function (r) { return r.getAttribute("data-run"); });
    fetch("/api/status?ids=" + encodeURIComponent(ids.join(",")), {credentials: "same-origin"})
      .then(function (resp) { return resp.ok ? resp.json() : {runs: []}; })
      .then(function (body) { (body.runs || []).forEach(apply); })
      .catch(function () { /* server gone: try again next tick */ })
      .then(function () { window.setTimeout(poll, PERIOD_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () { window.setTimeout(poll, PERIOD_MS); });
})();
