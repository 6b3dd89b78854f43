/* Presence badges (shared/_presence_stream.html): every (re)connect of the presence stream
   names the mechanics whose badges are on the page, so its first messages correct a badge
   that changed while the page was not listening. */
(function () {
  "use strict";
  if (!window.htmx || htmx.__presenceIds) return;
  htmx.__presenceIds = true;
  var create = htmx.createEventSource;  /* htmx-ext-sse's, if it loaded first; it keeps ours otherwise */
  htmx.createEventSource = function (url) {
    var u = new URL(url, window.location.href);
    if (/\/presence\/stream$/.test(u.pathname)) {
      var ids = [];
      document.querySelectorAll(".presence[id^='presence-']").forEach(function (el) {
        var id = el.id.slice("presence-".length);
        if (/^\d+$/.test(id) && ids.indexOf(id) === -1 && ids.length < 200) ids.push(id);
      });
      if (ids.length) u.searchParams.set("ids", ids.join(",")); else u.searchParams.delete("ids");
      url = u.toString();
    }
    return create ? create(url) : new EventSource(url, {withCredentials: true});
  };
})();
