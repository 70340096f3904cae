/* nextslot embed: <script src="https://host/embed.js" data-business="slug" [data-service="key"] async></script>
   puts the booking page in an iframe right after this tag; the page reports its height and the iframe follows. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var business = script.getAttribute("data-business") || "";
  var service = script.getAttribute("data-service") || "";
  var key = /^[a-z0-9][a-z0-9-]{0,63}$/;
  if (!key.test(business) || (service && !key.test(service))) {
    if (window.console) console.error("nextslot embed: data-business (and data-service) must be keys like 'my-shop'");
    return;
  }
  var origin = new URL(script.src, window.location.href).origin;
  var frame = document.createElement("iframe");
  frame.src = origin + "/b/" + business + (service ? "/" + service : "") + "?embed=1";
  frame.title = script.getAttribute("data-title") || "Book an appointment";
  frame.loading = "lazy";
  frame.setAttribute("allow", "clipboard-write");
  frame.style.cssText = "display:block;width:100%;min-height:480px;height:640px;border:0;overflow:hidden";
  script.parentNode.insertBefore(frame, script.nextSibling);
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== frame.contentWindow) return;
    var data = event.data || {};
    if (data.type === "nextslot:height" && typeof data.height === "number" && data.height > 0 && data.height < 20000) {
      frame.style.height = data.height + "px";
    }
  });
})();
