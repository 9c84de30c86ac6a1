"""The composition root: settings in, a Starlette application out.

``create_app`` builds the store, the state, the executor and the scheduler, wires them
together and starts the scheduler in the application's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette

from emulator.auth import SharedKeyVerifier
from emulator.executor import Executor
from emulator.files import Storage
from emulator.routes import Api
from emulator.scheduler import Scheduler
from emulator.state import BatchState
from emulator.store import Store

DEFAULT_ACCOUNT = "devbatch"
DEFAULT_KEY = "ZGV2YmF0Y2gta2V5LWZvci10aGUtbG9jYWwtZW11bGF0b3Itb25seQ=="
"""A well-known key, like Azurite's: the emulator is local, the key is not a secret."""


@dataclass(frozen=True)
class Settings:
    data: Path
    account: str = DEFAULT_ACCOUNT
    key: str = DEFAULT_KEY
    url: str = "http://127.0.0.1:8000"
    autoscale_nodes: int | None = None
    identities: tuple[str, ...] = field(default_factory=tuple)
    storage: str | None = None
    request_log: Path | None = None


def create_app(settings: Settings) -> Starlette:
    store = Store(settings.data / "batch.sqlite")
    state = BatchState(
        store, lambda: datetime.now(UTC), settings.url, autoscale_nodes=settings.autoscale_nodes
    )
    orphans = state.recover()
    executor = Executor()
    executor.kill_orphans(orphans)
    storage = Storage(settings.storage, settings.identities)
    scheduler = Scheduler(state, executor, storage, settings.data, settings.account)
    request_log = open(settings.request_log, "a") if settings.request_log else None  # noqa: SIM115
    api = Api(state, SharedKeyVerifier(settings.account, settings.key), settings.data, request_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop().create_task(scheduler.run_forever())
        try:
            yield
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await scheduler.stop()
            store.close()
            if request_log is not None:
                request_log.close()

    app = Starlette(routes=api.routes(), lifespan=lifespan)
    app.state.batch = state
    return app
