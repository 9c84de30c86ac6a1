"""``--files-per-task``: several inputs in one Batch task, each still its own result.

Batch tasks that run for milliseconds spend more time being scheduled than working, so
inputs can be packed N to a task (``auto`` picks N from the inputs and the pool). The
inputs keep their order; the i-th task takes inputs ``i*N .. i*N+N-1``, so the same
inputs and N give the same tasks, and a resubmit adds nothing.

On the node a packed task runs ``task/each.py``, which finds each input at
``inputs/<key>/<name>`` (``key``: the input's own task id, unique per path), writes its
results to ``out/<key>/`` and its outcome to ``status.json``. Its results land at
``<job>/results/<task>/<key>/`` and its status at ``<job>/status/<task>.json``. Which
input each key stands for is written, before the task is added, to
``<job>/groups/<task>.json`` in the output container: what ``wait`` and ``download``
read for a job submitted earlier, even after the job is deleted.

``auto`` is the default: it packs only when that saves tasks the pool would spend more
time scheduling than running (many small inputs), and gives a task to each input of a
small job or of large inputs.

How submit named each input (its path as given, which the table shows) is kept too: a
task of one input has its path below the inputs' root as its display name, and the
job's metadata the prefix that makes every such path the name given
(``labels_record``); when no one prefix does, the names are written beside the results
(``<job>/labels/``, ``write_labels``), so ``wait`` shows what ``submit`` showed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from runner.inputs import Input, InputError

WRAPPER = Path(__file__).resolve().parent.parent / "task" / "each.py"
INPUTS_DIR = "inputs"  # where each.py looks for a task's inputs, one folder each
STATUS_FILE = "status.json"  # where it writes their outcomes
MAX_FILES_PER_TASK = 1000
"""A task's resource file list has a size limit on the service: a thousand inputs of
ordinary path lengths stay well inside it."""
AUTO_MAX = 100
AUTO_TASK_BYTES = 32 << 20
"""What ``auto`` aims a task at: a few seconds of topwords on a node."""
DISPLAY_NAME_LIMIT = 1024  # Batch's limit on a task's display name
PARALLEL = 16
LABELS_METADATA = "runner.labels"
"""The job metadata item that says how its inputs were named (``labels_record``)."""


@dataclass(frozen=True)
class Group:
    """The inputs of one task: one (run as ever) or several (run by each.py)."""

    task_id: str
    members: tuple[Input, ...]
    packed: bool = False  # run by each.py, even when the last group has one input left

    @property
    def display_name(self) -> str:
        first = self.members[0].relative
        if len(self.members) == 1:
            return first
        more = f" and {len(self.members) - 1} more"
        return first[: DISPLAY_NAME_LIMIT - len(more)] + more

    def manifest(self) -> bytes:
        return json.dumps(
            {
                "task": self.task_id,
                "inputs": [
                    {"key": m.task_id, "relative": m.relative, "label": m.path}
                    for m in self.members
                ],
            },
            ensure_ascii=False,
        ).encode()


def parse(value: str) -> int | None:
    """--files-per-task: a whole number from 1 to MAX_FILES_PER_TASK, or ``auto`` (None)."""
    if value == "auto":
        return None
    try:
        number = int(value)
    except ValueError:
        raise InputError(
            f"--files-per-task must be a whole number or 'auto', got {value!r}"
        ) from None
    if not 1 <= number <= MAX_FILES_PER_TASK:
        raise InputError(
            f"--files-per-task must be from 1 to {MAX_FILES_PER_TASK} (a task's list of "
            f"input files has a size limit), got {number}"
        )
    return number


def auto(count: int, total_bytes: int, slots: int | Callable[[], int]) -> int:
    """Inputs per task for ``auto``: enough bytes for a few seconds of work, but never so
    many that the pool's slots would not each get two tasks (to even out stragglers).
    So a job of a few inputs, or of inputs large enough to be seconds of work each, gets
    a task per input. ``slots`` may be a function, asked only when the inputs are many and
    small enough for its answer to matter."""
    if count <= 2:  # a task each fills two slots: one of any pool's nodes
        return 1
    by_size = math.ceil(AUTO_TASK_BYTES / max(1, total_bytes / count))
    if by_size <= 1:
        return 1
    pool_slots = slots() if callable(slots) else slots
    to_fill_slots = math.ceil(count / (2 * max(1, pool_slots)))
    return max(1, min(by_size, to_fill_slots, AUTO_MAX))


def pack(inputs: Sequence[Input], per_task: int) -> Iterator[Group]:
    """The inputs in tasks of ``per_task``; a lone input keeps its own task id."""
    for start in range(0, len(inputs), per_task):
        members = tuple(inputs[start : start + per_task])
        if per_task == 1:
            yield Group(members[0].task_id, members)
            continue
        digest = hashlib.sha256(b"\0".join(m.relative.encode() for m in members)).hexdigest()
        yield Group(f"files-{start // per_task + 1:06d}-{digest[:8]}", members, packed=True)


def groups_prefix(job_id: str) -> str:
    return f"{job_id}/groups"


def status_prefix(job_id: str) -> str:
    return f"{job_id}/status"


def write_manifests(container: ContainerClient, job_id: str, groups: Sequence[Group]) -> None:
    def write(group: Group) -> None:
        name = f"{groups_prefix(job_id)}/{group.task_id}.json"
        container.upload_blob(name, group.manifest(), overwrite=True)

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(write, [group for group in groups if group.packed]))


def read_manifests(container: ContainerClient, job_id: str) -> list[dict[str, Any]]:
    """Every packed task's manifest, in task order."""
    names = sorted(
        blob.name for blob in container.list_blobs(name_starts_with=f"{groups_prefix(job_id)}/")
    )
    return list(read_json_blobs(container, names).values())


