/* nextslot console: keep the calendar (and the inbox, and an open conversation) live. Every few seconds ask
   for it again; the server answers 304 when nothing moved, so an open console costs little and shows an
   agent's booking or a customer's message within seconds. */
(function () {
  "use strict";
  var box = document.querySelector("[data-poll]");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-poll");
  var every = (parseFloat(box.getAttribute("data-poll-seconds")) || 2) * 1000;
  var tag = box.getAttribute("data-etag");  // the part as rendered: the first poll asks what changed since
  var busy = false;

  function poll() {
    if (busy || document.hidden) { return; }
    busy = true;
    var headers = tag ? { "If-None-Match": tag } : {};
    fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 200) {
        var fresh = r.headers.get("ETag");
        return r.text().then(function (html) {
          box.innerHTML = html;
          box.setAttribute("data-updated", String(Date.now()));
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

/* Drag a booking to another time (or day, in the week view) to move it: the drop becomes the same move
   a picked slot makes (POST .../move, with the wall time it landed on), after a confirmation. A time the
   service cannot start at, or that is taken, comes back as the move page with the nearest free times. */
(function () {
  "use strict";
  var box = document.getElementById("calendar");
  var csrf = document.querySelector('input[name="csrf"]');
  if (!box || !csrf) { return; }
  var dragged = null;
  var grabY = 0;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function key() {  /* one per drop, as a rendered form has: a double drop moves once */
    var chars = "abcdefghijklmnopqrstuvwxyz0123456789";
    var bytes = new Uint8Array(24);
    var out = "";
    window.crypto.getRandomValues(bytes);
    for (var i = 0; i < bytes.length; i++) { out += chars.charAt(bytes[i] % 36); }
    return out;
  }

  function laneAt(x, y) {
    var hits = document.elementsFromPoint(x, y);
    for (var i = 0; i < hits.length; i++) { if (hits[i].classList.contains("lane-bg")) { return hits[i]; } }
    return null;
  }

  function wallTime(lane, top) {
    var grid = lane.parentElement;
    var rect = lane.getBoundingClientRect();
    var rows = parseInt(grid.getAttribute("data-rows"), 10);
    var minutes = parseInt(grid.getAttribute("data-first-hour"), 10) * 60 +
      Math.round((top - rect.top) / rect.height * rows) * 5;
    if (minutes < 0 || minutes >= 24 * 60) { return null; }
    return lane.getAttribute("data-day") + "T" + pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
  }

  box.addEventListener("dragstart", function (e) {
    dragged = e.target.closest && e.target.closest("[data-move]");
    if (!dragged) { return; }
    grabY = e.clientY - dragged.getBoundingClientRect().top;
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", dragged.getAttribute("data-code"));
  });
  box.addEventListener("dragover", function (e) {
    if (dragged && laneAt(e.clientX, e.clientY)) { e.preventDefault(); }
  });
  box.addEventListener("drop", function (e) {
    if (!dragged) { return; }
    e.preventDefault();
    var lane = laneAt(e.clientX, e.clientY);
    var when = lane && wallTime(lane, e.clientY - grabY);
    var target = dragged;
    dragged = null;
    if (!when || !window.confirm("Move " + target.getAttribute("data-who") + " to " + when.replace("T", " ") + "?")) {
      return;
    }
    var form = document.createElement("form");
    form.method = "post";
    form.action = target.getAttribute("data-move");
    var zone = lane.parentElement.getAttribute("data-zone");  /* the grid's own: a branch's day is drawn in its zone */
    [["csrf", csrf.value], ["key", key()], ["local", when], ["zone", zone]].forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  });
}());
