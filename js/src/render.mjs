// render: keeps the elements of {% statekit_value %} equal to the browser state.

import { own } from "./core.mjs";

/** `value[key]` as {% statekit_value key=... %} shows it: a list's index, an object's key, else "". */
export function pick(value, key) {
  if (Array.isArray(value)) {
    return /^(0|[1-9][0-9]*)$/.test(key) && Number(key) < value.length ? value[Number(key)] : "";
  }
  return own(value, key) ? value[key] : "";
}

/** The text an element shows for `value`: a string as it is, anything else as JSON. */
export const shown = (value) => (typeof value === "string" ? value : JSON.stringify(value));

/** statekit.browser.render, kept up to date after each change of the state `browser`. */
export function installRender(win, states, browser) {
  const doc = win.document;

  function renderElement(element) {
    const name = element.getAttribute("data-statekit-value");
    if (!own(states, name) || states[name].encrypted) return;
    const key = element.getAttribute("data-statekit-key");
    const text = shown(key === null ? browser.current(name) : pick(browser.current(name), key));
    const control =
      element instanceof win.HTMLInputElement ||
      element instanceof win.HTMLTextAreaElement ||
      element instanceof win.HTMLSelectElement;
    // As text, never as HTML: a stored value cannot inject markup.
    if (control && element.value !== text) element.value = text;
    if (!control && element.textContent !== text) element.textContent = text;
  }

  /** Show the current values in the {% statekit_value %} elements in `root` (a document or element). */
  function render(root = doc) {
    if (root instanceof win.Element && root.hasAttribute("data-statekit-value")) renderElement(root);
    root.querySelectorAll("[data-statekit-value]").forEach(renderElement);
  }

  browser.onChange((name) =>
    doc.querySelectorAll(`[data-statekit-value="${win.CSS.escape(name)}"]`).forEach(renderElement),
  );
  doc.addEventListener("htmx:load", (event) => {
    if (event.target instanceof win.Element) render(event.target);
  });
  return render;
}
