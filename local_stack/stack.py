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
                              (kept by down: the pool was created for it)
    .local/logs/faults.log    one line per fault injected, from both halves

``up`` is idempotent: servers that already run are kept, a stale pid file is ignored.

With faults (``up(faults=RATE)``), the emulator fails that fraction of Batch requests
itself and the fault proxy fails that fraction of storage requests. The stack's storage
port (``storage`` in ports.json, the one in the outputs' blob endpoint and so in tasks'
resource-file URLs) never changes: with faults the proxy listens on it and Azurite on a
port behind it, without them Azurite listens on it. Turning faults on or off restarts
what must be restarted; the emulator's state and Azurite's blobs are on disk.

With quotas (``up(core_quota=N, pool_quota=N)``), the emulator runs with the account's
quotas (see ``python -m emulator --help``); changing them restarts it. Nodes a pool
already has stay: a lower core quota limits the next allocation, as the service's does.
When the core quota leaves the pool short of its target, ``up`` says so, with the pool's
resize error, and returns once the nodes it has are ready (at once if it has none): the
stack is up, and its jobs wait for nodes, as they would on Azure.

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
import json
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from contract import local as local_keys
from contract import spec as contract_spec
from contract.outputs import ContainerNames, LocalKeys, StackOutputs
from contract.rest import pool_body
from local_stack import servers

PROXY = "fault-proxy"
AUTOSCALE_INTERVAL = "5s"
"""The local evaluation interval standing for the pool's 5 minutes with ``--autoscale``."""
_ANY_METHOD = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


class LocalStackError(RuntimeError):
    """The local stack could not be started or provisioned."""


@dataclass(frozen=True)
class Paths:
    local: Path

    @property
    def outputs(self) -> Path:
        return self.local / "outputs.json"

    @property
    def ports(self) -> Path:
        return self.local / "ports.json"

    @property
    def faults(self) -> Path:
        return self.local / "faults.json"

    @property
    def quotas(self) -> Path:
        return self.local / "quotas.json"

    @property
    def autoscale(self) -> Path:
        return self.local / "autoscale.json"

    @property
    def fault_log(self) -> Path:
        return self.log("faults")

    def pid(self, name: str) -> Path:
        return self.local / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.local / "logs" / f"{name}.log"


def default_paths() -> Paths:
    """``.local/`` in the project, or the directory RUNNER_LOCAL_DIR names."""
    override = os.environ.get("RUNNER_LOCAL_DIR")
    return Paths(Path(override).resolve() if override else servers.ROOT / ".local")


# --- process bookkeeping --------------------------------------------------------------


def _running(paths: Paths, name: str) -> int | None:
    """The port of a server that is up, per its pid file and ports.json; else None."""
    try:
        pid = int(paths.pid(name).read_text())
        port = int(json.loads(paths.ports.read_text())[name])
    except (OSError, ValueError, KeyError):
        return None
    return port if servers.alive(pid) and servers.listening(port) else None


def _stored_port(paths: Paths, name: str) -> int | None:
    try:
        return int(json.loads(paths.ports.read_text())[name])
    except (OSError, ValueError, KeyError):
        return None


def _previous_port(paths: Paths, name: str) -> int | None:
    """The port a server had before, if it is free: stored URLs stay valid across restarts."""
    return _free(_stored_port(paths, name))


def _free(port: int | None) -> int | None:
    """``port``, if a server can listen on it now; else None."""
    if port is None:
        return None
    with socket.socket() as probe:
        # As servers bind: a port in TIME_WAIT after `down` is free to take again.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def _remember(paths: Paths, name: str, server: servers.Server) -> None:
    paths.pid(name).write_text(f"{server.process.pid}\n")
    _remember_port(paths, name, server.port)


def _remember_port(paths: Paths, name: str, port: int) -> None:
    ports = {}
    with contextlib.suppress(OSError, ValueError):
        ports = json.loads(paths.ports.read_text())
    ports[name] = port
    _write_json(paths.ports, ports)


