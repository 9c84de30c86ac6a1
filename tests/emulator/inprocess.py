"""The emulator served from inside the test process, on a thread, with the seams swapped.

``serve`` builds the app through ``create_app`` with a fake executor and clock, runs it
under uvicorn on a loopback port in a background thread (lifespan and scheduler
included), and stops it on exit. The official SDK then talks to it over HTTP as it would
to the service, while the test holds the executor and the clock.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from emulator.app import Settings, create_app
from tests.emulator.fakes import FakeClock, FakeExecutor


@dataclass(frozen=True)
class InProcess:
    url: str
    executor: FakeExecutor
    clock: FakeClock


@contextmanager
def serve(
    data: Path,
    executor: FakeExecutor | None = None,
    clock: FakeClock | None = None,
    **settings: Any,
) -> Iterator[InProcess]:
    """``settings``: more of the emulator's ``Settings`` (``autoscale_interval``...)."""
    executor = executor or FakeExecutor()
    clock = clock or FakeClock()
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and without it
    # every response waits 40 ms for a delayed ACK.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    app = create_app(Settings(data=data, url=url, **settings), executor=executor, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process emulator did not start")
        time.sleep(0.01)
    try:
        yield InProcess(url, executor, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
