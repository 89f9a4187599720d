"""Browser state: ``BrowserState`` (:mod:`.state`), its transport between statekit.js and the
server (:mod:`.transport`, :mod:`.refs`, :mod:`.delivery`, :mod:`.upload`) and its sealing."""
