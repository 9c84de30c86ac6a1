"""A job's result blobs fetched into its results folder: only this job's, each input's into
its own folder (``place``), a file already there and complete not fetched again, each
file written whole under a temporary name first. Where they are: ``results_prefix`` and
``logs_prefix`` in the output container, ``destination`` on this machine."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobProperties, ContainerClient

from runner import packing
from runner.inputs import InputError, md5_of, windows
from runner.program import Program, named_input

if TYPE_CHECKING:
    from runner.results import Expected

PARALLEL_DOWNLOADS = 16
TAKEN_NAMES = frozenset({"logs", "report.html", "merged_OUTPUT.txt", "merged_OUTPUT.json"})
"""What the runner itself writes at the top of a results folder (the failed tasks' logs,
the job's report, --merge's result): an input by one of these names gets its results in
a folder named after its task id instead, so neither overwrites the other."""


def destination(job_id: str, out: Path | None = None) -> Path:
    """Where a job's results are downloaded to: ``out``, or ``results/<job-id>/``."""
    return out or Path("results") / job_id


def results_prefix(job_id: str) -> str:
    """Where in the output container a job's results go: ``<job>/results/<task>/...``."""
    return f"{job_id}/results"


def logs_prefix(job_id: str) -> str:
    """Where a job's task logs go: ``<job>/logs/<task>/stdout.txt`` (and stderr.txt).

    Apart from the results, so fetching results never fetches logs, and a result file
    may have any name.
    """
    return f"{job_id}/logs"


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Tally:
    """What a download found: the files it fetched, and those already in place."""

    fetched: int = 0
    present: int = 0  # downloaded before, complete and unchanged: not fetched again

    @property
    def files(self) -> int:
        return self.fetched + self.present


class DownloadError(InputError):
    """The results folder cannot be written (exit status 2, one line): the results stay
    in storage for a ``download`` into a folder that can be."""


InputNames = Callable[[str, str], tuple[str, str] | None]
"""(an input's own task id, a result file's path below its folder) -> (the input's name
on the node, its name as given) when that file is the program's document naming its
input (``Program.document``), to be named as given; else None."""


def input_names(expected: Sequence[Expected], program: Program) -> InputNames:
    """The InputNames of a job's inputs, for its program."""
    by_id = {item.input_id: item for item in expected}

    def named(input_id: str, below: str) -> tuple[str, str] | None:
        item = by_id.get(input_id)
        if item is None:
            return None
        node = item.name if item.key is None else f"{packing.INPUTS_DIR}/{item.key}/{item.name}"
        if node == item.label or program.document(node) != below:
            return None
        return node, item.label

    return named


def download(
    container: ContainerClient,
    job_id: str,
    destination: Path,
    logs: bool = False,
    places: Mapping[str, str] | None = None,
    warn: Callable[[str], None] = _warn,
    named: InputNames | None = None,
    tally: Tally | None = None,
) -> int:
    """Download this job's results from the output container, each input's into
    ``DIR/<its path>/`` (``places``: task id to the input's relative path; a task it does
    not name gets ``DIR/<task id>/``), and if asked the task logs into ``DIR/logs/<task>/``;
    returns how many files are in place (a file downloaded before, complete and
    unchanged, is not fetched again: see ``fetch_all``; ``tally`` tells them apart).
    A blob whose name would place it outside ``destination`` (``..`` in it: a task may
    name its outputs as it likes) is skipped, with a warning through ``warn``; the others
    are fetched. A document in which the program names its input (``named``) names it as
    the user gave it. A folder that cannot be written raises DownloadError."""
    prefixes = [results_prefix(job_id)] + ([logs_prefix(job_id)] if logs else [])
    remove_partial(destination)
    where = places or {}

    def found() -> Iterator[Wanted]:
        for prefix in prefixes:
            for blob in container.list_blobs(name_starts_with=f"{prefix}/"):
                input_id, below, local = _parts(blob.name, job_id, where)
                if escapes(local):
                    warn(
                        f"warning: skipped the blob {blob.name!r}: "
                        f"it would be written outside {destination}"
                    )
                    continue
                renamed = named(input_id, below) if named and input_id is not None else None
                yield Wanted(blob.name, destination / local, blob, renamed)

    return sum(1 for _ in fetch_all(container, found(), tally=tally))


_PARTIAL = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.part")
"""A download in progress: ``.<name>.<pid of its runner>-<random>.part``."""


def remove_partial(destination: Path) -> int:
    """Remove the partial downloads a runner killed mid-download left (kill -9 leaves
    them; anything milder removes its own). Another runner's download in progress is
    kept: its process is alive. Returns how many were removed."""
    removed = 0
    for folder, _, names in os.walk(destination):
        for name in names:
            match = _PARTIAL.fullmatch(name)
            if match and not _alive(int(match.group(1))):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def escapes(relative: str) -> bool:
    """Whether a relative path may leave the folder it is joined to."""
    return relative.startswith("/") or ".." in relative.split("/")


