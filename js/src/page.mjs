// page: statekit.page.id, this page load's id, the owner of its PageState (statekit/pages.py).
//
// {% statekit_js %} gives every rendered page a new id, signed for this session. It goes
// with every same-origin request; when the page is hidden for good (closed, reloaded, or
// left without entering the back/forward cache), a beacon tells the server, which keeps
// the page's state PAGE_CLOSED_TTL more. A page the cache evicts later sends nothing: its
// state then lives until its ttl or its session's end. The header, the field and the URL
// come from the configuration (statekit.pages.page_config).

/** Send page `P` ({id, header, field, closeUrl}) with the exchange `ex`; beacon its close. */
export function installPage(win, P, ex) {
  if (ex) {
    ex.sentHeaders.push([P.header, () => P.id]);
    ex.sentFields.push([P.field, () => P.id]);
  }
  win.addEventListener("pagehide", (event) => {
    // Kept in the back/forward cache (persisted), the page may come back: not closed.
    if (event.persisted || !P.closeUrl || typeof win.navigator.sendBeacon !== "function") return;
    const body = new win.FormData();
    body.append(P.field, P.id);
    win.navigator.sendBeacon(P.closeUrl, body);
  });
}
