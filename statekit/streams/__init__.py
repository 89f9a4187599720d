"""Change streams: every change of a watchable variable, from any process, to the local
subscribers of this process (:mod:`.hub`), carried between processes by what the backend
already has (:mod:`.feeds`); :mod:`.changes` is the async iterator behind
``variable.changes()`` and the Server-Sent Events of :mod:`statekit.live.sse`."""
