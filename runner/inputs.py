"""The inputs as users have them, checked before any service is touched.

An argument may be a file or a directory (its regular files, recursively, in sorted
order, filtered by ``--include``/``--exclude`` globs, which match as .gitignore's do:
see ``Filters``); ``--from-file`` adds one path per line, a relative one from the
working directory, as a path on the command line. Every input is identified by its
path relative to the inputs' common root (the directory given, or the common parent of
what was given), so ``a/report.txt`` and ``b/report.txt`` are two inputs. From that
relative path come:

- its blob, ``<job>/<relative path, percent-encoded>`` (a SHA-256 of the path when that
  would be too long for a blob name), with the original path in the blob's metadata;
- its name on the node: the base name with anything outside ``A-Z a-z 0-9 . _ -``
  replaced, so no file name reaches a command line as it came (it is quoted as well);
- its task id: that name's stem and a hash of the relative path;
- the task's display name, and the label in the table and ``--json``: the path itself.

Refused with a one-line reason (exit 2), without opening anything: what does not exist
(a broken symlink included), anything that is not a regular file (a fifo, a socket, a
device), a symlink loop, what cannot be read (a file, or a folder below a directory
given), the same file reached twice, and a name that cannot be carried (not valid UTF-8,
or holding a control character such as a newline). Every input is checked before that
line is written: it counts them all and names the first few. Symlinks to files are
followed; inside a directory, symlinks to directories are not, so a cycle cannot loop.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

T = TypeVar("T")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TASK_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
WINDOW = 1000  # inputs in flight at once when reading or sending many
MAX_BLOB_NAME = 900  # below Batch's and storage's 1,024, leaving room for the job prefix


class InputError(ValueError):
    """Bad input: one line for the user, exit status 2."""


@dataclass(frozen=True)
class Stored:
    """An input already in storage (``--blobs``): read where it is, never uploaded."""

    container: str
    blob: str
    md5: bytes  # its Content-MD5, or its ETag's bytes when it has none


@dataclass(frozen=True, slots=True)
class Input:
    """One input. Slotted and with its derived names computed once, at creation: a job
    may hold 100,000 of them, and reads each name several times."""

    path: str  # as the user named it (for a stored input: container/blob)
    relative: str  # its path below the inputs' common root, with '/': what identifies it
    size: int
    stored: Stored | None = None
    name: str = field(init=False)  # its file name on the node
    task_id: str = field(init=False)
    blob: str = field(init=False)  # its blob name below the job's prefix

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", node_name(self.relative))
        object.__setattr__(self, "task_id", task_id_for(self.relative))
        object.__setattr__(self, "blob", blob_name(self.relative))


def node_name(relative: str) -> str:
    """A file name safe on any node and command line, from the input's base name."""
    base = unicodedata.normalize("NFC", relative.rsplit("/", 1)[-1])
    safe = _UNSAFE.sub("_", base).lstrip("._-")
    stem, dot, suffix = safe.rpartition(".")
    if dot and len(safe) > 100:
        safe = f"{stem[: 99 - len(suffix[:20])]}.{suffix[:20]}"
    return safe[:100] or "input"


def task_id_for(relative: str) -> str:
    """A task id from an input's path: readable, valid for Batch, and unique per path."""
    readable = _TASK_ID_CHARS.sub("-", Path(node_name(relative)).stem)[:40] or "input"
    return f"{readable}-{hashlib.sha256(relative.encode()).hexdigest()[:8]}"


def blob_name(relative: str) -> str:
    encoded = quote(relative, safe="/-_.~")
    return (
        encoded if len(encoded) <= MAX_BLOB_NAME else hashlib.sha256(relative.encode()).hexdigest()
    )


