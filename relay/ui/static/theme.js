// Applies the remembered theme before the page paints (no inline script: the CSP forbids them).
(function () {
  try {
    var saved = localStorage.getItem("relay-theme");
    if (saved === "dark" || saved === "light") document.documentElement.dataset.theme = saved;
  } catch (e) { /* storage off: follow the system setting */ }
})();
