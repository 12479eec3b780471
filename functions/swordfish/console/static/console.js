// The console's only script (served from our origin; the CSP allows no inline script).
// Buttons with data-confirm ask before submitting.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
  // Show or hide the password fields a button names (data-toggle-password="id id").
  const toggle = event.target.closest("button[data-toggle-password]");
  if (toggle) {
    const show = toggle.getAttribute("aria-pressed") !== "true";
    for (const id of toggle.dataset.togglePassword.split(" ")) {
      const field = document.getElementById(id);
      if (field) field.type = show ? "text" : "password";
    }
    toggle.setAttribute("aria-pressed", String(show));
    toggle.textContent = show ? "Hide passwords" : "Show passwords";
  }
});
// A new password typed twice: say at once whether the two agree (the server checks it too).
document.addEventListener("input", (event) => {
  if (!["password", "password_confirm"].includes(event.target.id)) return;
  const first = document.getElementById("password");
  const second = document.getElementById("password_confirm");
  const note = document.getElementById("password-match");
  if (!first || !second || !note) return;
  note.textContent = !second.value ? "" : first.value === second.value ? "The two match." : "The two differ.";
  second.setCustomValidity(second.value && first.value !== second.value ? "The two passwords differ." : "");
});
document.documentElement.dataset.consoleScript = "loaded";
