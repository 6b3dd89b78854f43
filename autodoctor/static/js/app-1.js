/* AutoDoctor page behaviour: redirects pushed by the server, the dashboard chime,
   the room's reconnect/de-duplication and its countdown. No build step. */
(function () {
  "use strict";

  /* A pushed fragment that carries data-redirect moves the page (session accepted, ended). */
  document.addEventListener("htmx:oobAfterSwap", function () {
    var el = document.querySelector("[data-redirect]");
    if (el) window.location.assign(el.getAttribute("data-redirect"));
  });

  /* Mechanic dashboard: chime when a request id appears that was not there before. */
  var knownIds = null;
  function requestIds() {
    var list = document.getElementById("request-list");
    return list ? list.getAttribute("data-ids").trim().split(/\s+/).filter(Boolean) : [];
  }
  function chime() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.15;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.25);
    } catch (err) { /* audio blocked until the first tap; the card still appears */ }
  }
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    if (e.detail.target.id !== "request-list") return;
    var ids = requestIds();
    if (knownIds && ids.some(function (id) { return knownIds.indexOf(id) === -1; })) chime();
    knownIds = ids;
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("request-list")) knownIds = requestIds();
  });
  function setLive(ok) {
    var el = document.getElementById("live-indicator");
    if (el) el.classList.toggle("offline", !ok);
  }
  document.addEventListener("htmx:sseOpen", function () { setLive(true); });
  document.addEventListener("htmx:sseError", function () { setLive(false); });

  /* Room: reconnect with ?after=<last line seen>; drop lines already on screen. */
  function lastMessageId() {
    var all = document.querySelectorAll("#chat-log [data-msg-id]");
    return all.length ? all[all.length - 1].getAttribute("data-msg-id") : "0";
  }
  /* Deferred scripts run in order after parsing, before htmx opens the socket. */
  if (window.htmx && document.getElementById("room")) {
    var create = htmx.createWebSocket;
    htmx.createWebSocket = function (url) {
      var u = new URL(url, window.location.href);
      u.searchParams.set("after", lastMessageId());
      return create ? create(u.toString()) : new WebSocket(u.toString());
    };
    markMine(); scrollChat(); startTimer();
  }
  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    var m = /data-msg-id="(\d+)"/.exec(e.detail.message);
    if (m && document.getElementById("msg-" + m[1])) e.preventDefault();
  });
  document.addEventListener("htmx:wsConfigSend", function (e) {
    e.detail.parameters.client_token = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();
  });
  document.addEventListener("htmx:wsAfterSend", function () {
    var input = document.getElementById("chat-body");
    if (input) { input.value = ""; input.focus(); }
    var err = document.getElementById("chat-error");
    if (err) err.innerHTML = "";
  });
  function connection(text, ok) {
    var el = document.getElementById("connection-state");
    if (el) { el.textContent = text; el.classList.toggle("offline", !ok); }
  }
  document.addEventListener("htmx:wsOpen", function () { connection("Connected", true); });
  document.addEventListener("htmx:wsClose", function () { connection("Reconnecting…", false); });
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    if (e.detail.target.id === "chat-log") {
      var empty = document.getElementById("chat-empty");
      if (empty) empty.remove();
      markMine(); scrollChat();
    }
    if (e.detail.target.id === "room-status") startTimer();
  });
  function markMine() {
    var me = document.body.getAttribute("data-user-id");
    document.querySelectorAll("#chat-log .msg").forEach(function (el) {
      el.classList.toggle("mine", el.getAttribute("data-sender") === me);
    });
  }
  function scrollChat() {
    var log = document.getElementById("chat-log");
    if (log) log.scrollTop = log.scrollHeight;
  }

  /* Countdown to the server's end time (the server ends the session itself at zero). */
  var timerHandle = null;
  function startTimer() {
    if (timerHandle) clearInterval(timerHandle);
    var el = document.getElementById("timer");
    if (!el) return;
    var endsAt = Date.parse(el.getAttribute("data-ends-at"));
    function tick() {
      var left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
      el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      el.classList.toggle("warning", left <= 300);
      el.classList.toggle("critical", left <= 60);
    }
    tick();
    timerHandle = setInterval(tick, 1000);
  }
})();
