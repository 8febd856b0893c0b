// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // htmx requests carry the CSRF token in a header as well as in the form fields.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  // Live character count for fields that declare data-counter="ID-of-counter".
  function updateCounter(field) {
    var counter = document.getElementById(field.dataset.counter);
    if (!counter) return;
    var max = field.getAttribute("maxlength");
    counter.textContent = field.value.length + " / " + max;
    counter.classList.toggle("near-limit", max && field.value.length > max * 0.9);
  }
  document.addEventListener("input", function (event) {
    if (event.target.dataset && event.target.dataset.counter) updateCounter(event.target);
  });
  document.addEventListener("htmx:load", function (event) {
    event.detail.elt.querySelectorAll("[data-counter]").forEach(updateCounter);
  });

  // After a table or filter swaps in place (sorting, filters, pages), say what changed and move the focus to
  // the new content: its heading, else its first cell. Regions say it in a [data-swap-summary] element the
  // server renders; polling panels have none and are left alone.
  document.addEventListener("htmx:afterSettle", function (event) {
    // Only for what a GET brought (sorting, filters, pages): a sent form that also refreshes a table out of
    // band (a new request) keeps its own confirmation in view.
    var config = event.detail.requestConfig;
    if (!config || config.verb !== "get") return;
    var region = event.detail.elt;
    if (!region || !region.querySelector) return;
    var summary = region.querySelector("[data-swap-summary]");
    if (!summary) return;
    var announcer = document.getElementById("announcer");
    if (announcer) {
      announcer.textContent = "";
      // A moment later, so screen readers notice the change even when the text is the same as before.
      window.setTimeout(function () { announcer.textContent = summary.textContent.trim(); }, 50);
    }
    // Only when the swap took the focus away (the clicked sort button or chip was replaced): someone typing
    // in a search field outside the region keeps their place.
    var active = document.activeElement;
    if (active && active !== document.body) return;
    var target = region.querySelector("h1, h2, h3") || region.querySelector("tbody th, tbody td");
    if (target) {
      if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
      target.focus({ preventScroll: false });
    }
  });

  // A network failure (server down) must say so instead of silently doing nothing.
  document.addEventListener("htmx:sendError", function () {
    var flash = document.getElementById("flash");
    if (flash) {
      flash.innerHTML = "";
      var p = document.createElement("p");
      p.className = "notice notice-error";
      p.setAttribute("role", "alert");
      p.textContent = "SmilePass could not be reached. Check the connection and try again.";
      flash.appendChild(p);
    }
  });

  // Live ticket pages (docs/live.md). The SSE extension keeps the stream and fetches the parts an event
  // names; here: say when live updates are off (the 15 s poll carries on), and after a reconnect fetch
  // every part once, since events sent while the stream was down are not repeated.
  document.addEventListener("htmx:sseError", function (event) {
    var notice = event.target.querySelector && event.target.querySelector(".live-off");
    if (notice) notice.hidden = false;
  });
  document.addEventListener("htmx:sseOpen", function (event) {
    var live = event.target;
    var notice = live.querySelector && live.querySelector(".live-off");
    if (notice) notice.hidden = true;
    if (live.dataset.liveOpened) {
      htmx.trigger(live.querySelector("[hx-trigger='live-resync']"), "live-resync");
    }
    live.dataset.liveOpened = "1";
  });
})();

// The 3D scan viewer (docs/viewer.md): its module, and three.js with it, load only when a "View in 3D" panel
// is opened or a pin in the thread is followed, so a ticket page costs nothing more until then.
(function () {
  "use strict";

  function openViewer(details, view) {
    import(details.dataset.module).then(function (viewer) {
      viewer.open(details, view || null);
    });
  }

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.matches && details.matches("details[data-viewer]") && details.open) openViewer(details, null);
  }, true);

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-pin-scan]");
    if (!link) return;
    var details = document.getElementById("viewer-" + link.dataset.pinScan);
    if (!details) return;
    event.preventDefault();
    var view = {
      point: link.dataset.pinPoint.split(" ").map(Number),
      camera: link.dataset.pinCamera.split(" ").map(Number),
      target: link.dataset.pinTarget.split(" ").map(Number)
    };
    details.open = true;
    details.scrollIntoView({ block: "start" });
    openViewer(details, view);
  });
})();
