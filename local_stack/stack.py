"""The local stack: Azurite and the Batch emulator, provisioned like the Azure stack.

Everything lives under ``.local/`` in the project (or where RUNNER_LOCAL_DIR says):

    .local/azurite/           Azurite's blobs
    .local/emulator/          the emulator's state and node directories
    .local/logs/*.log         each server's log
    .local/*.pid              each server's process id, with its port in .local/ports.json
    .local/outputs.json       the stack outputs (the same keys as the Pulumi stack's)

``up`` is idempotent: servers that already run are kept, a stale pid file is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from contract import local as local_keys
from contract import spec as contract_spec
from contract.outputs import ContainerNames, LocalKeys, StackOutputs
from contract.rest import pool_body
from local_stack import servers


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


def _previous_port(paths: Paths, name: str) -> int | None:
    """The port a server had before, if it is free: stored URLs stay valid across restarts."""
    try:
        port = int(json.loads(paths.ports.read_text())[name])
    except (OSError, ValueError, KeyError):
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
    ports = {}
    with contextlib.suppress(OSError, ValueError):
        ports = json.loads(paths.ports.read_text())
    ports[name] = server.port
    _write_json(paths.ports, ports)


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
) -> StackOutputs:
    """Start what is not running, provision the containers and the pool, write outputs."""
    paths = paths or default_paths()
    spec = spec or contract_spec.default_spec()
    paths.local.mkdir(parents=True, exist_ok=True)

    azurite_port = _running(paths, "azurite")
    if azurite_port is None:
        progress("starting Azurite")
        server = servers.start_azurite(
            paths.local / "azurite", paths.log("azurite"), port=_previous_port(paths, "azurite")
        )
        _remember(paths, "azurite", server)
        azurite_port = server.port
    connection = servers.azurite_connection_string(azurite_port)

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
        )
        _remember(paths, "emulator", server)
        emulator_port = server.port
    batch_url = f"http://127.0.0.1:{emulator_port}"

    blobs = BlobServiceClient.from_connection_string(connection)
    for name in (spec.containers.application, spec.containers.input, spec.containers.output):
        with contextlib.suppress(ResourceExistsError):
            blobs.create_container(name)

    batch = BatchClient(
        batch_url, AzureNamedKeyCredential(local_keys.BATCH_ACCOUNT, local_keys.BATCH_KEY)
    )
    with contextlib.suppress(ResourceExistsError):
        batch.create_pool(pool_body(spec))  # type: ignore[arg-type]
        progress(f"created pool {spec.pool.id}")
    _wait_for_nodes(batch, spec.pool.id, timeout)

    outputs = StackOutputs(
        location="local",
        resourceGroupName="local",
        storageAccountName=local_keys.STORAGE_ACCOUNT,
        blobEndpoint=f"http://127.0.0.1:{azurite_port}/{local_keys.STORAGE_ACCOUNT}",
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


def _wait_for_nodes(batch: BatchClient, pool_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = [node.state for node in batch.list_nodes(pool_id)]
        if "starttaskfailed" in states:
            raise LocalStackError(
                f"the start task failed on a node of pool {pool_id}: "
                "see its startup/stderr.txt under .local/emulator/nodes/"
            )
        if states and all(state in ("idle", "running") for state in states):
            return
        if time.monotonic() > deadline:
            raise LocalStackError(f"the nodes of pool {pool_id} were not ready in {timeout:.0f}s")
        time.sleep(0.1)


def down(paths: Paths | None = None) -> list[str]:
    """Stop both servers; returns the names of those that were running."""
    paths = paths or default_paths()
    stopped = []
    for name in ("emulator", "azurite"):
        try:
            pid = int(paths.pid(name).read_text())
        except (OSError, ValueError):
            continue
        if servers.alive(pid):
            servers.stop_group(pid)
            stopped.append(name)
        paths.pid(name).unlink(missing_ok=True)
    return stopped


@dataclass(frozen=True)
class Status:
    azurite: int | None
    emulator: int | None
    nodes: dict[str, str]


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
    return Status(azurite_port, emulator_port, nodes)
