"""Live updates: publishing changes to the channel layer (:mod:`.publish`, :mod:`.layer`) and
the websocket consumer that streams them to watching pages (:mod:`.consumer`, :mod:`.outbox`)."""
