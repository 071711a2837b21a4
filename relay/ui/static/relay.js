// The dashboard's behaviour: theme toggle, live refresh, copy, reveal, confirm, progress. No dependencies.
(function () {
  "use strict";
  var root = document.documentElement;

  function csrfToken() {
    var field = document.querySelector("input[name=_csrf_token]");
    return field ? field.value : "";
  }

  // Theme: follows the system until the toggle is used, then remembered.
  function currentTheme() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function labelToggle(button) {
    var next = currentTheme() === "dark" ? "light" : "dark";
    button.setAttribute("aria-label", "Switch to " + next + " theme");
    button.title = "Switch to " + next + " theme";
  }
  document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
    labelToggle(button);
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem("relay-theme", next); } catch (e) { /* not remembered */ }
      labelToggle(button);
    });
  });

  // Live parts of a page: [data-refresh=url] is replaced by a fresh render every data-interval seconds.
  document.querySelectorAll("[data-refresh]").forEach(function (box) {
    var seconds = Number(box.dataset.interval || 5);
    function refresh() {
      if (document.hidden) return;
      fetch(box.dataset.refresh, { headers: { "X-Relay-Fragment": "1" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) { if (html !== null && html !== undefined) box.innerHTML = html; })
        .catch(function () { /* try again next time */ });
    }
    setInterval(refresh, seconds * 1000);
  });

  // Copy buttons: [data-copy=#id] copies that element's text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    navigator.clipboard.writeText(text.trim()).then(function () {
      var before = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = before; }, 1500);
    });
  });

  // Reveal: [data-reveal=url] fetches a secret on click and shows it in [data-reveal-target].
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-reveal]");
    if (!button) return;
    var target = document.querySelector(button.dataset.revealTarget);
    fetch(button.dataset.reveal, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Relay-Fragment": "1" }
    })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (secret) {
        target.textContent = secret;
        target.hidden = false;
        button.hidden = true;
        var copy = document.querySelector("[data-copy='" + button.dataset.revealTarget + "']");
        if (copy) copy.hidden = false;
      })
      .catch(function () { target.textContent = "Could not read the secret."; target.hidden = false; });
  });

  // Forms that change something irreversible ask first: data-confirm="Delete this endpoint?"
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // Progress of a background operation: [data-operation=url] polls it and fills its <progress>.
  document.querySelectorAll("[data-operation]").forEach(function (box) {
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-operation-text]");
    function poll() {
      fetch(box.dataset.operation, { headers: { "X-Relay-Fragment": "1" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (op) {
          if (!op) return;
          var total = op.total || 0, done = op.done || 0;
          if (total > 0) { bar.max = total; bar.value = done; } else if (op.finished) { bar.max = 1; bar.value = 1; }
          text.textContent = op.text;
          box.dataset.status = op.status;
          if (!op.finished) setTimeout(poll, 700);
        })
        .catch(function () { setTimeout(poll, 2000); });
    }
    poll();
  });
})();

// Operation pages: the status badge inside [data-operation] follows the status the progress poll above
// writes to the box's data-status (its text and its state-… colour class).
(function () {
  "use strict";
  document.querySelectorAll("[data-operation]").forEach(function (box) {
    var badge = box.querySelector("[data-operation-status]");
    if (!badge) return;
    new MutationObserver(function () {
      badge.textContent = box.dataset.status;
      badge.className = "badge state-" + box.dataset.status;
    }).observe(box, { attributes: true, attributeFilter: ["data-status"] });
  });
})();
