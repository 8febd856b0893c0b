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
})();
