"""uvicorn's HTTP/1.1 protocol, which also lets an ASGI app drop its request's connection.

ASGI has no way to say "reset this connection" or "close it half-way through a body",
and uvicorn does not hand the transport to the app. ``Protocol`` (given to uvicorn as
``http=Protocol``) puts a ``Connection`` in each request's ``scope["extensions"]`` under
``CONNECTION``: ``reset()`` aborts with a TCP RST (SO_LINGER zero), ``close()`` flushes
what was sent and closes with a FIN. After either, the app waits for ``http.disconnect``
and returns, so uvicorn sees a client that went away rather than an app that failed.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import TYPE_CHECKING, Any, cast

from starlette.types import Receive
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope

CONNECTION = "emulator.connection"


class Connection:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def reset(self) -> None:
        """Abort with a TCP RST: the client sees 'connection reset', not an HTTP answer."""
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._transport.abort()

    def close(self) -> None:
        """Send what is buffered, then close (FIN), whatever the response still owes."""
        self._transport.close()


class Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        app, connection = self.app, Connection(transport)

        async def with_connection(
            scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
        ) -> None:
            asgi = cast("dict[str, Any]", scope)
            asgi["extensions"] = {**(asgi.get("extensions") or {}), CONNECTION: connection}
            await app(scope, receive, send)

        self.app = with_connection


async def disconnected(receive: Receive) -> None:
    """Wait until the server has noticed the connection is gone."""
    while (await receive())["type"] != "http.disconnect":
        pass
