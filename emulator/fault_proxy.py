"""``python -m emulator.fault_proxy --target URL --port P --faults RATE``: storage faults.

A reverse proxy on loopback in front of a storage server (Azurite), wrapped in the same
``faults.FaultInjector`` as the emulator, with storage's error answers. A request no
fault is drawn for goes through as sent: method, path and query as raw bytes, and every
header but the hop-by-hop ones, Host included (SharedKey signatures cover what the
client sent); bodies stream both ways. Its default kinds leave out ``429``, which
Azure Storage does not send (it throttles with 503 ServerBusy, and the storage SDK does
not retry a 429), and ``partial``, which is Batch's; ``--fault-kinds 429`` adds it.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

import httpx
import uvicorn
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator import connections, faults

STORAGE_KINDS = ("500", "503", "reset", "cut")
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_ERRORS = {
    500: ("InternalError", "The server encountered an internal error. Please retry the request."),
    503: (
        "ServerBusy",
        "The server is currently unable to receive requests. Please retry your request.",
    ),
    429: ("TooManyRequests", "The request rate is over the account's limit."),
}


class Proxy:
    """The ASGI app: each request to ``target``, the answer back, streamed."""

    def __init__(self, target: str) -> None:
        self.target = httpx.URL(target)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=10),  # a large blob takes what it takes
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )
        self.client.headers.clear()  # add no header of httpx's own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        request = Request(scope, receive)
        raw = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        headers = [(name, value) for name, value in scope["headers"] if name not in _HOP_BY_HOP]
        framing = (b"content-length", b"transfer-encoding")
        has_body = any(name in framing for name, _ in scope["headers"])
        outgoing = self.client.build_request(
            request.method,
            self.target.copy_with(raw_path=raw),
            headers=headers,
            content=request.stream() if has_body else None,
        )
        try:
            answer = await self.client.send(outgoing, stream=True)
        except httpx.HTTPError as error:
            message = f"the storage server did not answer: {type(error).__name__}"
            await Response(message, status_code=502)(scope, receive, send)
            return
        kept = [
            (name, value) for name, value in answer.headers.raw if name.lower() not in _HOP_BY_HOP
        ]
        response = StreamingResponse(
            answer.aiter_raw(), answer.status_code, background=BackgroundTask(answer.aclose)
        )
        response.raw_headers = kept  # as the server sent them, Content-Length included
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def storage_answer(status: int, scope: Scope) -> Response:
    """Azure Storage's error answer: an XML body, with the code in x-ms-error-code too."""
    code, message = _ERRORS[status]
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    detail = f"{message}\nRequestId:{request_id}\nTime:{now.strftime('%Y-%m-%dT%H:%M:%S.%f')}0Z"
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{escape(detail)}</Message></Error>"
    )
    headers = {
        "x-ms-request-id": request_id,
        "x-ms-error-code": code,
        "Date": format_datetime(now, usegmt=True),
    }
    for name, value in scope["headers"]:
        if name == b"x-ms-client-request-id":
            headers["x-ms-client-request-id"] = value.decode("latin-1")
    if status == 429:
        headers["Retry-After"] = faults.RETRY_AFTER
    return Response(body, status_code=status, headers=headers, media_type="application/xml")


def create_proxy(target: str, injected: faults.Faults) -> ASGIApp:
    proxy = Proxy(target)
    if not injected.on:
        return proxy
    return faults.FaultInjector(proxy, injected, storage_answer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator.fault_proxy", description=__doc__)
    parser.add_argument("--target", required=True, help="the server's URL (http://host:port)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    faults.add_arguments(parser, STORAGE_KINDS)
    arguments = parser.parse_args(argv)
    if "partial" in arguments.fault_kinds:
        parser.error("partial is a Batch fault (addtaskcollection): storage has none")
    injected = faults.from_arguments(arguments)
    if injected.on:
        print(injected.describe(), file=sys.stderr, flush=True)
    uvicorn.run(
        create_proxy(arguments.target, injected),
        host=arguments.host,
        port=arguments.port,
        log_level="warning",
        http=connections.Protocol,
        server_header=False,  # the storage server's own Server and Date headers go through
        date_header=False,
    )


if __name__ == "__main__":
    main()
