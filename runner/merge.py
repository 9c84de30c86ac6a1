"""``--merge``: a reduce stage after the per-file tasks, as Batch task dependencies.

The per-file tasks' results are merged by a tree of merge tasks: each depends on at most
FAN_IN tasks (Batch bounds what one ``dependsOn`` may name, and a task that reads 100,000
files would take all day), and the root, task ``merge``, writes the job's merged result.
A merge task reads what the tasks below it wrote, as resource files by blob prefix,
into ``{inputs_dir}``, and writes into ``{output_dir}``; the root's files, under
``<job>/merge/merge/``, are downloaded into the results folder.

For topwords, every per-file task also writes its exact word counts into
``{merge_dir}`` (a packed task sums its inputs' into one file: see task/each.py), and
``task/merge.py`` adds them up; below the root it writes the summed counts for the
merge above. Each task hands its counts to the merge above it, under
``<job>/to-merge/<merge>/<task>/`` (apart from the results: never downloaded), so a
merge reads one blob prefix, not one a task: the storage requests, not the adding
up, are what a merge costs. A ``--merge-script`` gets the
result files of the tasks it merges (at any depth below ``{inputs_dir}``; below the root
those are other merges' outputs, so it must take its own outputs as input).

A failed task blocks every merge above it: the service never cancels dependents. So
without --merge-partial, once only merges are left, ``Unblock`` ends them and the job
completes saying why. With --merge-partial every task's exit conditions satisfy its
dependents whatever its outcome, and the merges take what succeeded.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from azure.batch import BatchClient, models
from azure.storage.blob import ContainerClient

from runner.clients import state_name
from runner.fetch import Tally, Wanted, escapes, fetch_all, logs_prefix, results_prefix
from runner.monitor import Progress
from runner.packing import Group
from runner.program import TOPWORDS_SCRIPT, files_cell, launcher, script_blob_name, words_cell
from runner.results import STDERR_TAIL_LINES

ROOT_ID = "merge"
"""The last merge's task id. Input task ids always hold a '-' (``inputs.task_id_for``);
merge task ids never do, so the two never meet."""
FAN_IN = 100
"""Tasks one merge task depends on, at most: 100 ids of up to 64 characters stay far
inside the service's limit on a ``dependsOn`` list."""
INPUTS_DIR = "merge-inputs"
OUTPUT_DIR = "out"
MERGE_SCRIPT = TOPWORDS_SCRIPT.with_name("merge.py")
MERGE_DIR = "merge"  # a per-file task's {merge_dir}: what it hands to the merge stage


def handed_prefix(job_id: str) -> str:
    """Where tasks leave what only the merges read (topwords' counts, from a per-file
    task's ``{merge_dir}``): ``<job>/to-merge/...``, never downloaded as results."""
    return f"{job_id}/to-merge"


def merge_prefix(job_id: str) -> str:
    """Where merge tasks' outputs go: ``<job>/merge/<task>/...`` (apart from the
    per-input results, so fetching those never fetches a merge's)."""
    return f"{job_id}/merge"


_INNER_ID = re.compile(r"merge_\d+_\d+")  # merge_<level>_<index>


def is_merge_task(task_id: str) -> bool:
    return task_id == ROOT_ID or _INNER_ID.fullmatch(task_id) is not None


