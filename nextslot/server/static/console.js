/* nextslot console: keep the calendar live. Every few seconds ask for it again; the server answers 304
   when nothing moved, so an open console costs little and shows an agent's booking within seconds. */
(function () {
  "use strict";
  var box = document.getElementById("calendar");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-poll");
  var every = (parseFloat(box.getAttribute("data-poll-seconds")) || 2) * 1000;
  var tag = null;
  var busy = false;

  function poll() {
    if (busy || document.hidden) { return; }
    busy = true;
    var headers = tag ? { "If-None-Match": tag } : {};
    fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 200) {
        var fresh = r.headers.get("ETag");
        return r.text().then(function (html) {
          if (tag !== null) { box.innerHTML = html; box.setAttribute("data-updated", String(Date.now())); }
          tag = fresh;
        });
      }
      if (r.status === 401 || r.redirected) { window.location.reload(); }
    }).catch(function () { /* offline for a moment: try again next time */ }).then(function () { busy = false; });
  }

  poll();
  window.setInterval(poll, every);
  document.addEventListener("visibilitychange", poll);
}());
