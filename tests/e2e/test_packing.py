"""Many inputs per task (``--files-per-task``), end to end on the local stack: each input
is still its own result, a failing input fails alone, a resubmit adds nothing, and a
job submitted earlier is waited for and downloaded into the inputs' tree."""

from __future__ import annotations

import json
import random
from pathlib import Path

from runner.inputs import WINDOW
from tests.e2e.conftest import runner
from tests.task.reference import reference_top

FAILING_SCRIPT = """\
import pathlib, sys
text = pathlib.Path(sys.argv[1]).read_text()
if "poison" in text:
    print("refusing a poisoned file", file=sys.stderr)
    sys.exit(7)
out = pathlib.Path(sys.argv[2])
(out / "length.txt").write_text(str(len(text)))
"""


def _corpus(root: Path, count: int, seed: int = 5) -> list[Path]:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta"]
    paths = []
    for i in range(count):
        path = root / f"part{i % 3}" / f"doc {i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(" ".join(rng.choices(words, k=30 + i % 7)))
        paths.append(path)
    return paths


def test_topwords_packed_three_to_a_task_equals_each_file_alone(stack, job_ids, tmp_path):
    paths = _corpus(tmp_path / "corpus", 8)
    job_id = job_ids("e2e-packed")
    submit = ("submit", "corpus", "--files-per-task", "3", "--outputs", str(stack))
    first = runner(*submit, "--json", "--job-id", job_id, "--out", "out", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 tasks added (3 inputs each)" in first.stderr
    tasks = json.loads(first.stdout)["tasks"]
    assert len(tasks) == 8
    assert len({task["task_id"] for task in tasks}) == 3
    for task, path in zip(
        tasks, sorted(paths, key=lambda p: p.relative_to(tmp_path / "corpus")), strict=True
    ):
        relative = path.relative_to(tmp_path / "corpus").as_posix()
        assert task["input"] == f"corpus/{relative}"
        assert [tuple(pair) for pair in task["top"]] == reference_top(path.read_bytes(), 3)
        # the results mirror the inputs' tree, as with a task per input
        # (named after the input's name on the node, "doc_0000.txt", as ever)
        assert (
            tmp_path / "out" / relative / f"{path.stem.replace(' ', '_')}_OUTPUT.json"
        ).is_file()

    again = runner(*submit, "--job-id", job_id, "--json", "--out", "again", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already submitted with these inputs; nothing to upload or add" in again.stderr
    assert json.loads(again.stdout)["tasks"] == tasks

    other = runner(
        "submit", "corpus", "--files-per-task", "4", "--outputs", str(stack),
        "--job-id", job_id, cwd=tmp_path,
    )  # fmt: skip
    assert other.returncode == 2
    assert "the files per task (3 then, 4 now)" in other.stderr

    waited = runner("wait", job_id, "--outputs", str(stack), "--json", "--out", "w", cwd=tmp_path)
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["tasks"] == tasks
    fetched = runner("download", job_id, "--outputs", str(stack), "--out", "d", cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "d" / "part0" / "doc 0000.txt" / "doc_0000_OUTPUT.txt").is_file()


def test_one_failing_input_among_several_fails_alone(stack, tmp_path):
    script = tmp_path / "length.py"
    script.write_text(FAILING_SCRIPT)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        (data / f"in{i}.txt").write_text("poison" if i == 2 else "fine " * (i + 1))
    result = runner(
        "submit", "data", "--script", str(script), "--files-per-task", "5",
        "--outputs", str(stack), "--json", "--out", "out", "--task-retries", "0",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    tasks = {Path(task["input"]).name: task for task in json.loads(result.stdout)["tasks"]}
    bad = tasks.pop("in2.txt")
    assert bad["exit_code"] == 7
    assert bad["failure"] == "exit code 7"
    assert bad["stderr_tail"] == ["refusing a poisoned file"]
    for name, task in tasks.items():
        assert task["exit_code"] == 0, name
        assert "failure" not in task, name
        length = (tmp_path / "out" / name / "length.txt").read_text()
        assert length == str(len((data / name).read_text()))
    assert not (tmp_path / "out" / "in2.txt" / "length.txt").exists()


LONG_LIST = WINDOW // 2 + 1
"""501 inputs, what 1,000 proved at half the cost: their 1,002 result files are more than
one window of downloads (runner.inputs.WINDOW, 1,000 at a time), the fewest that take
two (1,000 inputs took two windows of their 2,000, and one of uploads, as 501 do).
``auto`` packs them several to a task on a pool of any size the stack has (up to 4 nodes
of 2 slots: 32 or more a task), each input is still its own result, and their clean-up
takes several rounds of blob batch deletes (runner.staging: 32 a request, 4 at once)."""


def test_a_long_list_of_inputs_from_a_file(stack, tmp_path):
    paths = _corpus(tmp_path / "many", LONG_LIST, seed=9)
    (tmp_path / "list.txt").write_text("".join(f"{p.relative_to(tmp_path)}\n" for p in paths))
    result = runner(
        "submit", "--from-file", "list.txt", "--files-per-task", "auto",
        "--outputs", str(stack), "--json", "--out", "out", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"downloaded {2 * LONG_LIST} files to out" in result.stderr  # two windows
    assert f"removed its {LONG_LIST} input blobs " in result.stderr
    tasks = json.loads(result.stdout)["tasks"]
    assert len(tasks) == LONG_LIST
    assert 1 < len({task["task_id"] for task in tasks}) < LONG_LIST  # auto packed them
    by_input = {task["input"]: task for task in tasks}
    for path in random.Random(1).sample(paths, 50):
        task = by_input[str(path.relative_to(tmp_path))]
        assert [tuple(pair) for pair in task["top"]] == reference_top(path.read_bytes(), 3)
    assert sum(1 for _ in (tmp_path / "out").rglob("*_OUTPUT.json")) == LONG_LIST