@dataclass(frozen=True)
class Merge:
    """What a job's merge stage runs: a script and its arguments, at the root and below."""

    script: Path
    arguments: tuple[str, ...]
    inner_arguments: tuple[str, ...]
    companions: tuple[Path, ...] = ()  # staged beside the script
    partial: bool = False
    topwords: bool = False  # the results are topwords' merged_OUTPUT files

    @classmethod
    def of_topwords(cls, top: int, partial: bool = False) -> Merge:
        common = ("{inputs_dir}", "--output-dir", "{output_dir}")
        return cls(
            MERGE_SCRIPT,
            (*common, "--top", str(top)),
            (*common, "--counts-only"),
            (TOPWORDS_SCRIPT,),
            partial,
            True,
        )

    @classmethod
    def of_script(cls, script: Path, arguments: Sequence[str], partial: bool = False) -> Merge:
        given = tuple(arguments) or ("{inputs_dir}", "{output_dir}")
        return cls(script, given, given, (), partial)

    def record(self) -> str:
        """What the job's fingerprint keeps: the staged script, arguments, partiality."""
        return json.dumps(
            {
                "script": script_blob_name(self.script),
                "arguments": list(self.arguments),
                "partial": self.partial,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class Recorded:
    """A merge as a job's fingerprint recorded it: what ``wait`` needs to finish it."""

    partial: bool
    topwords: bool

    @classmethod
    def read(cls, text: str) -> Recorded | None:
        if not text:
            return None
        document = json.loads(text)
        script = str(document.get("script", ""))
        return cls(bool(document.get("partial")), script == script_blob_name(MERGE_SCRIPT))

    @classmethod
    def of(cls, merge: Merge) -> Recorded:
        return cls(merge.partial, merge.topwords)


@dataclass(frozen=True)
class MergeTask:
    task_id: str
    depends_on: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]  # (blob prefix it reads, folder in {inputs_dir})
    output: str  # the blob prefix its {output_dir} goes to
    root: bool


def leaf_source(job_id: str, group: Group) -> str:
    """Where a per-file task leaves the results a ``--merge-script`` reads."""
    return f"{results_prefix(job_id)}/{group.task_id}/"


def tree(
    job_id: str, leaves: Sequence[tuple[str, str]], fan_in: int = FAN_IN, handed: bool = False
) -> list[MergeTask]:
    """The merge tasks over ``leaves`` ((task id, blob prefix it leaves its results
    under)), level by level, each depending on at most ``fan_in`` tasks; the root last.

    With ``handed`` (topwords) a merge reads one prefix, ``<job>/to-merge/<itself>/``,
    where every task below it hands over (``handoffs``), and the leaves' prefixes
    are not read."""
    tasks: list[MergeTask] = []
    current = list(leaves)
    level = 1
    while True:
        chunks = [current[i : i + fan_in] for i in range(0, len(current), fan_in)] or [[]]
        root = len(chunks) == 1
        for index, chunk in enumerate(chunks):
            task_id = ROOT_ID if root else f"merge_{level}_{index}"
            ids = tuple(leaf for leaf, _ in chunk)
            sources = (
                ((f"{handed_prefix(job_id)}/{task_id}/", ""),)
                if handed
                else tuple((source, leaf) for leaf, source in chunk)
            )
            tasks.append(
                MergeTask(task_id, ids, sources, f"{merge_prefix(job_id)}/{task_id}/", root)
            )
        if root:
            break
        current = [(task.task_id, task.output) for task in tasks[-len(chunks) :]]
        level += 1
    if handed:  # below the root, a merge's output is handed to the merge above it
        above = handoffs(job_id, tasks)
        tasks = [task if task.root else replace(task, output=above[task.task_id]) for task in tasks]
    return tasks


def handoffs(job_id: str, tasks: Sequence[MergeTask]) -> dict[str, str]:
    """Task id -> the blob prefix it hands its counts to: ``<job>/to-merge/<merge>/<task>/``,
    under the one prefix the merge above it reads."""
    return {
        below: f"{handed_prefix(job_id)}/{task.task_id}/{below}/"
        for task in tasks
        for below in task.depends_on
    }


def plan(job_id: str, groups: Sequence[Group], merge: Merge) -> list[MergeTask]:
    leaves = [(group.task_id, leaf_source(job_id, group)) for group in groups]
    return tree(job_id, leaves, handed=merge.topwords)


def exit_conditions(merge: Merge | None) -> models.ExitConditions | None:
    """With --merge-partial, any outcome of a task lets the merges above it run."""
    if merge is None or not merge.partial:
        return None
    satisfy = models.ExitOptions(dependency_action=models.DependencyAction.SATISFY)
    return models.ExitConditions(
        default=satisfy, pre_processing_error=satisfy, file_upload_error=satisfy
    )


def command_line(merge: Merge, task: MergeTask) -> str:
    runner = launcher(merge.script.name)
    arguments = merge.arguments if task.root else merge.inner_arguments
    expanded = [
        argument.replace("{inputs_dir}", INPUTS_DIR).replace("{output_dir}", OUTPUT_DIR)
        for argument in arguments
    ]
    return shlex.join([*runner, *expanded])


class Unblock:
    """Without --merge-partial: once a task has failed and only merges are left, end
    them (they wait forever otherwise), so the job completes and its merge says why."""

    def __init__(
        self, batch: BatchClient, job_id: str, merges: int, log: Callable[[str], None]
    ) -> None:
        self.batch, self.job_id, self.merges, self.log = batch, job_id, merges, log
        self.done = False

    def __call__(self, progress: Progress) -> None:
        left_count = progress.active + progress.running
        if self.done or not progress.failed or not 0 < left_count <= self.merges:
            return
        left = [
            task.id
            for task in self.batch.list_tasks(
                self.job_id, filter="state ne 'completed'", select=["id"]
            )
        ]
        if not left or not all(is_merge_task(task_id) for task_id in left):
            return
        for task_id in left:
            self.batch.terminate_task(self.job_id, task_id)
        self.done = True
        self.log(
            f"job {self.job_id}: a task failed, so the merge cannot run; ended its "
            f"{len(left)} waiting merge task(s) (--merge-partial merges what succeeded)"
        )


@dataclass
class Merged:
    """The root merge's outcome, with what it left out."""

    state: str
    exit_code: int | None
    output: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    missing: list[str] = field(default_factory=list)  # the inputs whose results failed
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.state == "completed" and self.failure is None and self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "task_id": ROOT_ID,
            "state": self.state,
            "exit_code": self.exit_code,
            **self.output,
            "missing": self.missing,
        }
        if not self.succeeded:
            document |= {"failure": self.failure, "stderr_tail": self.stderr_tail}
        return document

    def line(self) -> str:
        """The merge in one line, for after the results table."""
        if not self.succeeded:
            return f"merged: FAILED: {self.failure}"
        if "top" in self.output:
            words = words_cell(self.output["top"])
            of = f"{self.output.get('inputs', '?')} inputs"
        else:
            words = files_cell(self.output.get("files", []))
            of = "the results"
        missing = f"; missing {len(self.missing)}: {_names(self.missing)}" if self.missing else ""
        return f"merged ({of}{missing}): {words}"


