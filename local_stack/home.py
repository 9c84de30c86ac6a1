"""The local stack's home: its directory, what it records there (each server's pid and
port, the setting the servers run with), and stopping its servers.

The standard library only (with ``servers`` and ``contract.local``): ``make clean``
stops every stack under ``.local`` with any ``python3``, with the virtual environment it
is about to delete or without one (``python -m local_stack down --under .local``).

The setting is what ``up`` was last asked for: faults (``faults.json``, gone once the
servers stop), the account's quotas (``quotas.json``) and autoscale (``autoscale.json``);
the last two stay after ``down``, as the pool was created under them.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_stack import servers

PROXY = "fault-proxy"
SERVERS = ("emulator", PROXY, "azurite")
"""The stack's servers, in the order they stop (Azurite waits for open connections)."""
AUTOSCALE_INTERVAL = "5s"
"""The local evaluation interval standing for the pool's 5 minutes with ``--autoscale``."""
_COMMANDS = {"emulator": b"emulator", PROXY: b"fault_proxy", "azurite": b"azurite"}
"""What each server's command line holds: a pid file naming another process is stale."""
_DATA = frozenset({"azurite", "emulator", "logs"})
"""A stack's own folders, where no other stack lives."""


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


def running(paths: Paths, name: str) -> int | None:
    """The port of a server that is up, per its pid file and ports.json; else None."""
    pid = _pid(paths, name)
    port = stored_port(paths, name)
    if pid is None or port is None:
        return None
    return port if servers.listening(port) else None


def _pid(paths: Paths, name: str) -> int | None:
    """The process the pid file names, if it is alive and is that server."""
    try:
        pid = int(paths.pid(name).read_text())
    except (OSError, ValueError):
        return None
    return pid if servers.alive(pid) and _is_server(pid, name) else None


