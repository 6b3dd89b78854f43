/* Mechanic dashboard: chime when a request is newly offered to this mechanic first (the general
   list's chime is in app-2.js). No build step. */
(function () {
  "use strict";
  var known = null;
  function ids() {
    var el = document.getElementById("offers");
    return el ? el.getAttribute("data-ids").trim().split(/\s+/).filter(Boolean) : [];
  }
  function chime() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 988; gain.gain.value = 0.15;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.3);
    } catch (err) { /* audio blocked until the first tap; the card still appears */ }
  }
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    if (e.detail.target.id !== "offers") return;
    setTimeout(function () {
      var now = ids();
      if (known && now.some(function (id) { return known.indexOf(id) === -1; })) chime();
      known = now;
    }, 0);
  });
  document.addEventListener("DOMContentLoaded", function () { known = ids(); });
})();
