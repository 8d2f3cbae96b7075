/* Admin StorageConfig form: show only the chosen type's fields (no framework, no CDN). */
(function () {
  "use strict";
  function sync() {
    var data = document.getElementById("storage-type-fields");
    var select = document.getElementById("id_type");
    if (!data || !select) return;
    var byType = JSON.parse(data.textContent);
    var all = {};
    Object.keys(byType).forEach(function (t) { byType[t].forEach(function (f) { all[f] = true; }); });
    var wanted = {};
    (byType[select.value] || []).forEach(function (f) { wanted[f] = true; });
    Object.keys(all).forEach(function (field) {
      document.querySelectorAll(".form-row.field-" + field + ", .fieldBox.field-" + field).forEach(function (row) {
        row.hidden = !wanted[field];
        row.style.display = wanted[field] ? "" : "none";
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_type");
    if (select) select.addEventListener("change", sync);
    sync();
  });
})();
