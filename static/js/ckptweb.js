/* ckptweb page behaviour: the GC confirmation dialog, confirmations and copy buttons (htmx does
   the rest). */
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
    /* The running trials this policy cuts off, as the preview names them. */
    var running = document.getElementById("gc-running-trials");
    var slot = document.getElementById("gc-confirm-running");
    slot.replaceChildren();
    if (running) {
      var copy = running.cloneNode(true);
      copy.removeAttribute("id");
      slot.appendChild(copy);
    }
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

  /* Copy body[key].join(",") of a JSON answer; a ClipboardItem of a promise keeps the
     click's permission while the ids download (writeText after the fetch otherwise). */
  function copyFetched(url, key) {
    var text = fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    }).then(function (body) { return body[key].join(","); });
    if (window.ClipboardItem && navigator.clipboard.write) {
      var blob = text.then(function (t) { return new Blob([t], { type: "text/plain" }); });
      return navigator.clipboard.write([new ClipboardItem({ "text/plain": blob })]);
    }
    return text.then(function (t) { return navigator.clipboard.writeText(t); });
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
      /* data-copy-attr copies an attribute (a whole id list) instead of the text shown; a
         list too long to inline (no attribute) is fetched from data-ids-url, key data-copy-key. */
      var attr = target.dataset.copyAttr;
      var label = target.textContent;
      var copied;
      if (attr && !source.hasAttribute(attr) && source.dataset.idsUrl && target.dataset.copyKey) {
        target.textContent = "Fetching…";
        copied = copyFetched(source.dataset.idsUrl, target.dataset.copyKey);
      } else {
        var text = attr ? source.getAttribute(attr) : source.textContent;
        copied = navigator.clipboard.writeText(text || "");
      }
      copied.then(function () {
        target.textContent = "Copied";
        setTimeout(function () { target.textContent = label; }, 1500);
      }, function () {
        target.textContent = "Select and copy";
      });
    }
  });

  /* Enter in a policy field previews at once (its hx-trigger "policy-enter": an htmx event
     filter such as keyup[key=='Enter'] is eval, which the Content-Security-Policy refuses),
     and never submits: the form's default button is the dialog's "Delete and apply". */
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches || !event.target.matches(".policy-input")) return;
    event.preventDefault();
    event.target.dispatchEvent(new CustomEvent("policy-enter", { bubbles: true }));
  });

  /* Enter in a policy field previews; only the dialog's button may submit the form. */
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "gc-form") return;
    if (!event.submitter || event.submitter.id !== "gc-confirm-apply") event.preventDefault();
  });

  /* A form with data-confirm asks its question first (no inline handlers: CSP allows none). */
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  /* The Menu button of the top bar on narrow screens. */
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("#nav-toggle");
    if (!toggle) return;
    var menu = document.getElementById(toggle.getAttribute("aria-controls"));
    var open = menu.classList.toggle("open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });

  /* Checkpoint tables: "select all" and the selection's count and bytes in the bulk bar. */
  function humanBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? n + " B" : n.toFixed(1) + " " + units[i];
  }
  function syncSelection() {
    var count = document.getElementById("bulk-count");
    if (!count) return;
    var boxes = document.querySelectorAll('input[name="checkpoints"][form="bulk-form"]:checked');
    var bytes = 0;
    boxes.forEach(function (box) { bytes += parseInt(box.dataset.size || "0", 10); });
    count.textContent = boxes.length ? plural(boxes.length, "checkpoint") + " selected (" + humanBytes(bytes) + ")" : "Select checkpoints for";
  }
  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-select-all]");
    if (all) {
      document.querySelectorAll(all.dataset.selectAll + ' input[name="checkpoints"]').forEach(function (box) {
        box.checked = all.checked;
      });
    }
    if (event.target.name === "checkpoints" || all) syncSelection();
  });

  /* Chart controls apply on change; chart markers show their data-tip on hover or focus. */
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
  });
  var tip = null;
  function showTip(event) {
    var marker = event.target.closest && event.target.closest(".marker[data-tip]");
    if (!marker) { if (tip) tip.hidden = true; return; }
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "chart-tip";
      tip.setAttribute("role", "tooltip");
      document.body.appendChild(tip);
    }
    tip.textContent = marker.dataset.tip;
    tip.hidden = false;
    var box = marker.getBoundingClientRect();
    var left = Math.min(box.left + window.scrollX, window.scrollX + document.documentElement.clientWidth - 260);
    tip.style.left = Math.max(window.scrollX + 4, left) + "px";
    tip.style.top = (box.bottom + window.scrollY + 6) + "px";
  }
  document.addEventListener("mouseover", showTip);

  document.addEventListener("htmx:afterSettle", syncApply);
  document.addEventListener("DOMContentLoaded", syncApply);
})();
