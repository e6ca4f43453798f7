// Stablegate Ops: small behaviours of every page. No inline scripts (the CSP forbids
// them); text from the server is only ever set with textContent, never as HTML.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function wireForms() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  function wireCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var value = button.getAttribute("data-copy");
        if (!navigator.clipboard) return;
        navigator.clipboard.writeText(value).then(function () {
          button.classList.add("done");
          setTimeout(function () { button.classList.remove("done"); }, 1200);
        });
      });
    });
  }

  function sizeBars() {
    document.querySelectorAll("[data-share]").forEach(function (segment) {
      var share = Number(segment.getAttribute("data-share"));
      var of = Number(segment.getAttribute("data-of"));
      segment.style.width = of > 0 ? (share * 100 / of) + "%" : "0";
    });
  }

  // ---- live updates -------------------------------------------------------------

  function badge(status, text, tone) {
    var span = document.createElement("span");
    span.className = "status status-" + tone;
    span.textContent = text;
    return span;
  }

  function cellFor(column, header, intent) {
    var td = document.createElement("td");
    header.classList.forEach(function (name) {
      if (name.indexOf("d-") === 0 || name === "text-end") td.classList.add(name);
    });
    td.setAttribute("data-cell", column);
    if (column === "id") {
      var link = document.createElement("a");
      link.className = "mono";
      link.href = intent.url;
      link.title = intent.id;
      link.textContent = intent.id.length > 17 ? intent.id.slice(0, 10) + "…" + intent.id.slice(-6) : intent.id;
      td.appendChild(link);
    } else if (column === "status") {
      td.appendChild(badge(intent.status, intent.status_label, intent.tone));
    } else if (column === "amount") {
      td.classList.add("num");
      td.textContent = intent.amount + " ";
      var unit = document.createElement("span");
      unit.className = "unit";
      unit.textContent = intent.asset;
      td.appendChild(unit);
    } else if (column === "received") {
      td.classList.add("num");
      td.textContent = intent.received;
    } else if (column === "network") {
      td.textContent = intent.network;
    } else if (column === "reference") {
      td.classList.add("ref");
      td.textContent = intent.reference || "—";
    } else if (column === "address") {
      var mono = document.createElement("span");
      mono.className = "mono";
      mono.title = intent.deposit_address;
      mono.textContent = intent.deposit_address.slice(0, 8) + "…" + intent.deposit_address.slice(-6);
      td.appendChild(mono);
    } else if (column === "created") {
      td.classList.add("text-nowrap");
      td.textContent = "just now";
    }
    return td;
  }

  function updateRow(row, intent) {
    if (Number(row.getAttribute("data-sequence")) >= intent.sequence) return false;
    row.setAttribute("data-sequence", String(intent.sequence));
    var status = row.querySelector('[data-cell="status"]');
    if (status) {
      status.textContent = "";
      status.appendChild(badge(intent.status, intent.status_label, intent.tone));
    }
    var received = row.querySelector('[data-cell="received"]');
    if (received) received.textContent = intent.received;
    return true;
  }

  function flash(row) {
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  }

  function applyToTable(table, change) {
    var intent = change.intent;
    var body = table.tBodies[0];
    var row = body.querySelector('tr[data-intent-id="' + CSS.escape(intent.id) + '"]');
    if (row) {
      if (updateRow(row, intent)) flash(row);
      return;
    }
    var mode = table.getAttribute("data-live-table");
    if (mode === "update" || change.event_type !== "intent.created") return;
    var headers = table.tHead.querySelectorAll("th[data-col]");
    var fresh = document.createElement("tr");
    fresh.setAttribute("data-intent-id", intent.id);
    fresh.setAttribute("data-sequence", String(intent.sequence));
    headers.forEach(function (th) { fresh.appendChild(cellFor(th.getAttribute("data-col"), th, intent)); });
    var empty = body.querySelector("tr.empty-row");
    if (empty) empty.remove();
    body.insertBefore(fresh, body.firstChild);
    flash(fresh);
    var limit = Number(table.getAttribute("data-live-limit") || 50);
    while (body.rows.length > limit) body.deleteRow(body.rows.length - 1);
  }

  function applyToDetail(change) {
    var head = document.querySelector(".head-meta[data-intent-id]");
    if (!head || head.getAttribute("data-intent-id") !== change.intent.id) return;
    if (Number(head.getAttribute("data-sequence")) >= change.intent.sequence) return;
    head.setAttribute("data-sequence", String(change.intent.sequence));
    var status = head.querySelector('[data-cell="status"]');
    if (status) {
      status.textContent = "";
      status.appendChild(badge(change.intent.status, change.intent.status_label, change.intent.tone));
    }
    var notice = document.querySelector("[data-live-changed]");
    if (notice) notice.classList.remove("d-none");
  }

  function startLive() {
    var after = document.body.getAttribute("data-live-after");
    if (after === null || !window.EventSource) return;
    var indicators = document.querySelectorAll("[data-live-indicator]");
    var source = new EventSource("/live/intents?after=" + encodeURIComponent(after));
    function mark(on) { indicators.forEach(function (dot) { dot.classList.toggle("on", on); }); }
    source.addEventListener("open", function () { mark(true); });
    source.addEventListener("error", function () { mark(false); });
    source.addEventListener("intent", function (message) {
      var change = JSON.parse(message.data);
      document.querySelectorAll("table[data-live-table]").forEach(function (table) { applyToTable(table, change); });
      applyToDetail(change);
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  onReady(function () {
    wireForms();
    wireCopyButtons();
    sizeBars();
    startLive();
  });
})();
