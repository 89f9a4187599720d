// Shared by the demo pages. statekit.js (loaded before) extends fetch with the page id and
// the browser state, so these requests carry them.
window.demo = {
  /** POST `body` (FormData, or nothing) with Django's CSRF token; the JSON answer. */
  async post(url, body = undefined) {
    const token = document.querySelector('meta[name="csrf-token"]').content;
    const response = await fetch(url, { method: "POST", headers: { "X-CSRFToken": token }, body });
    if (!response.ok) throw new Error(`POST ${url}: ${response.status}`);
    return response.json();
  },

  /** Show `texts` as the <li> items of `list` (as text, never as HTML). */
  list(list, texts) {
    list.replaceChildren(
      ...texts.map((text) => Object.assign(document.createElement("li"), { textContent: text })),
    );
  },
};
