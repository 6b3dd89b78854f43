/* Room video (video15 and diagnostic plans), loaded only on the room page and only when the
   server has LiveKit settings. Pre-join: camera preview, device choice and clear messages when
   the browser refuses; in call: remote and local video, mute, camera, screen share, leave,
   a visible "Reconnecting…" state. Every failure says so and leaves the chat untouched. */
(function () {
  "use strict";

  var section = document.getElementById("video");
  if (!section || !section.getAttribute("data-token-url")) return;
  var $ = function (id) { return document.getElementById(id); };
  var LK = window.LivekitClient;
  var other = section.getAttribute("data-other-name") || "the other person";
  var previewStream = null;
  var previewRun = 0;
  var room = null;
  var joined = false;   // the current room finished connecting (a failed connect is not a drop)
  var leaving = false;

  var FIXES = {
    denied: "Your browser is blocking the camera and microphone for this site. To fix it, tap the " +
      "camera or lock icon next to the address bar, allow Camera and Microphone, then tap “Try camera again”. " +
      "Chat below keeps working meanwhile.",
    missing: "No camera or microphone was found on this device. Connect one (or check that it is switched on), " +
      "then tap “Try camera again”. Chat below keeps working meanwhile.",
    busy: "Your camera or microphone is being used by another app or tab. Close it, then tap “Try camera again”. " +
      "Chat below keeps working meanwhile.",
    insecure: "This browser cannot use the camera here: video needs a secure (https) page and a current browser. " +
      "Chat below keeps working.",
    other: "The camera or microphone could not start. Tap “Try camera again”; if it keeps failing, restart the " +
      "browser. Chat below keeps working meanwhile."
  };

  function problemFor(err) {
    var name = err && err.name;
    if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") return "denied";
    if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") return "missing";
    if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") return "busy";
    return "other";
  }

  /* One message line. `source` keeps a restarted preview from wiping out a call error. */
  function say(text, kind, source) {
    var box = $("video-message");
    box.textContent = text || "";
    box.className = "video-message " + (kind || "error");
    box.hidden = !text;
    box.setAttribute("data-source", text ? source || "call" : "");
  }

  function sayDevice(text, kind) {
    var box = $("video-message");
    if (text || box.getAttribute("data-source") === "device") say(text, kind, "device");
  }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (err) { return ""; }
  }

  /* ---- Pre-join: preview and devices ---------------------------------------------------- */

  function stopPreview() {
    if (previewStream) previewStream.getTracks().forEach(function (t) { t.stop(); });
    previewStream = null;
    $("video-preview").srcObject = null;
  }

  function constraint(select) {
    return select.value ? { deviceId: { exact: select.value } } : true;
  }

  /* Ask for both; if one kind is missing, fall back to the one that exists. */
  function openMedia() {
    var video = constraint($("video-camera")), audio = constraint($("video-microphone"));
    return navigator.mediaDevices.getUserMedia({ video: video, audio: audio }).catch(function (err) {
      if (problemFor(err) !== "missing") throw err;
      return navigator.mediaDevices.getUserMedia({ audio: audio }).catch(function () {
        return navigator.mediaDevices.getUserMedia({ video: video });
      }).catch(function () { throw err; });
    });
  }

  function startPreview() {
    var run = ++previewRun;
    stopPreview();
    $("video-retry-devices").hidden = true;
    setPreviewState("Starting your camera…");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showDeviceProblem("insecure");
      return Promise.resolve();
    }
    return openMedia().then(function (stream) {
      if (run !== previewRun) { stream.getTracks().forEach(function (t) { t.stop(); }); return; }
      previewStream = stream;
      var preview = $("video-preview");
      preview.srcObject = stream;
      var playing = preview.play();
      if (playing && playing.catch) playing.catch(function () { /* muted autoplay; a tap starts it */ });
      var hasVideo = stream.getVideoTracks().length > 0, hasAudio = stream.getAudioTracks().length > 0;
      setPreviewState(hasVideo ? "" : "No camera found: you will join with your microphone only.");
      sayDevice(hasAudio ? "" : "No microphone found: " + other + " will not hear you. Use the chat to talk.",
                "warning");
      rememberChoice(stream);
      return listDevices();
    }).catch(function (err) {
      if (run === previewRun) showDeviceProblem(problemFor(err));
    });
  }

  function rememberChoice(stream) {
    stream.getTracks().forEach(function (track) {
      var id = track.getSettings && track.getSettings().deviceId;
      var select = track.kind === "video" ? $("video-camera") : $("video-microphone");
      if (id) select.setAttribute("data-current", id);
    });
  }

  function showDeviceProblem(problem) {
    stopPreview();
    setPreviewState(problem === "denied" ? "Camera blocked" : "Camera unavailable");
    sayDevice(FIXES[problem], "error");
    section.setAttribute("data-problem", problem);
    $("video-retry-devices").hidden = problem === "insecure";
    $("video-join").textContent = "Join without camera";
    listDevices();
  }

  function setPreviewState(text) {
    var el = $("video-preview-state");
    el.textContent = text;
    el.hidden = !text;
    if (!text) section.removeAttribute("data-problem");
  }

  /* Before permission is granted browsers list devices without ids or names. */
  function fill(select, devices, label) {
    var current = select.value || select.getAttribute("data-current") || "";
    var known = devices.filter(function (d) { return d.deviceId; });
    select.innerHTML = "";
    known.forEach(function (device, i) {
      var option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || label + " " + (i + 1);
      option.selected = device.deviceId === current;
      select.appendChild(option);
    });
    if (!known.length) {
      var none = document.createElement("option");
      none.value = "";
      none.textContent = devices.length ? label + " (allow access to choose)" : "No " + label.toLowerCase() + " found";
      select.appendChild(none);
    }
    select.disabled = known.length < 2;
  }

  function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return Promise.resolve();
    return navigator.mediaDevices.enumerateDevices().then(function (all) {
      var ofKind = function (kind) { return all.filter(function (d) { return d.kind === kind; }); };
      fill($("video-camera"), ofKind("videoinput"), "Camera");
      fill($("video-microphone"), ofKind("audioinput"), "Microphone");
    }).catch(function () { /* the selects keep the browser's default device */ });
  }

  /* ---- In call --------------------------------------------------------------------------- */

  function fetchToken() {
    return fetch(section.getAttribute("data-token-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var err = new Error(data.error || "The server could not open the video call (" + response.status + ").");
          err.fromServer = true;
          throw err;
        }
        return data;
      });
    });
  }

  function withTimeout(promise, ms) {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () { reject(new Error("timed out")); }, ms);
      promise.then(function (v) { clearTimeout(timer); resolve(v); },
                   function (e) { clearTimeout(timer); reject(e); });
    });
  }

  function join() {
    if (!LK) { say("The video component did not load. Reload the page to try again; chat still works.", "error"); return; }
    var button = $("video-join");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = "Connecting…";
    say("Connecting to the video call…", "info");
    leaving = false;
    joined = false;
    var grant;
    fetchToken().then(function (data) {
      grant = data;
      room = new LK.Room({
        adaptiveStream: true, dynacast: true,
        videoCaptureDefaults: $("video-camera").value ? { deviceId: $("video-camera").value } : {},
        audioCaptureDefaults: $("video-microphone").value ? { deviceId: $("video-microphone").value } : {}
      });
      wire(room);
      return withTimeout(room.connect(grant.url, grant.token), 20000);
    }).then(function () {
      joined = true;
      var hadCamera = previewStream && previewStream.getVideoTracks().length > 0;
      var hadMic = previewStream && previewStream.getAudioTracks().length > 0;
      stopPreview();  // LiveKit opens the devices itself; a phone cannot share a camera twice
      showCall(true);
      say("");
      return Promise.all([
        hadCamera ? room.localParticipant.setCameraEnabled(true) : null,
        hadMic ? room.localParticipant.setMicrophoneEnabled(true) : null
      ]).catch(function (err) {
        say(FIXES[problemFor(err)], "warning");
      }).then(updateControls);
    }).catch(function (err) {
      var current = room;
      room = null;
      if (current) { leaving = true; current.disconnect(); }
      showCall(false);
      say(err && err.fromServer ? err.message
        : "Could not connect to video. Check your connection and tap “Try again”. " +
          "Chat still works — keep typing below.", "error");
      button.textContent = "Try again";
    }).then(function () {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    });
  }

  function wire(r) {
    var E = LK.RoomEvent;
    r.on(E.TrackSubscribed, function (track, publication, participant) { attachRemote(track, participant); })
     .on(E.TrackUnsubscribed, function (track) { track.detach().forEach(function (el) { el.remove(); }); refreshRemote(); })
     .on(E.ParticipantConnected, refreshRemote)
     .on(E.ParticipantDisconnected, refreshRemote)
     .on(E.LocalTrackPublished, function (publication) {
       if (publication.source === LK.Track.Source.Camera && publication.track) publication.track.attach($("video-local"));
       updateControls();
     })
     .on(E.LocalTrackUnpublished, updateControls)
     .on(E.TrackMuted, updateControls)
     .on(E.TrackUnmuted, updateControls)
     .on(E.Reconnecting, function () { reconnecting(true); })
     .on(E.SignalReconnecting, function () { reconnecting(true); })
     .on(E.Reconnected, function () { reconnecting(false); })
     .on(E.AudioPlaybackStatusChanged, function () { $("video-audio").hidden = r.canPlaybackAudio; })
     .on(E.Disconnected, function () {
       if (r !== room || !joined) return;
       reconnecting(false);
       room = null;
       showCall(false);
       $("video-join").textContent = leaving ? "Join video call" : "Rejoin video call";
       say(leaving ? "You left the video call. The chat is still open." :
           "The video call dropped and could not reconnect. Tap “Rejoin video call”; chat still works.",
           leaving ? "info" : "error");
       startPreview();
     });
  }

  function attachRemote(track, participant) {
    var el = track.attach();
    el.setAttribute("data-participant", participant.identity);
    if (track.kind === "video") {
      el.className = track.source === LK.Track.Source.ScreenShare ? "video-remote-screen" : "video-remote-camera";
      el.setAttribute("playsinline", "");
    }
    $("video-remote").appendChild(el);
    refreshRemote();
  }

  function refreshRemote() {
    if (!room) return;
    var people = Array.from(room.remoteParticipants.values());
    var label = $("video-remote-empty");
    var hasVideo = $("video-remote").querySelector("video") !== null;
    label.hidden = hasVideo;
    label.textContent = people.length ? (people[0].name || other) + " has joined; their camera is off."
      : "Waiting for " + other + " to join the video…";
  }

  function reconnecting(on) {
    $("video-reconnecting").hidden = !on;
    section.classList.toggle("is-reconnecting", on);
  }

  function showCall(on) {
    $("video-call").hidden = !on;
    $("video-prejoin").hidden = on;
    section.classList.toggle("in-call", on);
    if (!on) {
      $("video-remote").querySelectorAll("video, audio").forEach(function (el) { el.remove(); });
      $("video-local").srcObject = null;
      $("video-audio").hidden = true;
    }
  }

  function updateControls() {
    if (!room) return;
    var me = room.localParticipant;
    toggle($("video-mic"), me.isMicrophoneEnabled, "Mute", "Unmute");
    toggle($("video-cam"), me.isCameraEnabled, "Camera off", "Camera on");
    toggle($("video-screen"), me.isScreenShareEnabled, "Stop sharing", "Share screen", true);
    $("video-local").hidden = !me.isCameraEnabled;
  }

  function toggle(button, on, whenOn, whenOff, pressedWhenOn) {
    button.textContent = on ? whenOn : whenOff;
    button.setAttribute("aria-pressed", String(pressedWhenOn ? on : !on));
  }

  function flip(getter, setter, what) {
    return function () {
      if (!room) return;
      var button = this;
      button.disabled = true;
      var me = room.localParticipant;
      me[setter](!me[getter]).catch(function (err) {
        if (what === "screen" && err && err.name === "NotAllowedError") return;  // the person cancelled the picker
        say(what === "screen" ? "Screen sharing could not start: " + (err && err.message || "not allowed") + "."
          : FIXES[problemFor(err)], "warning");
      }).then(function () { button.disabled = false; updateControls(); });
    };
  }

  function leave() {
    if (!room) return;
    leaving = true;
    room.disconnect();
  }

  /* ---- Start ----------------------------------------------------------------------------- */

  $("video-join").addEventListener("click", join);
  $("video-retry-devices").addEventListener("click", startPreview);
  $("video-camera").addEventListener("change", startPreview);
  $("video-microphone").addEventListener("change", startPreview);
  $("video-mic").addEventListener("click", flip("isMicrophoneEnabled", "setMicrophoneEnabled", "microphone"));
  $("video-cam").addEventListener("click", flip("isCameraEnabled", "setCameraEnabled", "camera"));
  $("video-screen").addEventListener("click", flip("isScreenShareEnabled", "setScreenShareEnabled", "screen"));
  $("video-leave").addEventListener("click", leave);
  $("video-audio").addEventListener("click", function () {
    if (room) room.startAudio().then(function () { $("video-audio").hidden = true; });
  });
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) $("video-screen").hidden = true;
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener("devicechange", function () { if (!room) listDevices(); });
  }
  window.addEventListener("pagehide", function () { leave(); stopPreview(); });
  section.setAttribute("data-ready", "true");
  startPreview();
})();
