/* Scheduling page: tell the server the customer's time zone (the browser knows it), so the
   times are listed on their own clock. The server checks the name and falls back to UTC. */
(function () {
  "use strict";
  function detect() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { return ""; }
  }
  var redrawn = false;  /* once: a zone the server does not know stays UTC, without a loop */
  function apply() {
    var zone = detect(), field = document.querySelector("[data-detect-zone]");
    if (!zone || !field || field.value === zone) return;
    var wasDefault = field.value === "UTC";
    field.value = zone;
    document.querySelectorAll("[data-zone-label]").forEach(function (el) { el.textContent = zone; });
    /* Times already on screen were drawn in UTC: draw them again in the customer's zone. */
    if (wasDefault && !redrawn && document.querySelector("#step-plan") && window.htmx) {
      redrawn = true;
      window.htmx.trigger(field.form, "change");
    }
  }
  document.addEventListener("DOMContentLoaded", apply);
  document.addEventListener("htmx:afterSwap", apply);
})();
