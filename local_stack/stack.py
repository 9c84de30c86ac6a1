"""The local stack: Azurite and the Batch emulator, provisioned like the Azure stack.

Everything lives under ``.local/`` in the project (or where RUNNER_LOCAL_DIR says):

    .local/azurite/           Azurite's blobs
    .local/emulator/          the emulator's state and node directories
    .local/logs/*.log         each server's log
    .local/*.pid              each server's process id, with its port in .local/ports.json
    .local/outputs.json       the stack outputs (the same keys as the Pulumi stack's)
    .local/faults.json        the fault setting the servers run with, if any
    .local/quotas.json        the account quotas the emulator runs with, if any
    .local/autoscale.json     the local autoscale interval the emulator runs with, if any
                              (both kept by down: the pool was created under them)
    .local/logs/faults.log    one line per fault injected, from both halves

``up`` is idempotent: servers that already run are kept, a stale pid file is ignored.
It makes the stack run with the options it is given, and an option it is not given is
back to its default (faults off, no quotas, fixed nodes): what that changes in a stack
that ran before, it says in one line first (``changing the local stack: core quota from
0 to unlimited``), then restarts what must be restarted. ``home`` keeps the files.

With faults (``up(faults=RATE)``), the emulator fails that fraction of Batch requests
itself and the fault proxy fails that fraction of storage requests. The stack's storage
port (``storage`` in ports.json, the one in the outputs' blob endpoint and so in tasks'
resource-file URLs) never changes: with faults the proxy listens on it and Azurite on a
port behind it, without them Azurite listens on it. Turning faults on or off restarts
what must be restarted; the emulator's state and Azurite's blobs are on disk.

With quotas (``up(core_quota=N, pool_quota=N)``), the emulator runs with the account's
quotas (see ``python -m emulator --help``); changing them restarts it, and a changed
core quota creates the pool again (its running tasks are lost), so the pool has the nodes
a new one gets under that quota: none under 0, all of them once it is lifted. (On Azure a
lower quota limits only the next allocation, and a higher one needs a resize.) A pool
quota the pool is beyond keeps it, as the service does; one that leaves no room for a
new pool makes ``up`` fail, saying so. When the core quota leaves the pool short of its
target, ``up`` says so, with the pool's resize error, and returns once the nodes it has
are ready (at once if it has none): the stack is up, and its jobs wait for nodes, as they
would on Azure.

With autoscale (``up(autoscale=True)``), the emulator evaluates the pool's formula (the one
``contract.spec`` deploys) every ``AUTOSCALE_INTERVAL`` instead of its 5 minutes, with the
formula's time scaled to match (see ``emulator.state.autoscale``): the pool has no nodes
until a job's tasks are pending and goes back to none an interval or two after they end.
Without it, the pool keeps a fixed local node count, so short jobs start at once.
Switching restarts the emulator and creates the pool again (its running tasks are lost),
and ``up`` does not wait for nodes an autoscale pool does not have.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from contract import local as local_keys
from contract import spec as contract_spec
from contract.outputs import ContainerNames, LocalKeys, StackOutputs
from contract.rest import pool_body
from local_stack import home, servers
from local_stack.home import AUTOSCALE_INTERVAL, PROXY, Paths, default_paths, down

__all__ = [
    "AUTOSCALE_INTERVAL",
    "PROXY",
    "LocalStackError",
    "Paths",
    "Status",
    "default_paths",
    "down",
    "fault_setting",
    "status",
    "up",
]

_ANY_METHOD = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


class LocalStackError(RuntimeError):
    """The local stack could not be started or provisioned."""


def _wanted_faults(
    paths: Paths, rate: float, seed: int | None, kinds: Sequence[str] = ()
) -> servers.Faults | None:
    """The setting ``up`` was asked for: none at rate 0. Without a seed, the running one's
    if the rate is the same (nothing restarts), else a new one."""
    if not rate:
        return None
    if seed is None:
        applied = home.applied_faults(paths)
        same = applied is not None and (applied.rate, applied.kinds) == (rate, tuple(kinds))
        seed = applied.seed if applied and same else random.SystemRandom().randrange(2**31)
    return servers.Faults(rate, seed, paths.fault_log, tuple(kinds))


def _applied_autoscale(paths: Paths) -> str | None:
    """The local autoscale interval the emulator was last started with, if any."""
    return home.applied_autoscale(paths)


# --- the commands ---------------------------------------------------------------------


def up(
    paths: Paths | None = None,
    spec: contract_spec.Spec | None = None,
    progress: Callable[[str], None] = lambda line: None,
    timeout: float = 120,
    log_requests: bool = False,
    faults: float = 0,
    fault_seed: int | None = None,
    fault_kinds: Sequence[str] = (),
    core_quota: int | None = None,
    pool_quota: int | None = None,
    autoscale: bool = False,
) -> StackOutputs:
    """Start what is not running, provision the containers and the pool, write outputs.

    ``faults`` (a fraction) turns fault injection on, with ``fault_seed`` (default:
    random); without it, faults are off, whatever they were. ``core_quota`` and
    ``pool_quota`` are the emulated account's quotas; without them, none. ``autoscale``
    makes the pool follow its formula, evaluated every ``AUTOSCALE_INTERVAL``."""
    paths = paths or default_paths()
    spec = spec or contract_spec.default_spec()
    paths.local.mkdir(parents=True, exist_ok=True)
    before = home.applied(paths)
    wanted = home.Setting(
        _wanted_faults(paths, faults, fault_seed, fault_kinds),
        core_quota,
        pool_quota,
        AUTOSCALE_INTERVAL if autoscale else None,
    )
    changes = before.changes(wanted)
    if changes and paths.outputs.exists():  # a stack that ran before: said in one line
        progress("changing the local stack: " + "; ".join(changes))
    faults_changed = wanted.faults != before.faults
    # Stopped first: an Azurite that moves waits for the emulator's connections to close.
    if wanted != before and home.stop(paths, "emulator"):
        progress("stopped the Batch emulator, to start it " + _restart_reason(before, wanted))

    storage_port, azurite_port = _storage(
        paths, wanted.faults, faults_changed, progress, log_requests
    )
    # The emulator's nodes reach storage at the stack's storage port: through the
    # proxy, with its faults, when faults are on.
    connection = servers.azurite_connection_string(storage_port)

    emulator_port = home.running(paths, "emulator")
    if emulator_port is None:
        progress("starting the Batch emulator")
        had, port = home.stored_port(paths, "emulator"), home.previous_port(paths, "emulator")
        if had is not None and port is None:
            progress(f"the Batch emulator's port {had} is taken: it moves to another")
        server = servers.start_emulator(
            paths.local / "emulator",
            paths.log("emulator"),
            port=port,
            identities=(local_keys.POOL_IDENTITY,),
            storage=connection,
            request_log=paths.local / "logs" / "requests.log" if log_requests else None,
            faults=wanted.faults,
            core_quota=wanted.core_quota,
            pool_quota=wanted.pool_quota,
            autoscale_interval=wanted.autoscale,
        )
        home.remember(paths, "emulator", server)
        emulator_port = server.port
    batch_url = f"http://127.0.0.1:{emulator_port}"
    # The faults the servers run with now; the rest once the pool is made under it (an
    # up that fails before makes the pool again the next time).
    home.record(paths, dataclasses.replace(before, faults=wanted.faults))

    # Provisioning is the stack's own setup, not what faults are for: the containers
    # are made on Azurite directly, and the Batch calls are tried again after a fault.
    # Closed when done: Azurite, stopped, waits for open connections to close.
    with BlobServiceClient.from_connection_string(
        servers.azurite_connection_string(azurite_port)
    ) as blobs:
        for name in (spec.containers.application, spec.containers.input, spec.containers.output):
            with contextlib.suppress(ResourceExistsError):
                blobs.create_container(name)

    with BatchClient(
        batch_url,
        AzureNamedKeyCredential(local_keys.BATCH_ACCOUNT, local_keys.BATCH_KEY),
        retry_total=20,
        retry_backoff_factor=0.1,
        retry_backoff_max=2,
    ) as batch:
        _provision_pool(batch, spec, before, wanted, progress)
        _wait_for_nodes(batch, spec.pool.id, timeout, progress, scaling=autoscale)
    home.record(paths, wanted)

    outputs = StackOutputs(
        location="local",
        resourceGroupName="local",
        storageAccountName=local_keys.STORAGE_ACCOUNT,
        blobEndpoint=f"http://127.0.0.1:{storage_port}/{local_keys.STORAGE_ACCOUNT}",
        containers=ContainerNames(
            spec.containers.application, spec.containers.input, spec.containers.output
        ),
        batchAccountName=local_keys.BATCH_ACCOUNT,
        batchAccountEndpoint=batch_url,
        poolId=spec.pool.id,
        poolIdentityResourceId=local_keys.POOL_IDENTITY,
        local=LocalKeys(
            batchAccountKey=local_keys.BATCH_KEY, storageAccountKey=local_keys.STORAGE_KEY
        ),
    )
    home.write_json(paths.outputs, outputs.to_dict())
    return outputs


def _restart_reason(before: home.Setting, wanted: home.Setting) -> str:
    """Why the emulator restarts: ``with faults``, ``with the quotas asked for``..."""
    if wanted.faults != before.faults:
        return "with faults" if wanted.faults else "without faults"
    if wanted.quotas != before.quotas:
        return "with the quotas asked for"
    return "with autoscale " + ("on" if wanted.autoscale else "off")


def _provision_pool(
    batch: BatchClient,
    spec: contract_spec.Spec,
    before: home.Setting,
    wanted: home.Setting,
    progress: Callable[[str], None],
) -> None:
    """The pool, created if missing, and created again if it was made for another
    autoscale mode or core quota: it has what a new pool gets under ``wanted``."""
    pool_id = spec.pool.id
    reasons = []
    if wanted.autoscale != before.autoscale:  # its nodes are the other mode's
        reasons.append("with autoscale " + ("on" if wanted.autoscale else "off"))
    if wanted.core_quota != before.core_quota:  # its nodes are the other quota's
        reasons.append(
            f"under core quota {wanted.core_quota}"
            if wanted.core_quota is not None
            else "with no core quota"
        )
    elif wanted.core_quota is None and _short_of_cores(batch, pool_id):
        reasons.append("with no core quota")  # made under one no file remembers (an old down)
    if reasons:
        with contextlib.suppress(ResourceNotFoundError):
            batch.begin_delete_pool(pool_id, polling_interval=1).result()
            progress(f"deleted pool {pool_id}, to create it " + " and ".join(reasons))
    try:
        # A create whose answer a fault dropped is made again: PoolExists, if it was.
        batch.create_pool(pool_body(spec), retry_on_methods=_ANY_METHOD)  # type: ignore[arg-type]
    except ResourceExistsError as error:  # 409: PoolExists, or PoolQuotaReached
        if "PoolQuotaReached" in str(error):
            raise LocalStackError(
                f"pool {pool_id} cannot be created: the account's pool quota is "
                f"{wanted.pool_quota} (python -m runner local up without --pool-quota "
                "lifts it)"
            ) from None
    else:
        progress(f"created pool {pool_id}")


def _short_of_cores(batch: BatchClient, pool_id: str) -> bool:
    """Whether the pool is short of nodes for a core quota (its resize errors say so)."""
    try:
        pool = batch.get_pool(pool_id)
    except ResourceNotFoundError:
        return False
    return any("CoreQuota" in (error.code or "") for error in pool.resize_errors or [])


def _storage(
    paths: Paths,
    wanted: servers.Faults | None,
    changed: bool,
    progress: Callable[[str], None],
    log_requests: bool = False,
) -> tuple[int, int]:
    """Azurite, behind the fault proxy if faults are wanted: (the stack's storage port,
    Azurite's port). The storage port is the one it had (Azurite's, before the stack had
    a proxy), so the blob endpoint stays the same with faults on or off."""
    front = home.stored_port(paths, "storage") or home.stored_port(paths, "azurite")
    azurite_port = home.running(paths, "azurite")
    proxy_port = home.running(paths, PROXY)
    behind = wanted is not None  # where Azurite must be: behind the proxy, or in front
    move = azurite_port is not None and front is not None and (azurite_port == front) == behind
    if proxy_port is not None and (not behind or changed or move or azurite_port is None):
        progress("stopping the fault proxy")
        home.stop(paths, PROXY)  # before Azurite, which would wait for its connections
        proxy_port = None
    if move:
        progress("stopping Azurite, to move it " + ("behind the proxy" if behind else "in front"))
        home.stop(paths, "azurite")
        azurite_port = None
    if azurite_port is None:
        progress("starting Azurite")
        if behind:  # on the port it had behind the proxy, if it had one
            previous = home.stored_port(paths, "azurite")
            port = home.free(previous) if previous != front else None
        else:
            port = home.free(front)
        server = servers.start_azurite(
            paths.local / "azurite", paths.log("azurite"), port=port, access_log=log_requests
        )
        home.remember(paths, "azurite", server)
        azurite_port = server.port
    if wanted is None:
        home.remember_port(paths, "storage", azurite_port)
        return azurite_port, azurite_port
    if proxy_port is None:
        progress("starting the fault proxy")
        server = servers.start_fault_proxy(
            azurite_port, wanted.for_storage(), paths.log(PROXY), home.free(front)
        )
        home.remember(paths, PROXY, server)
        proxy_port = server.port
    home.remember_port(paths, "storage", proxy_port)
    return proxy_port, azurite_port


def _wait_for_nodes(
    batch: BatchClient,
    pool_id: str,
    timeout: float,
    progress: Callable[[str], None],
    scaling: bool = False,
) -> None:
    """Until the pool's nodes are ready. A pool the account's core quota left short (its
    resize errors, allocation steady) is ready with the nodes it has, even none: said in
    the progress, so jobs waiting for nodes are no surprise; so is a ``scaling`` one
    (following its formula), whose nodes come with its jobs."""
    deadline = time.monotonic() + timeout
    told = False
    while True:
        pool = batch.get_pool(pool_id)
        states = [node.state for node in batch.list_nodes(pool_id)]
        if "starttaskfailed" in states:
            raise LocalStackError(
                f"the start task failed on a node of pool {pool_id}: "
                "see its startup/stderr.txt under .local/emulator/nodes/"
            )
        short = pool.allocation_state == "steady" and bool(pool.resize_errors)
        if short and not told:
            reasons = "; ".join(f"{e.code}: {e.message}" for e in pool.resize_errors or [])
            progress(
                f"pool {pool_id} has {len(states)} of the nodes it asks for ({reasons}); "
                "its jobs wait for nodes"
            )
            told = True
        if (states or short or scaling) and all(state in ("idle", "running") for state in states):
            return
        if time.monotonic() > deadline:
            raise LocalStackError(f"the nodes of pool {pool_id} were not ready in {timeout:.0f}s")
        time.sleep(0.1)


@dataclass(frozen=True)
class Status:
    azurite: int | None
    emulator: int | None
    nodes: dict[str, str]
    fault_proxy: int | None = None
    faults: dict[str, Any] | None = None  # rate, seed and log, when faults are on
    quotas: dict[str, int | None] = dataclasses.field(
        default_factory=lambda: {"core": None, "pool": None}
    )  # the account's, while the emulator runs (None: unlimited)
    autoscale: str | None = None  # the formula's local interval, while the emulator runs

    @property
    def running(self) -> bool:
        return home.serving(self.azurite, self.emulator, self.fault_proxy, self.faults is not None)


def status(paths: Paths | None = None) -> Status:
    paths = paths or default_paths()
    azurite_port = home.running(paths, "azurite")
    emulator_port = home.running(paths, "emulator")
    nodes: dict[str, str] = {}
    setting = home.Setting()  # what a stopped emulator runs with: nothing
    if emulator_port is not None:
        setting = home.applied(paths)
    if emulator_port is not None and paths.outputs.exists():
        outputs = StackOutputs.read(paths.outputs)
        batch = BatchClient(
            f"http://127.0.0.1:{emulator_port}",
            AzureNamedKeyCredential(local_keys.BATCH_ACCOUNT, local_keys.BATCH_KEY),
        )
        with contextlib.suppress(Exception):
            nodes = {
                node.id: getattr(node.state, "value", str(node.state))
                for node in batch.list_nodes(outputs.poolId)
            }
    proxy_port = home.running(paths, PROXY)
    return Status(
        azurite_port,
        emulator_port,
        nodes,
        proxy_port,
        fault_setting(paths),
        {"core": setting.core_quota, "pool": setting.pool_quota},
        setting.autoscale,
    )


def fault_setting(paths: Paths | None = None) -> dict[str, Any] | None:
    """The faults the stack runs with (rate, seed, kinds and log), or None when off."""
    applied = home.applied_faults(paths or default_paths())
    if applied is None:
        return None
    kinds = list(applied.kinds) or None  # None: each server's default kinds
    return {"rate": applied.rate, "seed": applied.seed, "kinds": kinds, "log": str(applied.log)}