def _stop(paths: Paths, name: str) -> bool:
    """Stop a server by its pid file; whether it was running."""
    try:
        pid = int(paths.pid(name).read_text())
    except (OSError, ValueError):
        return False
    running = servers.alive(pid)
    if running:
        servers.stop_group(pid, closed=servers.closed_in_log(name, paths.log(name)))
    paths.pid(name).unlink(missing_ok=True)
    return running


def _applied_faults(paths: Paths) -> servers.Faults | None:
    """The fault setting the running servers were started with (faults.json), if any."""
    try:
        document = json.loads(paths.faults.read_text())
        kinds = tuple(str(kind) for kind in document.get("kinds", ()))
        return servers.Faults(
            float(document["rate"]), int(document["seed"]), paths.fault_log, kinds
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _wanted_faults(
    paths: Paths, rate: float, seed: int | None, kinds: Sequence[str] = ()
) -> servers.Faults | None:
    """The setting ``up`` was asked for: none at rate 0. Without a seed, the running one's
    if the rate is the same (nothing restarts), else a new one."""
    if not rate:
        return None
    if seed is None:
        applied = _applied_faults(paths)
        same = applied is not None and (applied.rate, applied.kinds) == (rate, tuple(kinds))
        seed = applied.seed if applied and same else random.SystemRandom().randrange(2**31)
    return servers.Faults(rate, seed, paths.fault_log, tuple(kinds))


def _applied_quotas(paths: Paths) -> dict[str, int]:
    """The quotas the running emulator was started with (quotas.json): {} for none."""
    try:
        document = json.loads(paths.quotas.read_text())
        return {name: int(value) for name, value in document.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _applied_autoscale(paths: Paths) -> str | None:
    """The local autoscale interval the running emulator was started with, if any."""
    try:
        return str(json.loads(paths.autoscale.read_text())["interval"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_json(path: Path, document: Any) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


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
    wanted = _wanted_faults(paths, faults, fault_seed, fault_kinds)
    changed = wanted != _applied_faults(paths)
    quotas = {
        name: value
        for name, value in (("core", core_quota), ("pool", pool_quota))
        if value is not None
    }
    # Stopped first: an Azurite that moves waits for the emulator's connections to close.
    if changed and _stop(paths, "emulator"):
        progress("stopped the Batch emulator, to start it " + ("with" if wanted else "without"))
    elif quotas != _applied_quotas(paths) and _stop(paths, "emulator"):
        progress("stopped the Batch emulator, to start it with the quotas asked for")
    interval = AUTOSCALE_INTERVAL if autoscale else None
    rescaled = interval != _applied_autoscale(paths)
    if rescaled and _stop(paths, "emulator"):
        progress(
            "stopped the Batch emulator, to start it with autoscale "
            + ("on" if autoscale else "off")
        )

    storage_port, azurite_port = _storage(paths, wanted, changed, progress, log_requests)
    # The emulator's nodes reach storage at the stack's storage port: through the
    # proxy, with its faults, when faults are on.
    connection = servers.azurite_connection_string(storage_port)

    emulator_port = _running(paths, "emulator")
    if emulator_port is None:
        progress("starting the Batch emulator")
        server = servers.start_emulator(
            paths.local / "emulator",
            paths.log("emulator"),
            port=_previous_port(paths, "emulator"),
            identities=(local_keys.POOL_IDENTITY,),
            storage=connection,
            request_log=paths.local / "logs" / "requests.log" if log_requests else None,
            faults=wanted,
            core_quota=core_quota,
            pool_quota=pool_quota,
            autoscale_interval=interval,
        )
        _remember(paths, "emulator", server)
        emulator_port = server.port
    batch_url = f"http://127.0.0.1:{emulator_port}"
    if wanted:
        setting = {"rate": wanted.rate, "seed": wanted.seed, "kinds": list(wanted.kinds)}
        _write_json(paths.faults, setting)
    else:
        paths.faults.unlink(missing_ok=True)
    if quotas:
        _write_json(paths.quotas, quotas)
    else:
        paths.quotas.unlink(missing_ok=True)
    if interval:
        _write_json(paths.autoscale, {"interval": interval})
    else:
        paths.autoscale.unlink(missing_ok=True)

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
        if rescaled:  # the pool's nodes are the other mode's: it starts again in this one
            with contextlib.suppress(ResourceNotFoundError):
                batch.begin_delete_pool(spec.pool.id, polling_interval=1).result()
                progress(
                    f"deleted pool {spec.pool.id}, to create it with autoscale "
                    + ("on" if autoscale else "off")
                )
        with contextlib.suppress(ResourceExistsError):
            # A create whose answer a fault dropped is made again: PoolExists, if it was.
            batch.create_pool(pool_body(spec), retry_on_methods=_ANY_METHOD)  # type: ignore[arg-type]
            progress(f"created pool {spec.pool.id}")
        _wait_for_nodes(batch, spec.pool.id, timeout, progress, scaling=autoscale)

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
    _write_json(paths.outputs, outputs.to_dict())
    return outputs


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
    front = _stored_port(paths, "storage") or _stored_port(paths, "azurite")
    azurite_port = _running(paths, "azurite")
    proxy_port = _running(paths, PROXY)
    behind = wanted is not None  # where Azurite must be: behind the proxy, or in front
    move = azurite_port is not None and front is not None and (azurite_port == front) == behind
    if proxy_port is not None and (not behind or changed or move or azurite_port is None):
        progress("stopping the fault proxy")
        _stop(paths, PROXY)  # before Azurite, which would wait for its connections
        proxy_port = None
    if move:
        progress("stopping Azurite, to move it " + ("behind the proxy" if behind else "in front"))
        _stop(paths, "azurite")
        azurite_port = None
    if azurite_port is None:
        progress("starting Azurite")
        if behind:  # on the port it had behind the proxy, if it had one
            previous = _stored_port(paths, "azurite")
            port = _free(previous) if previous != front else None
        else:
            port = _free(front)
        server = servers.start_azurite(
            paths.local / "azurite", paths.log("azurite"), port=port, access_log=log_requests
        )
        _remember(paths, "azurite", server)
        azurite_port = server.port
    if wanted is None:
        _remember_port(paths, "storage", azurite_port)
        return azurite_port, azurite_port
    if proxy_port is None:
        progress("starting the fault proxy")
        server = servers.start_fault_proxy(
            azurite_port, wanted.for_storage(), paths.log(PROXY), _free(front)
        )
        _remember(paths, PROXY, server)
        proxy_port = server.port
    _remember_port(paths, "storage", proxy_port)
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


def down(paths: Paths | None = None) -> list[str]:
    """Stop the servers; returns the names of those that were running. The next ``up``
    starts them without faults unless it is given some."""
    paths = paths or default_paths()
    stopped = [name for name in ("emulator", PROXY, "azurite") if _stop(paths, name)]
    paths.faults.unlink(missing_ok=True)
    paths.quotas.unlink(missing_ok=True)
    return stopped


@dataclass(frozen=True)
class Status:
    azurite: int | None
    emulator: int | None
    nodes: dict[str, str]
    fault_proxy: int | None = None
    faults: dict[str, Any] | None = None  # rate, seed and log, when faults are on

    @property
    def running(self) -> bool:
        up = self.azurite is not None and self.emulator is not None
        return up and (self.faults is None or self.fault_proxy is not None)


def status(paths: Paths | None = None) -> Status:
    paths = paths or default_paths()
    azurite_port = _running(paths, "azurite")
    emulator_port = _running(paths, "emulator")
    nodes: dict[str, str] = {}
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
    proxy_port = _running(paths, PROXY)
    return Status(azurite_port, emulator_port, nodes, proxy_port, fault_setting(paths))


def fault_setting(paths: Paths | None = None) -> dict[str, Any] | None:
    """The faults the stack runs with (rate, seed, kinds and log), or None when off."""
    applied = _applied_faults(paths or default_paths())
    if applied is None:
        return None
    kinds = list(applied.kinds) or None  # None: each server's default kinds
    return {"rate": applied.rate, "seed": applied.seed, "kinds": kinds, "log": str(applied.log)}
