// Security keys and passkeys (WebAuthn) for SmilePass: registration on Security → Security keys and the
// second step of sign-in. Served from our own origin (the CSP allows no inline script). The server makes
// the options (py_webauthn, as JSON) and checks the answer; this file only hands them to the browser.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify(body || {})
    });
  }

  function fromBase64url(text) {
    var padded = text.replace(/-/g, "+").replace(/_/g, "/");
    while (padded.length % 4) { padded += "="; }
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(json) {
    json.challenge = fromBase64url(json.challenge);
    json.user.id = fromBase64url(json.user.id);
    (json.excludeCredentials || []).forEach(function (c) { c.id = fromBase64url(c.id); });
    return json;
  }

  function requestOptions(json) {
    json.challenge = fromBase64url(json.challenge);
    (json.allowCredentials || []).forEach(function (c) { c.id = fromBase64url(c.id); });
    return json;
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var out = {id: credential.id, rawId: toBase64url(credential.rawId), type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: {clientDataJSON: toBase64url(response.clientDataJSON)}};
    if (response.attestationObject) {
      out.response.attestationObject = toBase64url(response.attestationObject);
      if (response.getTransports) { out.response.transports = response.getTransports(); }
    } else {
      out.response.authenticatorData = toBase64url(response.authenticatorData);
      out.response.signature = toBase64url(response.signature);
      if (response.userHandle) { out.response.userHandle = toBase64url(response.userHandle); }
    }
    return out;
  }

  function run(box) {
    var mode = box.getAttribute("data-webauthn");
    var error = box.querySelector("[data-webauthn-error]");
    var nameField = box.querySelector("[data-webauthn-name]");
    var name = nameField ? nameField.value.trim() : "";
    error.hidden = true;
    if (mode === "register" && !name) {
      error.hidden = false;
      nameField.focus();
      return;
    }
    post(box.getAttribute("data-options-url")).then(function (r) {
      if (!r.ok) { throw new Error("options " + r.status); }
      return r.json();
    }).then(function (options) {
      if (mode === "register") {
        return navigator.credentials.create({publicKey: creationOptions(options)});
      }
      return navigator.credentials.get({publicKey: requestOptions(options)});
    }).then(function (credential) {
      // On the second step, the form's "Trust this browser" box counts for the key too.
      var trust = document.querySelector('input[name="trust"]');
      return post(box.getAttribute("data-verify-url"),
        {credential: credentialJSON(credential), name: name, trust: Boolean(trust && trust.checked)});
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok || !body.redirect) { throw new Error(body.error || "refused"); }
        window.location.assign(body.redirect);
      });
    }).catch(function () {
      error.hidden = false;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-webauthn-start]");
    if (!button) { return; }
    var box = button.closest("[data-webauthn]");
    if (box) { run(box); }
  });
})();
