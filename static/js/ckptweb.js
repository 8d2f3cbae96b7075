/* ckptweb page behaviour: the GC confirmation dialog and copy buttons (htmx does the rest). */
(function () {
  "use strict";

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  /* Keep the Apply button and the dialog's question in step with the live preview. */
  function syncApply() {
    var apply = document.getElementById("gc-apply");
    var errors = document.getElementById("gc-errors");
    if (!apply) return;
    var invalid = errors && errors.textContent.trim() !== "";
    apply.disabled = invalid;
    document.querySelectorAll(".policy-input").forEach(function (input) {
      var bad = errors && errors.querySelector('[data-field="' + input.name + '"]');
      input.setAttribute("aria-invalid", bad ? "true" : "false");
      input.classList.toggle("is-invalid", !!bad);
    });
  }

  function openConfirm() {
    var preview = document.getElementById("gc-preview");
    var dialog = document.getElementById("gc-confirm");
    if (!preview || !dialog) return;
    var count = parseInt(preview.dataset.deletedCount || "0", 10);
    document.getElementById("gc-confirm-title").textContent =
      "Delete " + plural(count, "checkpoint") + " (" + preview.dataset.reclaimedHuman + ")?";
    document.getElementById("gc-confirm-policy").textContent = preview.dataset.policy;
    dialog.showModal();
  }

  /* "Direct link": fetch the checkpoint's presigned URLs once (1 h), copy the file's. */
  var directUrls = null;
  function copyDirectLink(button) {
    var table = button.closest("[data-direct-urls]");
    if (!table) return;
    if (!directUrls) {
      directUrls = fetch(table.dataset.directUrls, { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (body) {
          var byPath = {};
          body.files.forEach(function (file) { byPath[file.path] = file.url; });
          setTimeout(function () { directUrls = null; }, 50 * 60 * 1000);
          return byPath;
        });
      directUrls.catch(function () { directUrls = null; });
    }
    directUrls.then(function (byPath) {
      var url = byPath[button.dataset.directPath];
      if (!url) throw new Error("no URL");
      button.dataset.url = url;
      var copied = navigator.clipboard ? navigator.clipboard.writeText(url) : Promise.reject();
      return copied.then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Direct link"; }, 1500);
      }, function () { window.prompt("Copy the direct link (valid 1 hour):", url); });
    }).catch(function () { button.textContent = "Unavailable"; });
  }

  document.addEventListener("click", function (event) {
    var direct = event.target.closest("[data-direct-path]");
    if (direct) {
      copyDirectLink(direct);
      return;
    }
    var target = event.target.closest("[data-dialog], [data-copy]");
    if (!target) return;
    if (target.id === "gc-apply") {
      event.preventDefault();
      openConfirm();
    } else if (target.dataset.copy) {
      var source = document.querySelector(target.dataset.copy);
      if (!source || !navigator.clipboard) return;
      navigator.clipboard.writeText(source.textContent).then(function () {
        target.textContent = "Copied";
        setTimeout(function () { target.textContent = "Copy"; }, 1500);
      }, function () {
        target.textContent = "Select and copy";
      });
    }
  });

  /* Enter in a policy field previews; only the dialog's button may submit the form. */
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "gc-form") return;
    if (!event.submitter || event.submitter.id !== "gc-confirm-apply") event.preventDefault();
  });

  document.addEventListener("htmx:afterSettle", syncApply);
  document.addEventListener("DOMContentLoaded", syncApply);
})();
