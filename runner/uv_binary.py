"""The uv binary that builds a job's environment on its nodes, for the nodes' platform.

A Batch node has python3 and nothing else: no pip, no venv module, no root. uv is one
static binary, published on the package index as a wheel per platform. The local stack's
nodes are this machine, so they get the uv this runner has installed (a dependency of the
runner). An Azure pool's nodes are Linux on the pool's VM size's architecture; when that
is not this machine's platform, the same uv version's wheel for it is fetched once with
pip (from the index pip is configured with) and kept in the user's cache.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from runner.inputs import InputError

_ARM_SIZE = re.compile(r"^standard_[a-z]+\d+[a-z]*p[a-z]*_v\d+$", re.IGNORECASE)
"""Azure's Arm64 VM sizes carry a 'p' among their feature letters: D2ps_v5, E4pds_v6."""
_WHEEL_TAGS = {
    ("linux", "x86_64"): "manylinux_2_17_x86_64",
    ("linux", "aarch64"): "manylinux_2_17_aarch64",
}


class UvError(InputError):
    """No uv for the nodes' platform (exit status 2, as the options that asked for it)."""


@dataclass(frozen=True)
class Platform:
    system: str  # "linux", "darwin", "windows"
    machine: str  # "x86_64", "aarch64"

    def __str__(self) -> str:
        return f"{self.system}-{self.machine}"


def this_machine() -> Platform:
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return Platform({"win32": "windows"}.get(sys.platform, sys.platform), machine)


def of_pool(vm_size: str, node_agent_sku_id: str) -> Platform:
    """The platform of an Azure pool's nodes, from its VM size and node agent."""
    if "windows" in node_agent_sku_id.lower():
        raise UvError(
            "--requirements and --wheels need a Linux pool; "
            f"this one's node agent is {node_agent_sku_id}"
        )
    return Platform("linux", "aarch64" if _ARM_SIZE.match(vm_size) else "x86_64")


def version() -> str:
    return metadata.version("uv")


def local_binary() -> Path:
    from uv import find_uv_bin  # the uv package's own lookup of its binary

    return Path(find_uv_bin())


Download = Callable[[str, str, Path], Path]
"""(uv version, wheel platform tag, folder) -> the downloaded wheel."""


def binary(target: Platform, cache: Path | None = None, download: Download | None = None) -> Path:
    """A uv binary that runs on ``target``: this runner's own when it is this machine,
    else the same version's from its wheel for ``target`` (fetched once, then cached)."""
    if target == this_machine():
        return local_binary()
    tag = _WHEEL_TAGS.get((target.system, target.machine))
    if tag is None:
        raise UvError(f"no uv build is known for nodes on {target}")
    folder = (cache or cache_dir()) / version() / str(target)
    found = folder / "uv"
    if found.is_file():
        return found
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        wheel = (download or pip_download)(version(), tag, Path(scratch))
        _extract(wheel, found)
    return found


def compressed(target: Platform, cache: Path | None = None) -> tuple[Path, str]:
    """uv for ``target``, gzipped, and the gzip's SHA-256: what nodes download (18 MB
    instead of 38: a preparation task downloads it whether or not it builds anything).
    Made once per uv version and platform, then read from the cache."""
    folder = (cache or cache_dir()) / version() / str(target)
    packed, digest = folder / "uv.gz", folder / "uv.gz.sha256"
    if packed.is_file() and digest.is_file():
        return packed, digest.read_text().strip()
    source = binary(target, cache)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"uv.gz.{os.getpid()}.partial"  # two runners may make it at once
    with (
        open(source, "rb") as raw,
        open(partial, "wb") as file,
        gzip.GzipFile(fileobj=file, mode="wb", compresslevel=6, mtime=0) as out,
    ):
        shutil.copyfileobj(raw, out, 1 << 20)
    partial.replace(packed)
    found = sha256(packed)
    digest.write_text(found + "\n")
    return packed, found


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "azure-batch-runner" / "uv"


def pip_download(uv_version: str, tag: str, folder: Path) -> Path:
    """The uv wheel for ``tag``, from the index pip is configured with."""
    command = [
        sys.executable, "-m", "pip", "download", f"uv=={uv_version}", "--no-deps",
        "--only-binary=:all:", "--platform", tag, "--dest", str(folder), "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob("uv-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise UvError(f"could not fetch uv {uv_version} for {tag} with pip: {last}")
    return wheels[0]


def _extract(wheel: Path, into: Path) -> None:
    """Copy the uv executable out of its wheel (``uv-<v>.data/scripts/uv``)."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.data/scripts/uv", n)]
        if not names:
            raise UvError(f"{wheel.name} holds no uv executable")
        partial = into.with_name(f"{into.name}.{os.getpid()}.partial")
        partial.write_bytes(archive.read(names[0]))
    partial.chmod(0o755)
    partial.replace(into)  # a cached binary is always whole


def sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