def _names(labels: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(labels) - shown} more" if len(labels) > shown else ""
    return ", ".join(labels[:shown]) + more


def fetch_merged(
    container: ContainerClient, job_id: str, destination: Path, tally: Tally | None = None
) -> list[str]:
    """Download the root merge's files (if it wrote any) into ``destination``, but those
    there already (``fetch.fetch_all``); returns their names below it, sorted, and
    counts them in ``tally``."""
    prefix = f"{merge_prefix(job_id)}/{ROOT_ID}/"
    found = [
        Wanted(blob.name, destination / blob.name[len(prefix) :], blob)
        for blob in container.list_blobs(name_starts_with=prefix)
        if not escapes(blob.name[len(prefix) :])
    ]
    return sorted(name[len(prefix) :] for name, _ in fetch_all(container, found, tally=tally))


def collect(
    batch: BatchClient,
    container: ContainerClient,
    job_id: str,
    destination: Path,
    recorded: Recorded,
    failed_inputs: Sequence[str],
    tally: Tally | None = None,
) -> Merged:
    """Download the root merge's files into ``destination`` (counted in ``tally``) and
    read its outcome."""
    task = batch.get_task(job_id, ROOT_ID, select=["id", "state", "executionInfo"])
    info = task.execution_info
    files = fetch_merged(container, job_id, destination, tally)
    merged = Merged(state_name(task.state), info.exit_code if info else None)
    merged.missing = list(failed_inputs)
    if recorded.topwords:
        document = destination / "merged_OUTPUT.json"
        if document.is_file():
            read = json.loads(document.read_text())
            merged.output = {"inputs": read.get("inputs"), "top": read.get("top", [])}
    else:
        merged.output = {"files": files}
    if info and info.failure_info:
        merged.failure = f"{info.failure_info.code}: {info.failure_info.message}"
        if info.failure_info.code == "TaskEnded" and failed_inputs and not recorded.partial:
            merged.failure = (
                f"not run: {len(failed_inputs)} input(s) failed: {_names(failed_inputs)} "
                "(--merge-partial merges the others)"
            )
    elif not merged.succeeded:
        merged.failure = f"exit code {merged.exit_code}"
    if not merged.succeeded:
        stderr = f"{logs_prefix(job_id)}/{ROOT_ID}/stderr.txt"
        target = destination / "logs" / ROOT_ID / "stderr.txt"
        for _ in fetch_all(container, [(stderr, target)], missing_ok=True):
            merged.stderr_tail = target.read_text(errors="replace").splitlines()[
                -STDERR_TAIL_LINES:
            ]
    return merged