def read_statuses(
    container: ContainerClient, job_id: str, task_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Each packed task's ``status.json`` as uploaded (a task that never ran has none)."""
    tasks = {f"{status_prefix(job_id)}/{task}.json": task for task in task_ids}
    return {tasks[name]: doc for name, doc in read_json_blobs(container, list(tasks)).items()}


def read_json_blobs(container: ContainerClient, names: Sequence[str]) -> dict[str, Any]:
    def read(name: str) -> Any:
        try:
            return json.loads(container.download_blob(name).readall())
        except (ResourceNotFoundError, ValueError):  # absent, or cut short: as absent
            return None

    with ThreadPoolExecutor(PARALLEL) as pool:
        documents = list(pool.map(read, names))
    return {name: doc for name, doc in zip(names, documents, strict=True) if doc is not None}


# --- how submit named the inputs ---------------------------------------------------------


def label_prefix(inputs: Iterable[Input]) -> str | None:
    """The prefix that makes each input's path below the inputs' root the name it was
    given as (``data/`` for ``data/a.txt`` whose path is ``a.txt``), or None if no one
    prefix does for them all."""
    prefix: str | None = None
    for item in inputs:
        if not item.path.endswith(item.relative):
            return None
        own = item.path[: len(item.path) - len(item.relative)]
        if prefix is None:
            prefix = own
        elif own != prefix:
            return None
    return prefix if prefix is not None else ""


def labels_record(prefix: str | None) -> str:
    """The LABELS_METADATA value for a job whose inputs have this ``label_prefix``."""
    record: dict[str, object] = {"prefix": prefix} if prefix is not None else {"listed": True}
    return json.dumps(record, separators=(",", ":"))  # ASCII: any name, as metadata takes it


def labels_prefix(job_id: str) -> str:
    return f"{job_id}/labels"


def write_labels(container: ContainerClient, job_id: str, groups: Sequence[Group]) -> None:
    """The names of a window's inputs in tasks of their own, for a job whose inputs no
    one prefix names (a packed task's manifest has its inputs' names already)."""
    single = [group.members[0] for group in groups if not group.packed]
    if single:
        document = {item.task_id: item.path for item in single}
        name = f"{labels_prefix(job_id)}/{single[0].task_id}.json"
        container.upload_blob(name, json.dumps(document, ensure_ascii=False), overwrite=True)


@dataclass(frozen=True)
class Labels:
    """How a job's inputs in tasks of their own were named: ``of`` gives an input's name
    from its task id and its path below the inputs' root (its task's display name)."""

    prefix: str = ""
    listed: Mapping[str, str] | None = None

    def of(self, input_id: str, relative: str) -> str:
        if self.listed is not None:
            return self.listed.get(input_id, relative)
        return self.prefix + relative


def read_labels(container: ContainerClient, job_id: str, metadata: Sequence[Any] | None) -> Labels:
    """The Labels a job's metadata records (a job without the record: its inputs' paths,
    as their display names hold them); when they are listed, read from storage."""
    record = next((item.value for item in metadata or [] if item.name == LABELS_METADATA), None)
    try:
        document = json.loads(record) if record else {}
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        return Labels()
    if not document.get("listed"):
        return Labels(str(document.get("prefix") or ""))
    names = [
        blob.name for blob in container.list_blobs(name_starts_with=f"{labels_prefix(job_id)}/")
    ]
    listed: dict[str, str] = {}
    for part in read_json_blobs(container, names).values():
        if isinstance(part, dict):
            listed.update({str(key): str(value) for key, value in part.items()})
    return Labels(listed=listed)
