// The hosted checkout's live part: polls GET /pay/{id}/status and renders what the
// server decided (texts come translated), ticks the countdown, copies to the clipboard.
// Every value goes in with textContent or an attribute, never as HTML.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("checkout-config").textContent);
  var messages = config.messages;
  var byId = function (id) { return document.getElementById(id); };
  var state = config.status;
  var deadline = 0;
  var timer = null;
  var closing = false; // the countdown reached zero before the server said so

  // Lets a test (or a curious developer) tell this page load from a reload.
  window.stablegateCheckout = { loadId: Math.random().toString(36).slice(2), polls: 0, renders: 0 };

  function format(template, fields) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(fields, name) ? String(fields[name]) : whole;
    });
  }

  function setText(el, text) {
    if (el && el.textContent !== text) { el.textContent = text; }
  }

  function show(el, visible) {
    if (el) { el.hidden = !visible; }
  }

  function setTone(el, tone) {
    if (!el) { return; }
    el.className = el.className.replace(/\btone-\w+/, "tone-" + tone);
  }

  function renderStatus(s) {
    document.querySelector("main").dataset.status = s.status;
    setTone(byId("status"), s.tone);
    byId("status-icon").setAttribute("href", "#i-" + s.tone);
    setText(byId("status-headline"), s.headline);
    setText(byId("status-detail"), s.detail);
  }

  function renderTimeline(s) {
    var timeline = byId("timeline");
    show(timeline, s.step > 0);
    timeline.querySelectorAll(".timeline-step").forEach(function (li) {
      var step = Number(li.dataset.step);
      var done = step < s.step || s.step === 3;
      var current = !done && step === s.step;
      li.classList.toggle("is-done", done);
      li.classList.toggle("is-current", current);
      li.classList.toggle("is-upcoming", !done && !current);
      if (current) { li.setAttribute("aria-current", "step"); } else { li.removeAttribute("aria-current"); }
      var hidden = li.querySelector(".timeline-state");
      setText(hidden, done ? "(" + hidden.dataset.done + ")" : current ? "(" + hidden.dataset.current + ")" : "");
    });
    setText(byId("confirmations"), s.confirmations);
  }

  function renderPayment(s) {
    show(byId("pay"), s.accepts_payment);
    setText(byId("amount-to-send"), s.amount_to_send);
    var qr = byId("qr");
    var qrSrc = config.qrUrl + "?v=" + s.amount_to_send_base_units;
    if (s.accepts_payment && qr.getAttribute("src") !== qrSrc) {
      qr.setAttribute("src", qrSrc);
      if (config.family !== "tron") {
        var asset = document.querySelector(".amount-asset").textContent;
        var network = byId("network-name").textContent;
        qr.setAttribute("alt", format(messages["pay.qr_alt_evm"], { amount: s.amount_to_send, asset: asset, network: network }));
      }
    }
    var wallet = byId("open-wallet");
    if (wallet && s.payment_uri) { wallet.setAttribute("href", s.payment_uri); }
  }

  function renderResult(s) {
    var result = byId("result");
    show(result, !s.accepts_payment);
    setTone(result, s.tone);
    byId("result-icon").setAttribute("href", "#i-" + s.tone);
    setText(byId("result-title"), s.title);
    setText(byId("received"), s.received_line);
    setText(byId("result-note"), s.status === "confirming" ? s.confirmations : "");
    show(byId("return-success"), s.status === "paid");
    show(byId("return-back"), s.final && s.status !== "paid");
    show(byId("cancel-footer"), s.status === "awaiting_payment" && s.accepts_payment);
    show(byId("expiry"), s.accepts_payment);
  }

  function renderTransfers(s) {
    show(byId("transfers"), s.transfers.length > 0);
    var list = byId("transfer-rows");
    var items = s.transfers.map(function (tr) {
      var item = document.createElement("li");
      item.className = "tx-item";
      item.dataset.status = tr.status;
      var hashCell = document.createElement("span");
      hashCell.className = "tx-hash";
      var hash = document.createElement(tr.explorer_url ? "a" : "code");
      hash.textContent = tr.tx_hash;
      if (tr.explorer_url) {
        hash.href = tr.explorer_url;
        hash.rel = "noopener noreferrer";
        hash.target = "_blank";
        hash.setAttribute("aria-label", format(list.dataset.view, { tx: tr.tx_hash }));
      }
      hashCell.appendChild(hash);
      var amount = document.createElement("span");
      amount.className = "tx-amount";
      amount.textContent = tr.amount + " " + tr.asset;
      var state = document.createElement("span");
      state.className = "tx-state";
      state.textContent = tr.state;
      item.append(hashCell, amount, state);
      return item;
    });
    list.replaceChildren.apply(list, items);
  }

  function render(s) {
    state = s;
    closing = false;
    deadline = performance.now() + s.seconds_left * 1000;
    renderStatus(s);
    renderTimeline(s);
    renderPayment(s);
    renderResult(s);
    renderTransfers(s);
    tick();
    window.stablegateCheckout.renders += 1;
  }

  function clock(seconds) {
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var mm = (h > 0 && m < 10 ? "0" : "") + m;
    return (h > 0 ? h + ":" : "") + mm + ":" + (s < 10 ? "0" : "") + s;
  }

  function tick() {
    var left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
    var expiry = byId("expiry");
    setText(byId("countdown"), left > 0 ? clock(left) : messages["expiry.expired"]);
    expiry.classList.toggle("is-low", left < 300);
    byId("expiry-fill").style.width = Math.min(100, (100 * left) / Math.max(1, state.seconds_total)) + "%";
    if (left === 0 && state.accepts_payment && !closing) {
      closing = true;
      // Stop offering the address the moment time is up; the server confirms shortly.
      show(byId("pay"), false);
      show(byId("result"), true);
      poll();
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, state.final ? config.finalPollMs : config.pollMs);
  }

  function poll() {
    clearTimeout(timer);
    window.stablegateCheckout.polls += 1;
    fetch(config.statusUrl, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (s) { if (s) { render(s); } })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(schedule);
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-http hosts have no clipboard API: fall back to a selected, hidden field.
    return new Promise(function (resolve, reject) {
      var field = document.createElement("textarea");
      field.value = text;
      field.setAttribute("readonly", "");
      field.className = "visually-hidden";
      document.body.appendChild(field);
      field.select();
      var ok = document.execCommand("copy");
      field.remove();
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var label = button.querySelector(".copy-text");
    var original = label.textContent;
    button.addEventListener("click", function () {
      var text = byId(button.dataset.copy).textContent.trim();
      copyText(text).then(function () {
        button.classList.add("is-copied");
        label.textContent = messages["pay.copied"];
        setText(byId("announcer"), button.dataset.copied);
      }, function () {
        setText(byId("announcer"), messages["pay.copy_failed"]);
      }).then(function () {
        setTimeout(function () {
          button.classList.remove("is-copied");
          label.textContent = original;
        }, 2000);
      });
    });
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { poll(); }
  });

  render(state);
  setInterval(tick, 1000);
  schedule();
})();
