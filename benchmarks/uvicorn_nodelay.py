"""``uvicorn`` with its own command line, whose connections get TCP_NODELAY with ``--workers``.

uvicorn 0.54 binds the listening socket of ``--workers N`` itself, with the protocol number
left at 0. Accepted sockets inherit it, and asyncio sets TCP_NODELAY only on sockets that say
IPPROTO_TCP, so Nagle's algorithm stays on: a response written in two parts waits for the
client's delayed ACK, about 40 ms per keep-alive request (uvicorn issue #3149; one worker is
not affected). Every such request would then measure that wait, not the view. Here the bound
socket is made again from its file descriptor, which reads the protocol back from the kernel
(IPPROTO_TCP); nothing else changes.

    python benchmarks/uvicorn_nodelay.py --workers 2 --port 8000 app [uvicorn options]
"""

from __future__ import annotations

import socket
import sys

from uvicorn.config import Config
from uvicorn.main import main

_bind_socket = Config.bind_socket


def bind_socket(config: Config) -> socket.socket:
    return socket.socket(fileno=_bind_socket(config).detach())


Config.bind_socket = bind_socket  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
