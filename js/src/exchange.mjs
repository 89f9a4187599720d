// exchange: what the browser state of a same-origin request costs, and the server's answer.
//
// What a fetch/XHR carries stays small whatever is stored: the entries that fit in B.budget
// characters go inline in B.header; the others form one bundle, uploaded once to B.uploadUrl
// and referenced by the hash the server answers (B.refHeader). A request that needs a bundle
// the server does not have yet waits for its upload. Forms carry every entry in their body.
// The names, the budget and the times come from the configuration (statekit/browser_refs.py).

import { warnOnce } from "./core.mjs";

/** `text` with every non-ASCII character as a JSON \u escape (header values are ASCII). */
export const ascii = (text) =>
  text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/**
 * Pack [name, entry] pairs into {inline: the header value (ASCII JSON, at most `budget`
 * characters), bundle: the JSON of the entries left out (sorted by name), or null}.
 * The smallest entries go inline, so the most values do.
 */
export function pack(entries, budget) {
  const pieces = entries.map(([name, entry]) => [
    name,
    entry,
    ascii(`${JSON.stringify(name)}:${JSON.stringify(entry)}`),
  ]);
  pieces.sort((a, b) => a[2].length - b[2].length);
  const inline = [];
  const left = {};
  let size = 2;
  for (const [name, entry, piece] of pieces) {
    if (size + piece.length + 1 <= budget) {
      inline.push(piece);
      size += piece.length + 1;
    } else left[name] = entry;
  }
  const names = Object.keys(left).sort();
  const bundle = names.length ? JSON.stringify(Object.fromEntries(names.map((n) => [n, left[n]]))) : null;
  return { inline: `{${inline.join(",")}}`, bundle };
}

/**
 * The exchange of one page. `held()` gives its entries; `upload(bundle, sync, done)` sends a
 * bundle and calls done(ref or null); `fetchWrites(ref, sync)` loads the writes the server
 * kept by reference (a Promise, or null when done); `applyText(text, where)` applies writes.
 */
export function createExchange({ B, held, upload, fetchWrites, applyText, now = Date.now }) {
  const refs = new Map(); // bundle JSON -> {ref, at}: what the server holds, as far as we know
  const uploads = new Map(); // bundle JSON -> Promise of its ref, while it uploads
  /** Headers every same-origin fetch/XHR sends: [name, () => value]. Modules add. */
  const sentHeaders = [];
  /** What every same-origin POST form sends: [field name, () => value]. Modules add. */
  const sentFields = [[B.field, () => JSON.stringify(Object.fromEntries(held()))]];

  function known(bundle) {
    const found = refs.get(bundle);
    // Uploaded again after half its time on the server, which keeps it REF_TTL after each use.
    return found && now() - found.at < B.refTtl * 500 ? found.ref : null;
  }

  function uploaded(bundle, ref) {
    if (ref) {
      refs.set(bundle, { ref, at: now() });
      if (refs.size > 8) refs.delete(refs.keys().next().value);
    } else {
      warnOnce(
        "upload",
        "browser state over the header budget could not be uploaded: " +
          "it reads as its default on the server (is statekit.urls included?)",
      );
    }
    return ref;
  }

  function ensure(bundle) {
    if (!uploads.has(bundle)) {
      const uploading = new Promise((resolve) => upload(bundle, false, (ref) => resolve(uploaded(bundle, ref))));
      uploads.set(bundle, uploading);
      uploading.then(() => uploads.delete(bundle));
    }
    return uploads.get(bundle);
  }

  /**
   * The [name, value] headers of a same-origin request, or a Promise of them when a bundle
   * must be uploaded first (`sync`: a synchronous XHR, which uploads synchronously).
   */
  function prepare(sync) {
    const plan = pack(held(), B.budget);
    const build = (ref) => {
      const pairs = [[B.header, plan.inline], ...sentHeaders.map(([name, value]) => [name, value()])];
      if (ref) pairs.push([B.refHeader, ref]);
      return pairs;
    };
    if (plan.bundle === null) return build(null);
    const ref = known(plan.bundle);
    if (ref) return build(ref);
    if (!sync) return ensure(plan.bundle).then(build);
    let found = null;
    upload(plan.bundle, true, (ref) => (found = uploaded(plan.bundle, ref)));
    return build(found);
  }

  /**
   * What a same-origin response says (`header(name)` reads it): writes, and whether our
   * bundle is gone. A Promise when writes must be fetched first (see fetchWrites), else null.
   */
  function answered(header, sync) {
    if (header(B.missingHeader)) refs.clear();
    const text = header(B.setHeader);
    if (text) applyText(text, `the ${B.setHeader} header`);
    const ref = header(B.setRefHeader);
    return ref && B.writesUrl ? fetchWrites(ref, sync) : null;
  }

  return { prepare, answered, sentHeaders, sentFields };
}
