/* AutoDoctor page behaviour: redirects pushed by the server, the dashboard chime,
   the room's reconnect/de-duplication and its countdown. No build step. */
(function () {
  "use strict";

  /* A pushed fragment that carries data-redirect moves the page (session accepted, ended). */
  document.addEventListener("htmx:oobAfterSwap", function () {
    setTimeout(function () {  /* once the swap is done (see the room's handler below) */
      var el = document.querySelector("[data-redirect]");
      if (el) window.location.assign(el.getAttribute("data-redirect"));
    }, 0);
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
    setTimeout(function () {  /* once the swap is done */
      var ids = requestIds();
      if (knownIds && ids.some(function (id) { return knownIds.indexOf(id) === -1; })) chime();
      knownIds = ids;
    }, 0);
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("request-list")) knownIds = requestIds();
  });
  function setLive(ok) {
    var el = document.getElementById("live-indicator");
    if (el) el.classList.toggle("offline", !ok);
  }
  document.addEventListener("htmx:sseOpen", function () { setLive(true); });

  /* Notices: any stream of the person's own channel (the mechanic dashboard, or
     shared/_notices_stream.html) may push the whole notices area; swap it in. */
  document.addEventListener("htmx:sseOpen", function (e) {
    var source = e.detail.source;
    if (source.__notices) return;  /* the browser's own reconnects reopen the same source */
    source.__notices = true;
    source.addEventListener("notices", function (m) {
      var area = document.getElementById("notices");
      if (area) htmx.swap(area, m.data, {swapStyle: "outerHTML"});
    });
  });
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
  var socket = null;  /* htmx-ext-ws's wrapper: queues while reconnecting */
  document.addEventListener("htmx:wsOpen", function (e) {
    socket = e.detail.socketWrapper; connection("Connected", true); sendSeen(true);
  });
  document.addEventListener("htmx:wsClose", function () { connection("Reconnecting…", false); });
  /* An out-of-band swap that replaces an element fires this while the old element is still
     the one found by id: act once the swap is done. */
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    var id = e.detail.target.id;
    setTimeout(function () {
      if (id === "chat-log") {
        var empty = document.getElementById("chat-empty");
        if (empty) empty.remove();
        markMine(); scrollChat(); clearTyping(); sendSeen(); showSeen();
      }
      if (id === "room-status") { startTimer(); toggleExtension(); }
      if (id === "typing") showTyping();
      if (id.indexOf("seen-") === 0) showSeen();
    }, 0);
  });
  function me() { return document.body.getAttribute("data-user-id"); }
  function markMine() {
    document.querySelectorAll("#chat-log .msg").forEach(function (el) {
      el.classList.toggle("mine", el.getAttribute("data-sender") === me());
    });
  }
  function scrollChat() {
    var log = document.getElementById("chat-log");
    if (log) log.scrollTop = log.scrollHeight;
  }

  /* Typing: tell the other person at most every 1.5 s; their line clears after 4 s. */
  var lastTypingSent = 0, typingTimer = null;
  document.addEventListener("input", function (e) {
    if (e.target.id !== "chat-body" || !socket || !e.target.value) return;
    if (Date.now() - lastTypingSent < 1500) return;
    lastTypingSent = Date.now();
    socket.send(JSON.stringify({type: "typing"}));
  });
  function showTyping() {
    var el = document.getElementById("typing");
    if (!el) return;
    if (el.getAttribute("data-typing-user") === me()) { el.textContent = ""; return; }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(clearTyping, 4000);
  }
  function clearTyping() {
    var el = document.getElementById("typing");
    if (el) { el.textContent = ""; el.removeAttribute("data-typing-user"); }
  }

  /* "Seen": report the other person's newest line once this tab is visible; show, under my
     own newest line they have read, that they saw it. */
  var lastSeenSent = 0;
  function sendSeen(force) {
    if (!socket || document.visibilityState !== "visible") return;
    var theirs = document.querySelectorAll("#chat-log .msg:not(.mine)");
    if (!theirs.length) return;
    var id = parseInt(theirs[theirs.length - 1].getAttribute("data-msg-id"), 10);
    if (id > lastSeenSent || force) {
      lastSeenSent = id;
      socket.send(JSON.stringify({type: "seen", message_id: id}));
    }
  }
  document.addEventListener("visibilitychange", function () { sendSeen(); });
  function showSeen() {
    var upTo = 0;
    document.querySelectorAll(".seen-state").forEach(function (el) {
      if (el.getAttribute("data-reader") !== me()) upTo = Math.max(upTo, parseInt(el.getAttribute("data-seen-msg"), 10));
    });
    var target = null;
    document.querySelectorAll("#chat-log .msg.mine").forEach(function (el) {
      el.classList.remove("seen");
      if (parseInt(el.getAttribute("data-msg-id"), 10) <= upTo) target = el;
    });
    if (target) target.classList.add("seen");
  }

  /* Countdown from the server's "seconds left" (not the device clock, which may be wrong);
     the server ends the session itself at zero and pushes the summary redirect. */
  var timerHandle = null;
  function startTimer() {
    if (timerHandle) clearInterval(timerHandle);
    var el = document.getElementById("timer");
    if (!el) return;
    var endsAt = Date.now() + parseInt(el.getAttribute("data-remaining"), 10) * 1000;
    function tick() {
      var left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
      el.textContent = left ? Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") : "Time is up";
      el.classList.toggle("warning", left <= 300);
      el.classList.toggle("critical", left <= 60);
    }
    tick();
    timerHandle = setInterval(tick, 1000);
  }
  function toggleExtension() {
    var form = document.getElementById("extension"), status = document.getElementById("room-status");
    if (form && status) form.hidden = !status.classList.contains("live");
  }

  /* The mechanic's unsent notes survive the move to the summary when time runs out. */
  document.addEventListener("input", function (e) {
    var room = document.getElementById("room");
    if (e.target.name === "notes" && room) sessionStorage.setItem("notes:" + location.pathname.split("/")[2], e.target.value);
  });
  if (document.getElementById("room")) { markMine(); scrollChat(); startTimer(); showSeen(); }

  document.addEventListener("DOMContentLoaded", function () {
    var notes = document.querySelector("#notes textarea[name=notes]");
    var saved = notes && sessionStorage.getItem("notes:" + location.pathname.split("/")[2]);
    if (saved && !notes.value) notes.value = saved;
  });
})();

