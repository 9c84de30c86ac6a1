"""Fault injection: a fraction of requests fail, as the service and the network sometimes
make them. One implementation, used by the emulator (Batch) and the fault proxy (storage).

Off unless a rate is given: at rate 0 no middleware is added at all. Each request draws
once as it arrives: with probability ``rate`` it fails, in a kind drawn evenly from the
enabled kinds that apply to it:

- ``500``, ``503``, ``429``: the service's error answer (``429`` with ``Retry-After``);
  the request is not handled.
- ``reset``: the connection is reset (TCP RST) before any byte of a response; the request
  is not handled.
- ``cut``: the request is handled, then the response's headers (its full Content-Length)
  and half its body are sent and the connection is closed, as the Azure SDK team's
  http-fault-injector does. A response with no body to cut is dropped whole: the client
  sees the connection close, though the request was handled.
- ``partial``, for POST /jobs/{job}/addtaskcollection only: a 200 in which some tasks
  (at least one) have status ``servererror``; those are not added, the others are.

``reset`` and ``cut`` need ``connections.Protocol`` as uvicorn's HTTP protocol. The draws
come from one ``random.Random(seed)``: the same seed and the same sequence of requests
give the same faults. Each fault is one line ``KIND METHOD PATH`` in the fault log (the
path as sent; never the query, which may hold a SAS, nor a header).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator import errors, wire
from emulator.connections import CONNECTION, Connection, disconnected

STATUSES = {"500": 500, "503": 503, "429": 429}
KINDS = (*STATUSES, "reset", "cut", "partial")
RETRY_AFTER = "1"  # seconds: short, so that a run with faults still moves
_COLLECTION = re.compile(r"/jobs/[^/]+/addtaskcollection")
COLLECTION_LIMIT = 100

Answer = Callable[[int, Scope], Response]
"""The service's error answer for a status (500, 503 or 429) to the request in scope."""


@dataclass(frozen=True)
class Faults:
    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    log: Path | None = None  # one line per fault; stderr if None

    @property
    def on(self) -> bool:
        return self.rate > 0 and bool(self.kinds)

    def describe(self) -> str:
        where = self.log or "stderr"
        return (
            f"faults: {self.rate:g} of requests, seed {self.seed}, "
            f"kinds {','.join(self.kinds)}, logged to {where}"
        )


class Draw:
    """The seeded draws: whether a request fails, how, and which tasks of a collection."""

    def __init__(self, faults: Faults) -> None:
        self.rate = faults.rate
        self.kinds = faults.kinds
        self._random = random.Random(faults.seed)

    def kind(self, method: str, path: str) -> str | None:
        """A request no enabled kind applies to draws nothing: with ``partial`` alone, the
        add-task-collection requests meet the same faults however many others came."""
        collection = method == "POST" and _COLLECTION.fullmatch(path) is not None
        eligible = [kind for kind in self.kinds if kind != "partial" or collection]
        if not eligible or self._random.random() >= self.rate:
            return None
        return self._random.choice(eligible)

    def failing(self, count: int) -> set[int]:
        """Which of ``count`` tasks fail: each one by a coin's toss, at least one."""
        chosen = {index for index in range(count) if self._random.random() < 0.5}
        return chosen or {self._random.randrange(count)}


