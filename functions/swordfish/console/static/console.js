// The console's only script (served from our origin; the CSP allows no inline script).
// Buttons with data-confirm ask before submitting.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
document.documentElement.dataset.consoleScript = "loaded";
