"""Start, probe and stop the local stack's servers: the Batch emulator, Azurite, and
the fault proxy that goes in front of Azurite when faults are on.

Each binds 127.0.0.1 on a free port, in a process group of its own. ``listening``
is the one port probe and ``stop_group`` the one way to stop a server, whether this
process started it or a pid file names it: SIGTERM to the whole group, then SIGKILL
once it has said it closed, or after a grace period. Azurite flushes its data and says
so in its log on SIGTERM, then lingers for seconds: ``closed_in_log`` sees the line.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from contract import local as local_keys

ROOT = Path(__file__).resolve().parent.parent


class ServiceError(RuntimeError):
    """A server did not start, with the end of its log."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def bindable(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (as servers bind: a port in
    TIME_WAIT after a server stopped is free to take again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def alive(pid: int) -> bool:
    """Whether the process exists and has not exited (a child of ours that exited is
    reaped first; another's, a zombie until its parent reaps it, has exited)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited, every thread of it, and waits for its parent to reap it
    (Linux; else False). A killed server's main thread can be a zombie while its other
    threads still close its sockets: until they have, its port is not free."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"] and threads <= 1


CLOSED_LINES = {"azurite": b"Azurite Blob service successfully closed"}
"""What a server writes to its log once it has closed and saved its data on SIGTERM."""


def closed_in_log(name: str, log: Path) -> Callable[[], bool]:
    """Whether ``name`` has logged its closing line since this call (never, for a server
    that has none): what ``stop_group`` waits for instead of the process's exit."""
    line = CLOSED_LINES.get(name)
    if line is None:
        return lambda: False
    try:
        offset = log.stat().st_size
    except OSError:
        offset = 0

    def closed() -> bool:
        with contextlib.suppress(OSError), open(log, "rb") as text:
            text.seek(offset)
            return line in text.read()
        return False

    return closed


