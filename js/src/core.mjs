// core: statekit's error class and the small helpers every other module uses.

export class StatekitError extends Error {
  constructor(message, options) {
    super(`statekit: ${message}`, options);
    this.name = "StatekitError";
  }
}

/** Report an error without stopping the caller: the page's error handlers see it. */
export const report = (error) =>
  typeof globalThis.reportError === "function" ? globalThis.reportError(error) : console.error(error);

export const own = (object, key) =>
  object !== null && typeof object === "object" && Object.prototype.hasOwnProperty.call(object, key);

const warned = new Set();

/** console.warn `message` once per page for `key`. */
export const warnOnce = (key, message) => {
  if (!warned.has(key)) {
    warned.add(key);
    console.warn(`statekit: ${message}`);
  }
};

export const whenReady = (doc, fn) =>
  doc.readyState === "loading" ? doc.addEventListener("DOMContentLoaded", fn, { once: true }) : fn();

/** The JSON content of the element `id` of `doc`, or null (reported when it is not JSON). */
export function readJSON(doc, id, what) {
  const element = id && doc.getElementById(id);
  if (!element) return null;
  try {
    return JSON.parse(element.textContent);
  } catch (error) {
    report(new StatekitError(`${what} (#${id}) is not JSON`, { cause: error }));
    return null;
  }
}