@dataclass(frozen=True)
class Filters:
    """``--include`` and ``--exclude``: globs matched, as .gitignore matches them, against
    a file's path below the directory given. A glob matches at any depth (``*.log``,
    ``deep/*``: also ``a/deep/x``) unless it starts with ``/`` (``/deep/*``: only the
    directory's own ``deep``); one that matches a folder matches every file below it;
    ``*`` and ``?`` stop at ``/``, and ``**`` does not (``a/**/b``). A file is kept if it
    matches an include (when any are given) and no exclude."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def admit(self, relative: str) -> bool:
        if self.include and not any(_glob(p).fullmatch(relative) for p in self.include):
            return False
        return not any(_glob(pattern).fullmatch(relative) for pattern in self.exclude)

    def leaves_out_folder(self, relative: str) -> bool:
        """Whether an exclude leaves out every file below this folder, whatever it holds."""
        return any(_glob(pattern).fullmatch(f"{relative}/") for pattern in self.exclude)


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A .gitignore-style glob as a regular expression over a whole relative path."""
    anchored = pattern.startswith("/")
    folder_only = pattern.endswith("/")
    body = pattern.strip("/")
    parts: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if body.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            parts.append(".*")
            i += 2
        elif char == "*":
            parts.append("[^/]*")
            i += 1
        elif char == "?":
            parts.append("[^/]")
            i += 1
        elif char == "[" and (end := body.find("]", i + 2)) != -1:
            inside = body[i + 1 : end]
            negated = inside[:1] in ("!", "^")
            inside = inside[1:] if negated else inside
            escaped = re.sub(r"([\\^\[])", r"\\\1", inside)
            parts.append(f"[^/{escaped}]" if negated else f"[{escaped}]")
            i = end + 1
        elif char == "\\" and i + 1 < len(body):
            parts.append(re.escape(body[i + 1]))
            i += 2
        else:
            parts.append(re.escape(char))
            i += 1
    head = "" if anchored else "(?:.*/)?"
    tail = "/.*" if folder_only else "(?:/.*)?"
    return re.compile(head + "".join(parts) + tail, re.DOTALL)


