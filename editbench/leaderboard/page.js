document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('data-order') !== 'asc';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-order'); });
      th.setAttribute('data-order', asc ? 'asc' : 'desc');
      function key(row) {
        var cell = row.cells[col];
        var v = cell.getAttribute('data-value');
        if (v === null) { v = cell.textContent.trim(); }
        var x = parseFloat(v);
        return isNaN(x) ? v.toLowerCase() : x;
      }
      rows.sort(function (a, b) {
        var ka = key(a), kb = key(b);
        if (typeof ka !== typeof kb) { return typeof ka === 'number' ? -1 : 1; }
        return (ka < kb ? -1 : ka > kb ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