@dataclass(frozen=True, slots=True)
class Wanted:
    """A blob to have at ``target``: ``listed`` is the blob as a listing gave it (its size,
    MD5 and time, what a file already there is compared with); ``renamed`` (its input's
    name on the node, and as given) for a document naming its input (``Program.document``)."""

    blob: str
    target: Path
    listed: BlobProperties | None = None
    renamed: tuple[str, str] | None = None


def fetch_all(
    container: ContainerClient,
    found: Iterable[Wanted | tuple[str, Path]],
    missing_ok: bool = False,
    tally: Tally | None = None,
) -> Iterator[tuple[str, Path]]:
    """Download blobs in parallel, each to a temporary name renamed when complete, so no
    half-written file is left, and a file in place is a complete one; yields those in place
    after (all, unless ``missing_ok`` skips blobs that do not exist). A blob listed with
    its properties whose file is already there, the same size and content (its MD5 when
    the blob has one, else the time the blob was written, which a download gives the
    file), is not fetched again: downloading a folder twice lists the blobs only. The
    blobs are read from ``found`` a window at a time, as they are listed: a job's 200,000
    result files are never all in memory. ``tally`` counts what was fetched and what was
    in place already. A file that cannot be written raises DownloadError."""

    def fetch(item: Wanted) -> bool | None:
        """True: fetched; None: in place already; False: missing."""
        if item.listed is not None and _in_place(item, item.listed):
            return None
        try:
            return _fetch(container, item)
        except ResourceNotFoundError:
            if missing_ok:
                return False
            raise
        except (ConnectionError, TimeoutError):  # the network's, not the folder's
            raise
        except OSError as error:
            reason = error.strerror or str(error)
            where = error.filename or item.target
            raise DownloadError(f"cannot write {where}: {reason}") from None

    wanted = (item if isinstance(item, Wanted) else Wanted(*item) for item in found)
    with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
        for window in windows(wanted):
            done = list(pool.map(fetch, window))
            for item, outcome in zip(window, done, strict=True):
                if outcome is False:
                    continue
                if tally is not None:
                    if outcome:
                        tally.fetched += 1
                    else:
                        tally.present += 1
                yield item.blob, item.target


def _fetch(container: ContainerClient, item: Wanted) -> bool:
    item.target.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per download, so two runners fetching the same job into the
    # same folder never write one file; the last rename wins with identical content.
    target = item.target
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        with open(temporary, "wb") as file:
            downloader = container.download_blob(item.blob)
            if item.renamed is not None:  # a small document: named as the user gave it
                file.write(named_input(downloader.readall(), *item.renamed))
            else:
                downloader.readinto(file)
        properties = getattr(downloader, "properties", None)
        written = getattr(properties, "last_modified", None)
        if written is not None:  # the blob's time: what tells a file in place from a stale one
            stamp = written.timestamp()
            os.utime(temporary, (stamp, stamp))
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return True


def _in_place(item: Wanted, blob: BlobProperties) -> bool:
    """Whether ``item.target`` holds the blob's content, downloaded before."""
    try:
        status = item.target.stat()
        if not stat.S_ISREG(status.st_mode):
            return False
        settings = blob.content_settings
        md5 = bytes(settings.content_md5 or b"") if settings is not None else b""
        if item.renamed is not None:
            node, label = item.renamed
            content = named_input(item.target.read_bytes(), label, node)  # as the blob holds it
            size, digest = len(content), (_md5(content) if md5 else b"")
        else:
            size = status.st_size
            digest = md5_of(item.target) if md5 and size == blob.size else b""
    except OSError:
        return False
    if size != blob.size:
        return False
    if md5:
        return digest == md5
    written = blob.last_modified
    return written is not None and int(status.st_mtime) == int(written.timestamp())


def _md5(content: bytes) -> bytes:
    return hashlib.md5(content, usedforsecurity=False).digest()


def local_name(name: str, job_id: str, places: Mapping[str, str]) -> str:
    """``<job>/results/<task>/f`` -> ``<input's path>/f`` (``<job>/results/<task>/<key>/f``
    the same for an input packed with others); ``<job>/logs/<task>/f`` ->
    ``logs/<task>/f``. ``places`` maps inputs' own task ids (a packed input's key is its
    own task id) to their paths."""
    return _parts(name, job_id, places)[2]


def _parts(name: str, job_id: str, places: Mapping[str, str]) -> tuple[str | None, str, str]:
    """(the input's own task id, the path below its folder, the path below the results
    folder) of a result blob; of a log, (None, and its path twice)."""
    relative = name[len(job_id) + 1 :]
    if not relative.startswith("results/"):
        return None, relative, relative
    task, _, rest = relative.removeprefix("results/").partition("/")
    key, _, below_key = rest.partition("/")
    if task not in places and key in places:
        return key, below_key, f"{place(key, places)}/{below_key}"
    return task, rest, f"{place(task, places)}/{rest}"


def place(input_id: str, places: Mapping[str, str]) -> str:
    """Where below the results folder an input's results go: its relative path (so the
    results mirror the inputs' tree), or its own task id if that path is unknown, could
    leave the folder or starts with a name in TAKEN_NAMES."""
    relative = places.get(input_id, "")
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts) or parts[0] in TAKEN_NAMES:
        return input_id
    return relative