def read_list(source: str) -> list[str]:
    """``--from-file``: one path per line (``-``: standard input); blank lines and lines
    starting with '#' are skipped."""
    try:
        if source == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(source).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"--from-file {source}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--from-file {source}: not readable ({error})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _kind(mode: int) -> str | None:
    """What a file is, when it is not a regular file or a directory."""
    for test, kind in (
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a regular file"


def _stat(path: Path, given: str) -> os.stat_result:
    try:
        return path.stat()  # follows a symlink, once and to its end
    except FileNotFoundError:
        if path.is_symlink():
            raise InputError(f"input is a broken symlink: {given}") from None
        raise InputError(f"input not found: {given}") from None
    except OSError as error:
        if error.errno == 40:  # ELOOP
            raise InputError(f"input is a symlink loop: {given}") from None
        raise InputError(f"cannot read {given}: {error.strerror}") from None


@dataclass
class _Found:
    """What looking for the inputs met: the problems, in order, and how many files of the
    directories given the filters saw and kept."""

    problems: list[str] = field(default_factory=list)
    walked: int = 0
    kept: int = 0


def _walk(directory: Path, filters: Filters, found: _Found) -> list[Path]:
    """A directory's files, recursively, sorted by their path below it; symlinked
    directories are not entered, so a link cycle cannot loop. A folder that cannot be
    read is a problem, unless the filters leave out all it holds."""

    def unreadable(error: OSError) -> None:
        where = Path(error.filename or directory)
        below = where.relative_to(directory).as_posix() if where != directory else ""
        if below and filters.leaves_out_folder(below):
            return
        found.problems.append(f"cannot read the folder {where}: {error.strerror or error}")

    files = [
        Path(root) / name
        for root, _, names in os.walk(directory, onerror=unreadable, followlinks=False)
        for name in names
    ]
    return sorted(files, key=lambda file: file.relative_to(directory).as_posix())


def _files(
    paths: Sequence[str], filters: Filters, found: _Found
) -> Iterator[tuple[str, str, os.stat_result | None]]:
    """(file, as the user would name it; the folder it counts from, absolute; its status
    when already known) for every input: a file given, or each file below a directory
    given that the filters admit. What is not there is a problem in ``found``."""
    for given in paths:
        path = Path(given)
        try:
            status = _stat(path, given)
        except InputError as error:
            found.problems.append(str(error))
            continue
        if stat.S_ISDIR(status.st_mode):
            base = os.path.abspath(given)
            for file in _walk(path, filters, found):
                found.walked += 1
                if filters.admit(file.relative_to(path).as_posix()):
                    found.kept += 1
                    yield str(file), base, None
        else:
            yield given, os.path.dirname(os.path.abspath(given)), status


def _carried(name: str) -> None:
    """Refuse a name this runner cannot carry to storage and a node."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"input name is not valid UTF-8: {name!r}") from None
    if _CONTROL.search(name):
        raise InputError(f"input name holds a control character: {name!r}")


SHOWN_PROBLEMS = 3
"""The problems an error names when inputs have several; it counts them all."""


def check_inputs(
    paths: Sequence[str],
    filters: Filters = Filters(),
    log: Callable[[str], None] | None = None,
) -> list[Input]:
    """Every input, checked, each file stat'ed once; nothing more than a name and a size
    is held per file until the common root is known, so 100,000 of them stay small.
    Every problem is found before one error names them (``SHOWN_PROBLEMS`` of them, and
    how many); with filters, ``log`` hears how many files of the directories they left
    out."""
    if not paths:
        raise InputError("no input files given")
    found: list[tuple[str, int]] = []  # (file as named, size)
    bases: set[str] = set()
    seen: dict[tuple[int, int], int] = {}  # (device, inode) -> index in found
    looked = _Found()
    for label, base, known in _files(paths, filters, looked):
        try:
            _carried(label)
            status = known or _stat(Path(label), label)
            kind = _kind(status.st_mode)
            if kind is not None:
                raise InputError(f"input is {kind}, not a regular file: {label}")
            identity = (status.st_dev, status.st_ino)
            if identity in seen:
                first = found[seen[identity]][0]
                raise InputError(f"the same file is given twice: {first} and {label}")
            if not os.access(label, os.R_OK):
                raise InputError(f"cannot read {label}: permission denied")
        except InputError as error:
            looked.problems.append(str(error))
            continue
        seen[identity] = len(found)
        found.append((label, status.st_size))
        bases.add(base)
    if looked.problems:
        raise InputError(_problems(looked.problems))
    if filters and looked.walked and log is not None:
        left_out = looked.walked - looked.kept
        log(
            f"inputs: --include/--exclude left out {left_out} of the {looked.walked} files "
            "in the directories given"
        )
    if not found:
        raise InputError("the directories given hold no file that the filters admit")
    root = os.path.commonpath(bases)
    return [
        Input(label, Path(os.path.relpath(os.path.abspath(label), root)).as_posix(), size)
        for label, size in found
    ]


def _problems(problems: Sequence[str]) -> str:
    """One problem as it is; several counted, the first few named."""
    if len(problems) == 1:
        return problems[0]
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    return f"{len(problems)} inputs cannot be used: {shown}{more}"


def md5_of(path: str | Path) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def content_md5s(inputs: Iterable[Input]) -> dict[str, bytes]:
    """Each input's MD5 by relative path, read in parallel: what storage compares to skip
    an upload, and what a job's fingerprint is made of."""
    items = list(inputs)

    def md5(item: Input) -> bytes:
        return item.stored.md5 if item.stored is not None else md5_of(item.path)

    found: dict[str, bytes] = {}
    with ThreadPoolExecutor(16) as pool:
        for window in windows(items):
            found.update(zip((i.relative for i in window), pool.map(md5, window), strict=True))
    return found


def windows(items: Iterable[T]) -> Iterator[list[T]]:
    """``items`` in lists of WINDOW: what a thread pool is given at a time, so 100,000
    inputs or blobs never become 100,000 futures at once."""
    pending = iter(items)
    while window := list(itertools.islice(pending, WINDOW)):
        yield window


def with_stored(local: Sequence[Input], stored: Sequence[Input]) -> list[Input]:
    """Files and stored blobs in one job: no two may share a path."""
    seen = {item.relative for item in local}
    for item in stored:
        if item.relative in seen:
            raise InputError(f"two inputs have the path {item.relative}")
        seen.add(item.relative)
    return [*local, *stored]
