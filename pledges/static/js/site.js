// Porch Light: everything works without this file; it only enhances.
(function () {
  "use strict";
  var REFRESH_MS = 15000;

  // A form that came back with errors: take the reader to the summary.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }

  // "(optional for residents)" is hidden while "a business" is chosen.
  var optional = document.querySelector("[data-name-optional]");
  var kinds = document.querySelectorAll("input[name=kind]");
  function showNameRule() {
    var business = document.querySelector("input[name=kind][value=business]");
    if (optional && business) { optional.hidden = business.checked; }
  }
  for (var i = 0; i < kinds.length; i++) { kinds[i].addEventListener("change", showNameRule); }
  showNameRule();

  // The total refreshes itself; the server answers 304 while nothing changed.
  var box = document.querySelector("[data-totals-url]");
  var total = document.querySelector("[data-total]");
  if (box && total && window.fetch) {
    var format = new Intl.NumberFormat(document.documentElement.lang || "en");
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(box.getAttribute("data-totals-url"), { cache: "no-cache", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { if (body) { total.textContent = format.format(body.total); } })
        .catch(function () { /* offline for a moment: try again next time */ });
    }, REFRESH_MS);
  }

  // Phones can share with their own share sheet.
  var share = document.querySelector("[data-share-url]");
  if (share && navigator.share) {
    share.hidden = false;
    share.addEventListener("click", function () {
      navigator.share({ url: share.getAttribute("data-share-url"), text: share.getAttribute("data-share-text") })
        .catch(function () { /* the reader closed the sheet */ });
    });
  }
})();
