"""`submit --merge` end to end on the stack under test: per-file tasks, then merge tasks joined
to them by Batch task dependencies, with the real SDKs and the real scripts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from runner.merge import FAN_IN
from tests.e2e.conftest import ROOT, batch_client, container_client, runner
from tests.task.reference import reference_top

DATA = sorted((ROOT / "data").glob("*.txt"))


def _inputs(folder: Path, count: int) -> list[Path]:
    """Files with overlapping vocabularies, one with a name users have (space, accent)."""
    folder.mkdir()
    paths = []
    for index in range(count):
        name = "déjà vu 0.txt" if index == 0 else f"part{index:03d}.txt"
        words = [f"w{(index * 7 + k) % 23}" for k in range(40)] + ["common"] * (index % 5)
        (folder / name).write_text(" ".join(words) + "\n", encoding="utf-8")
        paths.append(folder / name)
    return paths


def _all_words(paths: list[Path]) -> bytes:
    return b"\n".join(path.read_bytes() for path in paths)


def test_merge_of_the_sample_data(stack, stack_outputs, job_ids, tmp_path):
    job_id = job_ids("e2e-merge")
    result = runner(
        "submit", *map(str, DATA), "--merge", "--outputs", str(stack), "--json",
        "--job-id", job_id, "--top", "5", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    merged = document["merged"]
    assert merged["state"] == "completed"
    assert merged["exit_code"] == 0
    assert merged["inputs"] == 3
    assert merged["missing"] == []
    assert [tuple(pair) for pair in merged["top"]] == reference_top(_all_words(DATA), 5)
    out = tmp_path / "results" / job_id
    text = (out / "merged_OUTPUT.txt").read_text()
    assert text.splitlines() == [f"{w}\t{n}" for w, n in reference_top(_all_words(DATA), 5)]
    assert json.loads((out / "merged_OUTPUT.json").read_text())["top"] == merged["top"]
    assert not list(out.rglob("*_COUNTS.tsv.gz"))  # the merge's inputs stay in storage
    assert "with a merge stage of 1 task" in result.stderr

    batch = batch_client(stack_outputs)
    assert batch.get_job(job_id).uses_task_dependencies is True
    root = batch.get_task(job_id, "merge")
    per_file = [task for task in batch.list_tasks(job_id) if task.id != "merge"]
    assert sorted(root.depends_on.task_ids) == sorted(task.id for task in per_file)
    # The merge started only once every task it merges had ended.
    assert root.execution_info.start_time >= max(t.execution_info.end_time for t in per_file)

    table = runner("wait", job_id, "--outputs", str(stack), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    top = ", ".join(f"{w} ({n})" for w, n in reference_top(_all_words(DATA), 5))
    assert table.stdout.splitlines()[-1] == f"merged (3 inputs): {top}"
    fetched = runner("download", job_id, "--out", "again", "--outputs", str(stack), cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "again" / "merged_OUTPUT.txt").read_text() == text
    assert not list((tmp_path / "again").rglob("*_COUNTS.tsv.gz"))
    again = runner(
        "submit", *map(str, DATA), "--merge", "--top", "5", "--outputs", str(stack),
        "--job-id", job_id, cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "nothing to upload or add" in again.stderr
    plain = runner(
        "submit", *map(str, DATA), "--top", "5", "--outputs", str(stack),
        "--job-id", job_id, cwd=tmp_path,
    )  # fmt: skip
    assert plain.returncode == 2
    assert "the merge (merge.py then, none now)" in plain.stderr


def test_a_tree_of_merges_over_packed_tasks(stack, stack_outputs, job_ids, tmp_path):
    """202 inputs, two to a task: 101 tasks, one more than a merge takes (FAN_IN, 100),
    the fewest that make a tree: merged by two merges (of 100 and of 1) and the root."""
    assert FAN_IN == 100
    paths = _inputs(tmp_path / "in", 2 * (FAN_IN + 1))
    job_id = job_ids("e2e-merge-tree")
    result = runner(
        "submit", str(tmp_path / "in"), "--merge", "--files-per-task", "2", "--top", "4",
        "--outputs", str(stack), "--json", "--job-id", job_id, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    merged = json.loads(result.stdout)["merged"]
    assert merged["inputs"] == 202
    assert [tuple(pair) for pair in merged["top"]] == reference_top(_all_words(paths), 4)
    batch = batch_client(stack_outputs)
    merges = {t.id: t for t in batch.list_tasks(job_id) if t.id.startswith("merge")}
    assert sorted(merges) == ["merge", "merge_1_0", "merge_1_1"]
    assert merges["merge"].depends_on.task_ids == ["merge_1_0", "merge_1_1"]
    assert [len(merges[m].depends_on.task_ids) for m in ("merge_1_0", "merge_1_1")] == [100, 1]
    # Each task handed the merge above it one counts file, under the one prefix that
    # merge reads: 101 tasks' sums of their two inputs, then the two merges' sums.
    results = container_client(stack_outputs, stack_outputs.containers.output)
    handed = [b.name for b in results.list_blobs(name_starts_with=f"{job_id}/to-merge/")]
    by_merge = Counter(name.split("/")[2] for name in handed)
    assert by_merge == {"merge_1_0": 100, "merge_1_1": 1, "merge": 2}
    assert sum(name.endswith("/combined_COUNTS.tsv.gz") for name in handed) == 101
    for task in merges.values():
        prefixes = [f.blob_prefix for f in task.resource_files if f.blob_prefix]
        assert prefixes == [f"{job_id}/to-merge/{task.id}/"]


def test_a_failed_input_fails_the_merge_naming_it(stack, job_ids, tmp_path):
    """Without --merge-partial, a failed input blocks the merge; the runner ends the
    waiting merge rather than waiting forever, and says which input it was."""
    script = tmp_path / "count.py"
    script.write_text(
        "import sys, pathlib\n"
        "src, out = sys.argv[1], pathlib.Path(sys.argv[2])\n"
        "if 'bad' in src: sys.exit('cannot read ' + src)\n"
        "out.mkdir(exist_ok=True)\n"
        "(out / 'n.txt').write_text(str(len(open(src).read().split())))\n"
    )
    reduce_script = tmp_path / "total.py"
    reduce_script.write_text(
        "import sys, pathlib\n"
        "inputs, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
        "out.mkdir(exist_ok=True)\n"
        "total = sum(int(p.read_text()) for p in inputs.rglob('*.txt'))\n"
        "(out / 'n.txt').write_text(str(total))\n"
    )
    folder = tmp_path / "in"
    folder.mkdir()
    for name, words in (("a.txt", 3), ("bad.txt", 2), ("c.txt", 5)):
        (folder / name).write_text("x " * words)
    common = [
        "submit", "in", "--script", str(script), "--merge-script", str(reduce_script),
        "--outputs", str(stack), "--task-retries", "0",
    ]  # fmt: skip
    blocked = runner(*common, "--job-id", job_ids("e2e-merge-blocked"), "--json", cwd=tmp_path)
    assert blocked.returncode == 1, blocked.stderr
    merged = json.loads(blocked.stdout)["merged"]
    assert merged["state"] == "completed"
    assert merged["failure"] == (
        "not run: 1 input(s) failed: in/bad.txt (--merge-partial merges the others)"
    )
    assert "merge failed: not run: 1 input(s) failed: in/bad.txt" in blocked.stderr
    assert "the merge cannot run; ended its 1 waiting merge task(s)" in blocked.stderr

    partial_job = job_ids("e2e-merge-partial")
    partial = runner(*common, "--merge-partial", "--job-id", partial_job, "--json", cwd=tmp_path)
    assert partial.returncode == 1, partial.stderr  # an input failed: still exit 1
    merged = json.loads(partial.stdout)["merged"]
    assert (merged["state"], merged["exit_code"], merged["missing"]) == (
        "completed",
        0,
        ["in/bad.txt"],
    )
    assert merged["files"] == ["n.txt"]
    assert (tmp_path / "results" / partial_job / "n.txt").read_text() == "8"

    table = runner(*common, "--merge-partial", "--job-id", partial_job, cwd=tmp_path)
    assert "merged (the results; missing 1: in/bad.txt): n.txt" in table.stdout


def test_merge_options_that_cannot_work_are_refused(tmp_path):
    nowhere = tmp_path / "nowhere.json"
    nowhere.write_text("{}")
    script = tmp_path / "s.py"
    script.write_text("")
    cases = {
        ("--script", str(script), "--merge"): "merges with its own --merge-script",
        ("--merge-script", str(tmp_path / "none.py")): "merge script not found",
        ("--merge", "--", "x"): "arguments after '--' need --script",
    }
    for args, message in cases.items():
        result = runner("submit", str(DATA[0]), *args, "--outputs", str(nowhere), cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert result.stderr.count("\n") == 1
