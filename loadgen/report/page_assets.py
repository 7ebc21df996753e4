"""The page's inline style sheet and its one small script (sorting a table by a clicked header).

Inline so the page opens with no network: no fonts, no CDN. The script only reorders rows
already on the page; without it every table still reads in the document's order.
"""

STYLE = """
:root { --pass: #d7f0da; --warn: #fbe7b5; --fail: #f6c9c5; --none: #e6e6e6; --ink: #1d232a; --rule: #d0d5db; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); }
header, main { max-width: 1280px; margin: 0 auto; padding: 0 1.25rem; }
header { padding-top: 1rem; border-bottom: 1px solid var(--rule); }
h1 { font-size: 1.5rem; margin: .3rem 0; }
h2 { font-size: 1.2rem; margin: 1.8rem 0 .6rem; border-bottom: 1px solid var(--rule); padding-bottom: .2rem; }
.about { color: #4a5561; margin: .2rem 0 .6rem; }
.status { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; margin: .4rem 0 .8rem; padding: 0; list-style: none; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--rule); z-index: 1; }
nav ul { max-width: 1280px; margin: 0 auto; padding: .4rem 1.25rem; display: flex; flex-wrap: wrap;
         gap: .3rem 1rem; list-style: none; }
nav a { color: #1f5fa8; text-decoration: none; }
.scroll { overflow-x: auto; margin: .4rem 0 1rem; }
table { border-collapse: collapse; font-size: .86rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border: 1px solid var(--rule); padding: .25rem .5rem; text-align: left; vertical-align: top; }
td[data-sort] { text-align: right; }
table.definitions td { text-align: left; }
th { background: #f3f5f7; }
td { white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
.v-pass, .v-better, .v-no-leak { background: var(--pass); }
.v-warn, .v-inconclusive { background: var(--warn); }
.v-fail, .v-worse, .v-leak { background: var(--fail); }
.v-unmeasured { background: var(--none); }
figure.chart { margin: 1rem 0 2rem; display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr);
               gap: .6rem 1.2rem; align-items: start; }
figure.chart .plot svg { width: 100%; height: auto; }
figure.chart figcaption { grid-column: 1 / -1; }
@media (max-width: 900px) { figure.chart { grid-template-columns: 1fr; } }
ul.recommendations li, ul.errors li { margin: .2rem 0; }
@media print {
  nav { display: none; }
  body { font-size: 11px; }
  figure.chart, table { break-inside: avoid; }
  figure.chart { grid-template-columns: 1fr; }
}
"""

# Sort a table.sortable by the clicked header: cells with data-sort compare as numbers, the
# others as text; unmeasured cells (no data-sort in a numeric column) stay last either way.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.querySelectorAll("thead th");
  headers.forEach(function (th, column) {
    th.tabIndex = 0;
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var numeric = rows.some(function (row) { return row.cells[column].hasAttribute("data-sort"); });
      function key(row) {
        var cell = row.cells[column];
        if (!numeric) { return cell.textContent; }
        return cell.hasAttribute("data-sort") ? parseFloat(cell.getAttribute("data-sort")) : null;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        var order = numeric ? x - y : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (event) { if (event.key === "Enter") { sort(); } });
  });
});
"""
