/* nextslot booking pages, progressive enhancement only: every page works without this file. */
(function () {
  "use strict";
  var root = document.documentElement;

  // The visitor's own time zone: one redirect on the first page; after that every link carries it.
  if (root.getAttribute("data-detect-tz") === "1") {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      var url = new URL(window.location.href);
      if (zone && zone !== root.getAttribute("data-tz") && !url.searchParams.has("tz")) {
        url.searchParams.set("tz", zone);
        window.location.replace(url.toString());
        return;
      }
    } catch (ignored) { /* no Intl: the business's zone stays */ }
  }

  // A form is sent once: a second tap while the first is on its way does nothing (the server's
  // idempotency key covers whatever gets through anyway).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("data-once") !== "1") return;
    if (form.getAttribute("data-sent") === "1") { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
    form.setAttribute("aria-busy", "true");
  });
  window.addEventListener("pageshow", function () {  // back from the next page: the form may be sent again
    var sent = document.querySelectorAll("form[data-sent]");
    for (var i = 0; i < sent.length; i++) { sent[i].removeAttribute("data-sent"); sent[i].removeAttribute("aria-busy"); }
  });

  // Problems and outcomes take the focus, so screen readers announce them and keyboards start there.
  var focus = document.querySelector("[data-focus]");
  if (focus) focus.focus();

  // Copy buttons on the share page.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy],[data-copy-from]") : null;
    if (!button || !navigator.clipboard) return;
    var from = button.getAttribute("data-copy-from");
    var text = from ? document.getElementById(from).value : button.getAttribute("data-copy");
    navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; });
  });

  // Inside another site's iframe: tell the embed script how tall we are.
  if (root.getAttribute("data-embed") === "1" && window.parent !== window) {
    var last = 0;
    var report = function () {
      var height = Math.ceil(document.documentElement.scrollHeight);
      if (height !== last) {
        last = height;
        window.parent.postMessage({ type: "nextslot:height", height: height }, "*");
      }
    };
    window.addEventListener("load", report);
    if (window.ResizeObserver) new ResizeObserver(report).observe(document.body);
    report();
  }
})();

// The chat: ask for its messages every couple of seconds (304 when nothing is new) to show the answer.
(function () {
  "use strict";
  var box = document.getElementById("chat");
  var url = box && box.getAttribute("data-chat-poll");
  if (!url || !window.fetch) return;
  var tag = box.getAttribute("data-etag");  // the messages as rendered: the first poll asks what is new since
  function poll() {
    if (document.hidden) return;
    fetch(url, { headers: tag ? { "If-None-Match": tag } : {}, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status !== 200) return;
        var fresh = r.headers.get("ETag");
        return r.text().then(function (html) { box.innerHTML = html; tag = fresh; });
      }).catch(function () { /* offline for a moment */ });
  }
  poll();
  window.setInterval(poll, (parseFloat(box.getAttribute("data-poll-seconds")) || 2) * 1000);
}());