def _is_server(pid: int, name: str) -> bool:
    """Whether process ``pid`` runs the server ``name`` (a pid file outlives its server,
    and the system may give its number to another process). Where /proc is not, trusted."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc at all: trusted
    except OSError:
        return True
    return _COMMANDS.get(name, name.encode()) in command


def serving(azurite: int | None, emulator: int | None, proxy: int | None, faults: bool) -> bool:
    """Whether a stack answers: Azurite and the emulator up, and the fault proxy too when
    the stack runs with faults (its storage endpoint is the proxy's)."""
    return azurite is not None and emulator is not None and (proxy is not None or not faults)


def stored_port(paths: Paths, name: str) -> int | None:
    try:
        return int(json.loads(paths.ports.read_text())[name])
    except (OSError, ValueError, KeyError, TypeError):
        return None


PORT_WAIT = 10.0
"""How long a server restarted after a crash waits for its port before it moves: what
held it (the dead server's connections, closing) lets go within seconds."""


def previous_port(paths: Paths, name: str, wait: float = PORT_WAIT) -> int | None:
    """The port a server had before, once it is free (waiting up to ``wait`` seconds):
    stored URLs (a running job's outputs, its SAS URLs) stay valid across restarts."""
    port = stored_port(paths, name)
    deadline = time.monotonic() + wait
    while port is not None and free(port) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return free(port)


def free(port: int | None) -> int | None:
    """``port``, if a server can listen on it now; else None."""
    return port if port is not None and servers.bindable(port) else None


def remember(paths: Paths, name: str, server: servers.Server) -> None:
    paths.pid(name).write_text(f"{server.process.pid}\n")
    remember_port(paths, name, server.port)


def remember_port(paths: Paths, name: str, port: int) -> None:
    ports = {}
    with contextlib.suppress(OSError, ValueError):
        ports = json.loads(paths.ports.read_text())
    ports[name] = port
    write_json(paths.ports, ports)


def stop(paths: Paths, name: str) -> bool:
    """Stop a server by its pid file; whether it was running."""
    pid = _pid(paths, name)
    if pid is not None:
        servers.stop_group(pid, closed=servers.closed_in_log(name, paths.log(name)))
    paths.pid(name).unlink(missing_ok=True)
    return pid is not None


def write_json(path: Path, document: Any) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def down(paths: Paths | None = None) -> list[str]:
    """Stop the servers; returns the names of those that were running. The next ``up``
    starts them without faults unless it is given some."""
    paths = paths or default_paths()
    stopped = [name for name in SERVERS if stop(paths, name)]
    paths.faults.unlink(missing_ok=True)
    return stopped


def stacks_under(root: Path, depth: int = 3) -> Iterator[Paths]:
    """The local stacks in ``root`` and the folders below it (``depth`` levels), found by
    the files a stack keeps: ``.local`` itself, ``.local/test-stack``, a bench's."""
    if not root.is_dir() or root.is_symlink():
        return
    paths = Paths(root)
    if paths.ports.exists() or any(paths.pid(name).exists() for name in SERVERS):
        yield paths
    if depth <= 0:
        return
    with contextlib.suppress(OSError):
        for child in sorted(root.iterdir()):
            if child.name not in _DATA:
                yield from stacks_under(child, depth - 1)


def down_under(root: Path) -> dict[Path, list[str]]:
    """Stop every local stack under ``root``: each stack's folder, with the servers that
    were running there."""
    return {paths.local: down(paths) for paths in stacks_under(root)}


# --- the setting ----------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """What the stack runs with: faults (None: off), the account's quotas (None:
    unlimited) and the autoscale interval (None: the pool keeps fixed nodes)."""

    faults: servers.Faults | None = None
    core_quota: int | None = None
    pool_quota: int | None = None
    autoscale: str | None = None

    @property
    def quotas(self) -> dict[str, int]:
        """As quotas.json holds them: only those that are set."""
        named = {"core": self.core_quota, "pool": self.pool_quota}
        return {name: value for name, value in named.items() if value is not None}

    def described(self) -> dict[str, str]:
        """Each part, in words (as ``changes`` and ``local status`` show it)."""
        return {
            "faults": describe_faults(self.faults) if self.faults else "off",
            "core quota": _limit(self.core_quota),
            "pool quota": _limit(self.pool_quota),
            "autoscale": f"on (every {self.autoscale})" if self.autoscale else "off",
        }

    def changes(self, new: Setting) -> list[str]:
        """What differs in ``new``, a phrase each: ``core quota from 0 to unlimited``."""
        old, wanted = self.described(), new.described()
        return [
            f"{part} from {old[part]} to {wanted[part]}"
            for part in old
            if old[part] != wanted[part]
        ]


def _limit(quota: int | None) -> str:
    return "unlimited" if quota is None else str(quota)


def describe_faults(faults: servers.Faults, log: bool = False) -> str:
    """``0.1 of requests (all kinds), seed 1``, and where they are logged if ``log``."""
    kinds = ",".join(faults.kinds) if faults.kinds else "all kinds"
    said = f"{faults.rate:g} of requests ({kinds}), seed {faults.seed}"
    return said + (f", logged to {faults.log}" if log else "")


def applied(paths: Paths) -> Setting:
    """The setting ``up`` last applied, per the files it keeps."""
    return Setting(applied_faults(paths), *_applied_quotas(paths), applied_autoscale(paths))


def applied_faults(paths: Paths) -> servers.Faults | None:
    """The fault setting the running servers were started with (faults.json), if any."""
    try:
        document = json.loads(paths.faults.read_text())
        kinds = tuple(str(kind) for kind in document.get("kinds", ()))
        return servers.Faults(
            float(document["rate"]), int(document["seed"]), paths.fault_log, kinds
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _applied_quotas(paths: Paths) -> tuple[int | None, int | None]:
    """The core and pool quotas the emulator was last started with (quotas.json)."""
    try:
        document = json.loads(paths.quotas.read_text())
        found = {name: int(value) for name, value in document.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return None, None
    return found.get("core"), found.get("pool")


def applied_autoscale(paths: Paths) -> str | None:
    """The local autoscale interval the emulator was last started with, if any."""
    try:
        return str(json.loads(paths.autoscale.read_text())["interval"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record(paths: Paths, setting: Setting) -> None:
    """Keep ``setting`` as the one the servers run with (a file each part, none for off)."""
    documents: list[tuple[Path, dict[str, Any] | None]] = [
        (paths.faults, _faults_document(setting.faults)),
        (paths.quotas, setting.quotas or None),
        (paths.autoscale, {"interval": setting.autoscale} if setting.autoscale else None),
    ]
    for path, document in documents:
        if document is None:
            path.unlink(missing_ok=True)
        else:
            write_json(path, document)


def _faults_document(faults: servers.Faults | None) -> dict[str, Any] | None:
    if faults is None:
        return None
    return {"rate": faults.rate, "seed": faults.seed, "kinds": list(faults.kinds)}