class FaultInjector:
    """ASGI middleware: fails the requests the draw says, passes the others untouched."""

    def __init__(self, app: ASGIApp, faults: Faults, answer: Answer) -> None:
        self.app = app
        self.faults = faults
        self.answer = answer
        self.draw = Draw(faults)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = self.draw.kind(scope["method"], scope["path"])
        if kind is None:
            await self.app(scope, receive, send)
        elif kind in STATUSES:
            await _drain(receive)
            await self.answer(STATUSES[kind], scope)(scope, receive, send)
            self._record(kind, scope)
        elif kind == "reset":
            _connection(scope).reset()
            self._record(kind, scope)
            await disconnected(receive)
        elif kind == "cut":
            await self._cut(scope, receive, send)
        else:
            await self._partial(scope, receive, send)

    async def _cut(self, scope: Scope, receive: Receive, send: Send) -> None:
        start, body = await _buffered(self.app, scope, receive)
        connection = _connection(scope)
        if body and scope["method"] != "HEAD":
            await send({**start, "headers": _with_length(start.get("headers", []), len(body))})
            half = body[: len(body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
        connection.close()
        self._record("cut", scope)
        await disconnected(receive)

    async def _partial(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read(receive)
        tasks = _collection(body)
        if tasks is None:  # not a collection the service would take: no fault to play
            await self.app(scope, _replay(body, receive), send)
            return
        failing = self.draw.failing(len(tasks))
        kept = [task for index, task in enumerate(tasks) if index not in failing]
        results: list[Any] = []
        headers: list[tuple[bytes, bytes]] = []
        if kept:
            # The headers stay as sent (their signature covers the Content-Length the
            # client sent); only the body the app reads is shorter.
            fewer = json.dumps({**json.loads(body), "value": kept}).encode()
            start, content = await _buffered(self.app, scope, _replay(fewer, receive))
            if start.get("status") != 200:  # refused whole (no such job...): as it is
                await send(start)
                await send({"type": "http.response.body", "body": content})
                return
            results = json.loads(content)["value"]
            headers = start.get("headers", [])
        results += [_server_error(tasks[index]["id"]) for index in sorted(failing)]
        answer = json.dumps({"value": results}).encode()
        if not headers:
            headers = [(b"content-type", wire.JSON_CONTENT_TYPE.encode())]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": _with_length(headers, len(answer)),
            }
        )
        await send({"type": "http.response.body", "body": answer})
        self._record("partial", scope)

    def _record(self, kind: str, scope: Scope) -> None:
        path = scope.get("raw_path") or scope["path"].encode()
        line = f"{kind} {scope['method']} {path.decode('latin-1')}\n"
        if self.faults.log is None:
            sys.stderr.write(line)
            sys.stderr.flush()
            return
        with open(self.faults.log, "a", encoding="utf-8") as log:
            log.write(line)  # one write, appended: two servers can share the file


def batch_answer(account_url: str) -> Answer:
    """Batch's error answers: the service's JSON error body and headers."""
    by_status = {500: errors.InternalError, 503: errors.ServerBusy, 429: errors.TooManyRequests}

    def answer(status: int, scope: Scope) -> Response:
        request_id = str(uuid.uuid4())
        error = by_status[status]()
        body = error.render(account_url, request_id, wire.timestamp(datetime.now(UTC)))
        headers = {"request-id": request_id, "DataServiceVersion": "3.0"}
        for name, value in scope["headers"]:
            if name == b"client-request-id":
                headers["client-request-id"] = value.decode("latin-1")
        if status == 429:
            headers["Retry-After"] = RETRY_AFTER
        return JSONResponse(
            body, status_code=status, headers=headers, media_type=wire.JSON_CONTENT_TYPE
        )

    return answer


def _server_error(task_id: str) -> dict[str, Any]:
    """A BatchTaskAddResult of status servererror: the task was not added."""
    return {
        "status": "servererror",
        "taskId": task_id,
        "error": {
            "code": errors.ServerBusy.__name__,
            "message": {"lang": "en-US", "value": errors.ServerBusy.message},
        },
    }


def _collection(body: bytes) -> list[dict[str, Any]] | None:
    """The tasks of an addtaskcollection body, if the service would take it."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    tasks = document.get("value") if isinstance(document, dict) else None
    if not isinstance(tasks, list) or not 0 < len(tasks) <= COLLECTION_LIMIT:
        return None
    if not all(isinstance(task, dict) and isinstance(task.get("id"), str) for task in tasks):
        return None
    return tasks


def _connection(scope: Scope) -> Connection:
    try:
        connection: Connection = scope["extensions"][CONNECTION]
    except KeyError:
        raise RuntimeError("reset and cut faults need connections.Protocol in uvicorn") from None
    return connection


def _with_length(headers: Sequence[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    framing = (b"content-length", b"transfer-encoding")
    kept = [(name, value) for name, value in headers if name.lower() not in framing]
    return [*kept, (b"content-length", str(length).encode())]


async def _buffered(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
    """The app's whole response: its start message and its body."""
    start: Message = {"type": "http.response.start", "status": 500, "headers": []}
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return start, b"".join(chunks)


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives ``body`` as the whole request, then defers to ``receive``."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# --- the command line, shared by the emulator and the fault proxy -------------------------


def add_arguments(parser: argparse.ArgumentParser, default_kinds: Sequence[str]) -> None:
    group = parser.add_argument_group("faults (off by default)")
    group.add_argument(
        "--faults", type=_rate, default=0.0, metavar="RATE", help="fraction of requests to fail"
    )
    group.add_argument("--fault-seed", type=int, metavar="N", help="seed (default: random)")
    group.add_argument(
        "--fault-kinds",
        type=_kinds,
        default=tuple(default_kinds),
        metavar="KINDS",
        help=f"comma-separated, of {','.join(default_kinds)} (default: all of them)",
    )
    group.add_argument("--fault-log", type=Path, metavar="PATH", help="one line per fault")


def from_arguments(arguments: argparse.Namespace) -> Faults:
    seed = arguments.fault_seed
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    log = arguments.fault_log.resolve() if arguments.fault_log else None
    return Faults(arguments.faults, seed, arguments.fault_kinds, log)


def _rate(text: str) -> float:
    rate = float(text)
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return rate


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown fault kind {', '.join(unknown) or '(none)'}: choose from {','.join(KINDS)}"
        )
    return kinds
