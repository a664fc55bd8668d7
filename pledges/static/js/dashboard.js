// Porch Light dashboard: live totals over Server-Sent Events, polling with ETags where that fails.
(function () {
  "use strict";
  var root = document.querySelector(".dashboard");
  if (!root) { return; }
  var lang = document.documentElement.lang || "en";
  var number = new Intl.NumberFormat(lang);
  var clock = new Intl.DateTimeFormat(lang, {
    hour: "numeric", minute: "2-digit", timeZone: root.getAttribute("data-timezone") || undefined
  });
  var connection = root.querySelector("[data-connection]");
  var POLL_MS = 5000;
  var CHART_MS = 30000;
  var RETRY_STREAM_MS = 30000;
  var lastTotal = null;
  var chartLoaded = Date.now();

  function setState(state) {
    connection.setAttribute("data-state", state);
    connection.textContent = connection.getAttribute("data-" + state);
  }

  function setText(selector, value) {
    var el = root.querySelector(selector);
    if (el) { el.textContent = value; }
  }

  function widthClass(el, percent) {
    el.className = el.className.replace(/\bw-\d+\b/, "w-" + (Math.round(percent / 2) * 2));
  }

  function showTotals(t) {
    setText("[data-total]", number.format(t.total));
    var label = root.querySelector("[data-total-label]");
    if (label) { label.textContent = label.getAttribute(t.total === 1 ? "data-one" : "data-other"); }
    setText("[data-pending]", number.format(t.pending));
    var pendingLabel = root.querySelector("[data-pending-label]");
    if (pendingLabel) { pendingLabel.textContent = pendingLabel.getAttribute(t.pending === 1 ? "data-one" : "data-other"); }
    setText("[data-residents]", number.format(t.residents));
    setText("[data-businesses]", number.format(t.businesses));
    var bar = root.querySelector("[data-progress-bar]");
    if (bar && t.goal) {
      var percent = Math.min(100, Math.floor(t.total * 100 / t.goal));
      widthClass(bar, percent);
      var text = root.querySelector("[data-progress-text]");
      if (text) { text.textContent = text.textContent.replace(/\d+(?=\s*%)/, String(percent)); }
    }
    var top = Math.max.apply(null, t.neighborhoods.map(function (n) { return n.total; }).concat([1]));
    var list = root.querySelector("[data-standings]");
    var ranked = t.neighborhoods.slice().sort(function (a, b) {
      return b.total - a.total || a.name.localeCompare(b.name, lang);
    });
    ranked.forEach(function (n) {
      var item = list.querySelector('[data-slug="' + n.slug + '"]');
      if (!item) { return; }
      item.querySelector(".bar-count").textContent = number.format(n.total);
      widthClass(item.querySelector(".bar"), n.total * 100 / top);
      list.appendChild(item);
    });
    var updated = root.querySelector("[data-updated]");
    if (updated && t.updated_at) {
      updated.setAttribute("datetime", t.updated_at);
      updated.textContent = clock.format(new Date(t.updated_at));
    }
    if (lastTotal !== null && t.total !== lastTotal) { refreshExtras(); }
    lastTotal = t.total;
  }

  function refreshExtras() {
    fetch(root.getAttribute("data-businesses-url"), { cache: "no-cache" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || !body.businesses.length) { return; }
        var names = {};
        root.querySelectorAll("[data-standings] [data-slug]").forEach(function (li) {
          names[li.getAttribute("data-slug")] = li.querySelector(".bar-name").textContent;
        });
        var list = root.querySelector("[data-businesses-list]");
        list.textContent = "";
        body.businesses.forEach(function (b) {
          var li = document.createElement("li");
          var strong = document.createElement("strong");
          strong.textContent = b.name;
          var span = document.createElement("span");
          span.textContent = names[b.neighborhood] || b.neighborhood;
          li.appendChild(strong);
          li.appendChild(document.createTextNode(" "));
          li.appendChild(span);
          list.appendChild(li);
        });
      })
      .catch(function () { /* the next change tries again */ });
    if (Date.now() - chartLoaded > CHART_MS) {
      chartLoaded = Date.now();
      var chart = root.querySelector("[data-chart]");
      chart.src = root.getAttribute("data-chart-url") + "&t=" + chartLoaded;
    }
  }

  var pollTimer = null;

  function poll() {
    // Polling is the fallback (also when the server refuses the stream: 429 or 503, streams full);
    // a projector stays open all evening, so keep trying to go live again, not all in the same second.
    var retryIn = RETRY_STREAM_MS * (0.8 + 0.2 * Math.random());
    setTimeout(function () { if (window.EventSource) { stream(); } }, retryIn);
    if (pollTimer !== null) { return; }
    setState("polling");
    function once() {
      fetch(root.getAttribute("data-totals-url"), { cache: "no-cache", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (t) { showTotals(t); setState("polling"); })
        .catch(function () { setState("reconnecting"); })
        .then(function () { if (pollTimer !== null) { pollTimer = setTimeout(once, POLL_MS); } });
    }
    pollTimer = 0;
    once();
  }

  function stopPolling() {
    if (pollTimer) { clearTimeout(pollTimer); }
    pollTimer = null;
  }

  function stream() {
    var source = new EventSource(root.getAttribute("data-stream-url"));
    var opened = false;
    var failures = 0;
    source.addEventListener("open", function () { opened = true; failures = 0; stopPolling(); setState("live"); });
    source.addEventListener("totals", function (e) { showTotals(JSON.parse(e.data)); });
    source.addEventListener("error", function () {
      failures += 1;
      // EventSource reconnects by itself, except after an HTTP error (a 429 or 503 when streams are
      // full): then it is CLOSED. If it never got through, or keeps failing, poll for a while.
      if (source.readyState === EventSource.CLOSED || (!opened && failures >= 3) || failures >= 10) {
        source.close();
        poll();
      } else if (pollTimer === null) {
        setState("reconnecting");
      }
    });
  }

  if (window.EventSource) { stream(); } else { poll(); }
})();