/* Room files (room/_upload_form.html): pick a file (or take a photo), an instant size/type
   pre-check in the browser (the server still decides), then the upload with a progress bar
   and a way to cancel. The shared file arrives in the chat over the room socket. */
(function () {
  "use strict";
  var MB = 1048576;
  var LABELS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", "video/mp4": "MP4",
                "video/quicktime": "MOV", "application/pdf": "PDF"};
  var ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"};
  function form() { return document.getElementById("upload-form"); }
  function part(f, sel) { return f.querySelector(sel); }
  function size(n) { return n >= MB ? (n / MB).toFixed(1) + " MB" : Math.max(1, Math.round(n / 1024)) + " KB"; }
  function say(f, sel, cls, text) {
    var el = part(f, sel);
    el.textContent = "";
    if (text) { var p = document.createElement("p"); p.className = cls; p.textContent = text; el.appendChild(p); }
  }
  function problem(f, file) {
    var limits = JSON.parse(f.getAttribute("data-limits") || "{}");
    var type = ALIASES[file.type] || file.type, name = "“" + file.name + "”";
    var max = Math.max.apply(null, Object.keys(limits).map(function (k) { return limits[k]; }));
    if (!file.size) return name + " is empty.";
    if (type && !(type in limits)) return name + " can’t be shared here. " + f.getAttribute("data-accepted");
    if (type && file.size > limits[type])
      return name + " is " + size(file.size) + "; " + LABELS[type] + " files are limited to " + limits[type] / MB + " MB.";
    if (file.size > max) return name + " is " + size(file.size) + "; files are limited to " + max / MB + " MB.";
    return null;
  }
  function choose(f, file) {
    part(f, ".upload-chosen").hidden = !file;
    part(f, ".upload-pick").hidden = !!file;
    part(f, ".upload-name").textContent = file ? file.name + " · " + size(file.size) : "";
  }
  function progress(f, show) {
    var box = part(f, ".upload-progress");
    box.hidden = !show;
    part(box, "progress").value = 0;
    part(box, ".upload-percent").textContent = "Uploading… 0%";
  }
  document.addEventListener("change", function (e) {
    var f = form(), input = e.target;
    if (!f || input.type !== "file" || !f.contains(input)) return;
    f.querySelectorAll("input[type=file]").forEach(function (other) { if (other !== input) other.value = ""; });
    say(f, ".upload-status", "ok", "");
    var file = input.files && input.files[0], why = file && problem(f, file);
    if (why) input.value = "";
    say(f, ".upload-error", "error", why);
    choose(f, why ? null : file);
  });
  document.addEventListener("click", function (e) {
    var f = form();
    if (!f || !f.contains(e.target)) return;
    if (e.target.closest("[data-upload-clear]")) {
      f.querySelectorAll("input[type=file]").forEach(function (input) { input.value = ""; });
      say(f, ".upload-error", "error", "");
      choose(f, null);
    } else if (e.target.closest("[data-upload-cancel]")) {
      htmx.trigger(f, "htmx:abort");
    }
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var f = form();
    if (e.target !== f) return;
    var chosen = Array.prototype.some.call(f.querySelectorAll("input[type=file]"), function (i) { return i.files.length; });
    if (!chosen) { e.preventDefault(); say(f, ".upload-error", "error", "Choose a photo or file to share first."); return; }
    say(f, ".upload-error", "error", "");
    progress(f, true);
  });
  document.addEventListener("htmx:xhr:progress", function (e) {
    var f = form();
    if (e.target !== f || !e.detail.lengthComputable || !e.detail.total) return;
    var bar = part(f, ".upload-progress progress");
    var pct = Math.max(bar.value, Math.floor(100 * e.detail.loaded / e.detail.total));
    bar.value = pct;
    part(f, ".upload-percent").textContent = pct < 100 ? "Uploading… " + pct + "%" : "Checking the file…";
  });
  function failed(text) {
    return function (e) {
      var f = form();
      if (e.target !== f) return;
      progress(f, false);
      say(f, ".upload-error", "error", text);
    };
  }
  document.addEventListener("htmx:sendError", failed("The upload stopped before it finished. Check your connection and try again."));
  document.addEventListener("htmx:xhr:abort", failed("Upload cancelled."));
  document.addEventListener("htmx:responseError", failed("Something went wrong on our side; nothing was shared. Please try again."));
})();
