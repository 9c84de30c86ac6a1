"""What a task runs and how many inputs it takes: the folders a script writes into exist
for a task of one input as for a packed one, ``auto`` (the default) packs only what
packing helps, and the names inputs were given as are recorded for ``wait``."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from runner import batch_job, merge, packing, preparation, submit
from runner.fingerprint import Fingerprint
from runner.inputs import Input
from runner.program import Script, TopWords

CLEAN = """\
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("input")
parser.add_argument("--out")
args = parser.parse_args()
lines = pathlib.Path(args.input).read_text().splitlines()
(pathlib.Path(args.out) / "lines.txt").write_text(f"{len(lines)}\\n")
"""
"""The README's ``--script clean.py -- {input} --out {output_dir}``: it writes into its
output folder as it finds it, as most scripts do."""


def _node(tmp_path: Path, script: str) -> tuple[Path, dict[str, str]]:
    """A node's job preparation folder holding the staged script and an environment
    whose python is this one, and a task's working directory holding its input."""
    prepared = tmp_path / "prep"
    (prepared / "program").mkdir(parents=True)
    (prepared / "program" / "clean.py").write_text(script)
    (prepared / "env" / "bin").mkdir(parents=True)
    (prepared / "env" / "bin" / "python").symlink_to(sys.executable)
    work = tmp_path / "task"
    work.mkdir()
    (work / "in.csv").write_text("a\nb\nc\n")
    return work, {**os.environ, preparation.PREP_DIR: str(prepared)}


def test_a_task_of_one_input_creates_the_output_folder_its_script_writes_into(tmp_path):
    program = Script(Path("clean.py"), ("{input}", "--out", "{output_dir}"))
    folders = submit.folders_named(program)
    assert folders == (batch_job.OUTPUT_DIR,)
    staged = preparation.Staged(prepare="p", bundle="b", script="clean.py", folders=folders)
    expanded = ["in.csv", "--out", batch_job.OUTPUT_DIR]  # as plan_tasks expands them
    command = preparation.task_command(staged, expanded)
    work, environment = _node(tmp_path, CLEAN)
    done = subprocess.run(
        shlex.split(command), cwd=work, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (work / "out" / "lines.txt").read_text() == "3\n"
    # A packed task's each.py makes each input's folders itself: no mkdir before it.
    packed = preparation.task_command(
        preparation.Staged(prepare="p", bundle="b", script="clean.py", wrapper="each.py"),
        ["{input}"],
    )
    assert "mkdir" not in packed


def test_the_folders_a_task_creates_are_those_its_arguments_name():
    assert submit.folders_named(TopWords()) == (batch_job.OUTPUT_DIR,)
    assert submit.folders_named(TopWords(counts=True)) == (batch_job.OUTPUT_DIR, merge.MERGE_DIR)
    assert submit.folders_named(Script(Path("s.py"), ("{input}",))) == ()
    unstaged = preparation.Staged(prepare="p", bundle="b", script="s.py")
    assert "mkdir" not in preparation.task_command(unstaged, ["x"])


def _asked() -> int:
    raise AssertionError("the pool's slots were asked for where they cannot matter")


@pytest.mark.parametrize(
    ("count", "size", "slots", "expected"),
    [
        (3, 2_000, 2, 1),  # the tutorial on the smallest pool: a task each
        (3, 2_000, 4, 1),
        (8, 2_000, 4, 1),  # a small job: every slot gets two tasks anyway
        (2_000, 100, 4, 100),  # many tiny files: 20 tasks, not 2,000
        (2_000, 100, 50, 20),  # a big pool: still two tasks a slot
    ],
)
def test_auto_packs_only_what_packing_helps(count, size, slots, expected):
    assert packing.auto(count, count * size, lambda: slots) == expected


@pytest.mark.parametrize(("count", "size"), [(1, 10), (2, 10), (500, 64 << 20)])
def test_auto_asks_nothing_of_the_pool_for_few_or_large_inputs(count, size):
    assert packing.auto(count, count * size, _asked) == 1


def _inputs(*labels_and_relatives: tuple[str, str]) -> list[Input]:
    return [Input(label, relative, 10) for label, relative in labels_and_relatives]


def test_auto_is_the_default_and_a_resumed_job_keeps_what_it_was_submitted_with():
    inputs = _inputs(*((f"d/{i}.txt", f"{i}.txt") for i in range(2_000)))
    clients = SimpleNamespace(
        batch=SimpleNamespace(
            get_pool=lambda pool_id: SimpleNamespace(
                current_dedicated_nodes=1,
                current_low_priority_nodes=0,
                target_dedicated_nodes=1,
                target_low_priority_nodes=0,
                task_slots_per_node=2,
            )
        ),
        outputs=SimpleNamespace(poolId="pool"),
    )
    assert submit.Request().files_per_task is None  # auto, unless asked otherwise
    assert submit.files_per_task(clients, inputs, None) == 100  # type: ignore[arg-type]
    assert submit.files_per_task(clients, inputs, 1) == 1  # type: ignore[arg-type]
    then = Fingerprint("topwords", "s", (), "2000:x", False, files_per_task=40)
    # The pool may have grown since: the job's tasks stay those it was given.
    assert submit.files_per_task(clients, inputs, None, then) == 40  # type: ignore[arg-type]


def test_the_names_inputs_were_given_as_are_a_prefix_or_a_list():
    assert packing.label_prefix(_inputs(("data/a.txt", "a.txt"), ("data/b/c.txt", "b/c.txt"))) == (
        "data/"
    )
    assert packing.label_prefix(_inputs(("/abs/one.txt", "one.txt"))) == "/abs/"
    assert packing.label_prefix(_inputs(("input/k/a", "input/k/a"))) == ""
    mixed = _inputs(("data/a.txt", "data/a.txt"), ("../x/b.txt", "x/b.txt"))
    assert packing.label_prefix(mixed) is None

    def metadata(prefix: str | None) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=packing.LABELS_METADATA, value=packing.labels_record(prefix))]

    unused = SimpleNamespace()  # no container is read for a prefix
    labels = packing.read_labels(unused, "job", metadata("/abs/"))  # type: ignore[arg-type]
    assert labels.of("one-1234", "one.txt") == "/abs/one.txt"
    before = packing.read_labels(unused, "job", [])  # type: ignore[arg-type]
    assert before.of("one-1234", "one.txt") == "one.txt"  # a job submitted before: its paths

    written: dict[str, bytes] = {}
    container = SimpleNamespace(
        upload_blob=lambda name, data, overwrite: written.__setitem__(name, data.encode()),
        list_blobs=lambda name_starts_with: [SimpleNamespace(name=n) for n in written],
        download_blob=lambda name: SimpleNamespace(readall=lambda: written[name]),
    )
    groups = list(packing.pack(mixed, 1))
    packing.write_labels(container, "job", groups)  # type: ignore[arg-type]
    assert list(written) == [f"job/labels/{mixed[0].task_id}.json"]
    listed = packing.read_labels(container, "job", metadata(None))  # type: ignore[arg-type]
    assert [listed.of(item.task_id, item.relative) for item in mixed] == [
        "data/a.txt",
        "../x/b.txt",
    ]
    assert json.loads(packing.labels_record(None)) == {"listed": True}