def stop_group(pid: int, grace: float = 5, closed: Callable[[], bool] = lambda: False) -> None:
    """SIGTERM the process group ``pid`` leads, then SIGKILL what is left once ``closed()``
    holds or after ``grace``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid) and not closed():
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # stragglers in the group, if any
    alive(pid)  # reap it, if it was our child


LISTENING_PORTS = (20000, 32768)
"""Where a server's port is chosen: below Linux's ephemeral range (ip_local_port_range,
32768-60999 by default), which the system hands out as the source ports of outgoing
connections. A port from that range, left for a moment by a server restarted on it, can
be taken by any connection's source port meanwhile, and the server would have to move,
leaving every URL that names it (a job's outputs, its SAS URLs) pointing nowhere."""


def free_port() -> int:
    """A free loopback port for a server, outside the ephemeral range where it can."""
    low, high = LISTENING_PORTS
    try:
        ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        high = min(high, int(ephemeral[0]))
    except (OSError, ValueError, IndexError):
        pass  # not Linux: below 32768 all the same
    for port in random.sample(range(low, high), 50) if high - low > 50 else ():
        if bindable(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # all taken: any
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(
    name: str,
    command: list[str],
    port: int,
    log: Path,
    timeout: float,
    environment: dict[str, str] | None = None,
) -> Server:
    """Start a server in its own process group; secrets go in its environment, not argv."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=environment,
            start_new_session=True,  # its own process group, so stop() reaches its children
        )
    server = Server(name, process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{name} exited with status {process.returncode}: {_tail(log)}")
        if listening(port):
            return server
        time.sleep(0.05)
    stop(server)
    raise ServiceError(f"{name} did not listen on port {port} within {timeout:.0f}s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-5:]) or "(empty log)"


STORAGE_KINDS = ("500", "503", "reset", "cut")


@dataclass(frozen=True)
class Faults:
    """The fraction of requests that fail, its seed, and the log of the faults: the same
    for the emulator and the fault proxy (``python -m emulator --help`` says more)."""

    rate: float
    seed: int
    log: Path
    kinds: tuple[str, ...] = ()  # default: each server's own

    def for_storage(self) -> Faults:
        """The faults for the proxy in front of Azurite: the kinds Azure Storage answers
        with. It throttles with 503, never 429 (which its SDK does not retry), and
        ``partial`` is Batch's. Chosen kinds of which none applies leave storage alone."""
        if not self.kinds:
            return self  # the proxy's own default: 500, 503, reset and cut
        kinds = tuple(kind for kind in self.kinds if kind in STORAGE_KINDS)
        return replace(self, rate=self.rate if kinds else 0.0, kinds=kinds or STORAGE_KINDS)

    def arguments(self) -> list[str]:
        arguments = ["--faults", f"{self.rate:g}", "--fault-seed", str(self.seed)]
        arguments += ["--fault-log", str(self.log)]
        return arguments + (["--fault-kinds", ",".join(self.kinds)] if self.kinds else [])


def start_emulator(
    data: Path,
    log: Path,
    port: int | None = None,
    identities: tuple[str, ...] = (),
    storage: str | None = None,
    timeout: float = 20,
    request_log: Path | None = None,
    faults: Faults | None = None,
    core_quota: int | None = None,
    pool_quota: int | None = None,
    autoscale_interval: str | None = None,
) -> Server:
    """The emulator; the quotas are the account's (None: unlimited, see its --help); with
    ``autoscale_interval`` (``5s``), autoscale pools follow their formula."""
    port = port or free_port()
    command = [sys.executable, "-m", "emulator", "--port", str(port), "--data", str(data)]
    command += ["--account", local_keys.BATCH_ACCOUNT]
    if request_log:
        command += ["--request-log", str(request_log)]
    if faults:
        command += faults.arguments()
    if core_quota is not None:
        command += ["--core-quota", str(core_quota)]
    if pool_quota is not None:
        command += ["--pool-quota", str(pool_quota)]
    if autoscale_interval is not None:
        command += ["--autoscale-interval", autoscale_interval]
    for identity in identities:
        command += ["--identity", identity]
    environment = {
        **os.environ,
        "PATH": nodes_path(),
        "EMULATOR_KEY": local_keys.BATCH_KEY,
        **({"EMULATOR_STORAGE": storage} if storage else {}),
    }
    return _start("emulator", command, port, log, timeout, environment)


def nodes_path() -> str:
    """PATH for the emulator's nodes: this one, behind the folder of the interpreter that
    ``python3`` resolves to. A node's python3 is the interpreter itself; a version
    manager's shim (pyenv's costs 80 ms a start) would slow every process a node starts."""
    path = os.environ.get("PATH", "")
    found = shutil.which("python3", path=path)
    if found is None:
        return path
    try:
        real = subprocess.run(
            [found, "-c", "import os, sys; print(os.path.realpath(sys.executable))"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return path
    return os.pathsep.join([str(Path(real).parent), path]) if real else path


def start_azurite(
    data: Path,
    log: Path,
    port: int | None = None,
    timeout: float = 30,
    oauth_tls: tuple[Path, Path] | None = None,
    access_log: bool = False,
) -> Server:
    """Azurite's blob service over HTTP with the account key; with ``access_log``, a line
    per request in its log (what the benchmarks count storage requests by).

    With ``oauth_tls`` (a certificate and its key, PEM) it serves HTTPS and also accepts
    Entra ID bearer tokens (Azurite's basic OAuth: issuer, audience and lifetime are
    checked, the signature is not), which the user-delegation SAS path needs.
    """
    port = port or free_port()
    binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise ServiceError(f"Azurite is not installed ({binary} is missing): run 'npm ci'")
    command = [
        str(binary),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(data),
        "--skipApiVersionCheck",  # azure-storage-blob can be newer than Azurite
    ]
    if not access_log:
        command.append("--silent")
    if oauth_tls is not None:
        certificate, key = oauth_tls
        command += ["--oauth", "basic", "--cert", str(certificate), "--key", str(key)]
    return _start("azurite", command, port, log, timeout)


def start_fault_proxy(
    target: int, faults: Faults, log: Path, port: int | None = None, timeout: float = 20
) -> Server:
    """The emulator's fault proxy on ``port``, failing ``faults.rate`` of the requests it
    passes to the server on port ``target`` (Azurite)."""
    port = port or free_port()
    command = [sys.executable, "-m", "emulator.fault_proxy", "--port", str(port)]
    command += ["--target", f"http://127.0.0.1:{target}", *faults.arguments()]
    return _start("fault-proxy", command, port, log, timeout)


def azurite_connection_string(port: int) -> str:
    account, key = local_keys.STORAGE_ACCOUNT, local_keys.STORAGE_KEY
    return (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{account};"
    )


def stop(server: Server, grace: float = 5) -> None:
    """Stop a server this process started (see ``stop_group``)."""
    stop_group(server.process.pid, grace, closed_in_log(server.name, server.log))
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(grace)
