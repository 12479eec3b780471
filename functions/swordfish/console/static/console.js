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
// Passkeys (WebAuthn): the browser's own JSON forms of the options and the credential.
async function postJSON(url, body, csrf) {
  const headers = { "Content-Type": "application/json" };
  if (csrf) headers["X-CSRFToken"] = csrf;
  const response = await fetch(url, { method: "POST", headers, credentials: "same-origin",
                                      body: JSON.stringify(body === undefined ? {} : body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `refused (${response.status})`);
  return data;
}
document.addEventListener("click", async (event) => {
  const add = event.target.closest("#add-passkey");
  const signIn = event.target.closest("#passkey-sign-in");
  if (!add && !signIn) return;
  const status = document.getElementById("passkey-status");
  status.textContent = "";
  try {
    if (add) {
      const options = await postJSON(add.dataset.options, undefined, add.dataset.csrf);
      const credential = await navigator.credentials.create(
        { publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
      const name = document.getElementById("passkey-name").value;
      await postJSON(add.dataset.register, { credential: credential.toJSON(), name }, add.dataset.csrf);
      window.location.reload();
    } else {
      const options = await postJSON(signIn.dataset.options);
      const credential = await navigator.credentials.get(
        { publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
      const done = await postJSON(signIn.dataset.verify, { credential: credential.toJSON() });
      window.location.assign(done.redirect);
    }
  } catch (error) {
    status.textContent = error.message;
  }
});
if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
  for (const element of document.querySelectorAll(".passkey-only")) element.hidden = false;
}
document.documentElement.dataset.consoleScript = "loaded";
// Binary downloads (a tenant report's PDF): fetched with the Accept header API Gateway needs to pass
// the body as binary (its binaryMediaTypes), then saved under the link's download name. A browser
// navigating the link itself asks for text/html first, and would get the PDF base64-encoded.
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a[data-accept]");
  if (!link || event.defaultPrevented) return;
  event.preventDefault();
  try {
    const response = await fetch(link.href, { headers: { Accept: link.dataset.accept }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`refused (${response.status})`);
    const url = URL.createObjectURL(await response.blob());
    const save = document.createElement("a");
    save.href = url;
    save.download = link.getAttribute("download") || "";
    document.body.appendChild(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    window.location.assign(link.href); // the server's own answer (an error page says why)
  }
});
