"""The composition root: settings in, a Starlette application out.

``create_app`` builds the store, the state, the executor and the scheduler and hands each
the others it needs through its constructor: the state gets the executor's ``kill`` and
the scheduler's ``wake`` event, the scheduler gets the state, the executor and the
clock. Tests pass their own executor and clock; the scheduler runs in the lifespan.
With a fault rate, the app is wrapped in ``faults.FaultInjector`` (see ``faults``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware

from emulator.auth import SharedKeyVerifier
from emulator.executor import Executor, ProcessExecutor
from emulator.faults import FaultInjector, Faults, batch_answer
from emulator.files import Storage
from emulator.routes import Api
from emulator.scheduler import Scheduler
from emulator.state import BatchState, Clock, Quotas
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
    autoscale_interval: timedelta | None = None  # evaluate formulas and scale (state.autoscale)
    identities: tuple[str, ...] = field(default_factory=tuple)
    storage: str | None = None
    request_log: Path | None = None
    faults: Faults = field(default_factory=Faults)
    quotas: Quotas = field(default_factory=Quotas)  # the account's pool and core quotas


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings, executor: Executor | None = None, clock: Clock | None = None
) -> Starlette:
    """The emulator as an ASGI app; local processes and the system clock unless given."""
    executor = executor or ProcessExecutor()
    clock = clock or utc_now
    store = Store(settings.data / "batch.sqlite")
    wake = asyncio.Event()
    state = BatchState(
        store,
        clock,
        settings.url,
        kill=executor.kill,
        wake=wake.set,
        autoscale_nodes=settings.autoscale_nodes,
        quotas=settings.quotas,
        autoscale_interval=settings.autoscale_interval,
    )
    executor.kill_orphans(state.recover())
    scheduler = Scheduler(
        state.scheduling,
        executor,
        Storage(settings.storage, settings.identities),
        wake,
        clock,
        data=settings.data,
        account_name=settings.account,
        account_url=state.account_url,
        timed=state.timed,
    )
    request_log = open(settings.request_log, "a") if settings.request_log else None  # noqa: SIM115
    verifier = SharedKeyVerifier(settings.account, settings.key)
    api = Api(state, verifier, settings.data, request_log)

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

    middleware = []
    if settings.faults.on:
        answer = batch_answer(state.account_url)
        middleware.append(Middleware(FaultInjector, faults=settings.faults, answer=answer))
    return Starlette(routes=api.routes(), middleware=middleware, lifespan=lifespan)
