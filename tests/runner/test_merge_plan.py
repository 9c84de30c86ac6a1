"""The merge tree: every task merged exactly once, no merge naming more than FAN_IN tasks,
and ids that no input's task id can take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import merge
from runner.fingerprint import Fingerprint
from runner.inputs import Input, task_id_for
from runner.packing import pack


def _leaves(count: int) -> list[tuple[str, str]]:
    return [(f"in-{i:08x}", f"job/results/in-{i:08x}/") for i in range(count)]


@pytest.mark.parametrize(
    ("leaves", "levels"),
    [(1, [1]), (100, [1]), (101, [2, 1]), (10_000, [100, 1]), (100_001, [1001, 11, 1])],
)
def test_the_tree_covers_every_task_once_within_the_fan_in(leaves, levels):
    tasks = merge.tree("job", _leaves(leaves))
    assert tasks[-1].task_id == merge.ROOT_ID
    assert tasks[-1].root
    assert sum(1 for task in tasks if task.root) == 1
    assert all(len(task.depends_on) <= merge.FAN_IN for task in tasks)
    assert all(len(",".join(task.depends_on)) < 64_000 for task in tasks)
    per_level = [sum(1 for t in tasks if t.task_id.startswith(f"merge_{lv}_")) for lv in (1, 2)]
    assert [n for n in per_level if n] + [1] == levels
    ids = [task.task_id for task in tasks]
    assert len(set(ids)) == len(ids)
    below = [dependency for task in tasks for dependency in task.depends_on]
    assert sorted(below) == sorted([leaf for leaf, _ in _leaves(leaves)] + ids[:-1])
    # A task is merged after what it depends on: nothing depends on a later task.
    position = {task_id: index for index, task_id in enumerate(ids)}
    assert all(position.get(d, -1) < position[t.task_id] for t in tasks for d in t.depends_on)


def test_upper_merges_read_the_merges_below_them():
    tasks = merge.tree("job", _leaves(150))
    assert tasks[-1].depends_on == ("merge_1_0", "merge_1_1")
    assert tasks[-1].sources == (
        ("job/merge/merge_1_0/", "merge_1_0"),
        ("job/merge/merge_1_1/", "merge_1_1"),
    )
    assert [task.output for task in tasks] == [
        "job/merge/merge_1_0/",
        "job/merge/merge_1_1/",
        "job/merge/merge/",
    ]
    assert tasks[0].sources[0] == ("job/results/in-00000000/", "in-00000000")


@pytest.mark.parametrize("leaves", [1, 100, 150, 10_001])
def test_handed_over_every_merge_reads_one_prefix_that_holds_what_its_tasks_hand_it(leaves):
    tasks = merge.tree("job", _leaves(leaves), handed=True)
    handed = merge.handoffs("job", tasks)
    assert set(handed) == {below for task in tasks for below in task.depends_on}
    for task in tasks:
        ((prefix, folder),) = task.sources
        assert (prefix, folder) == (f"job/to-merge/{task.task_id}/", "")
        # Everything it depends on hands over below its prefix, and nothing else does.
        inside = {below for below, to in handed.items() if to.startswith(prefix)}
        assert inside == set(task.depends_on)
        if task.root:
            assert task.output == "job/merge/merge/"  # downloaded as the job's merged result
        else:
            assert task.output == handed[task.task_id]
    assert not any(to.startswith("job/results/") for to in handed.values())


def test_merge_ids_never_meet_input_task_ids():
    for name in ("merge", "merge_1_0", "merge_1_0.txt", "MERGE", "merge-1-0"):
        assert not merge.is_merge_task(task_id_for(name))
    assert merge.is_merge_task("merge")
    assert merge.is_merge_task("merge_2_13")


def test_topwords_merges_read_only_what_tasks_hand_over(tmp_path: Path):
    files = [tmp_path / "a b.txt", tmp_path / "c.txt"]
    for path in files:
        path.write_text("x")
    inputs = [Input(path=str(p), relative=p.name, size=1) for p in files]
    topwords, script = merge.Merge.of_topwords(3), merge.Merge.of_script(tmp_path / "m.py", ())
    for per_task in (1, 2):  # packed or not, a task hands its counts to the merge over it
        groups = list(pack(inputs, per_task))
        (root,) = merge.plan("j", groups, topwords)
        assert root.sources == (("j/to-merge/merge/", ""),)
        assert merge.handoffs("j", [root]) == {
            group.task_id: f"j/to-merge/merge/{group.task_id}/" for group in groups
        }
        (by_script,) = merge.plan("j", groups, script)
        assert by_script.sources == tuple(
            (f"j/results/{group.task_id}/", group.task_id) for group in groups
        )
    assert script.arguments == ("{inputs_dir}", "{output_dir}")


def test_command_lines_at_the_root_and_below():
    how = merge.Merge.of_topwords(5)
    root, inner = (
        merge.MergeTask("merge", (), (), "j/merge/merge/", True),
        merge.MergeTask("merge_1_0", (), (), "j/to-merge/merge/merge_1_0/", False),
    )
    assert merge.command_line(how, root) == (
        "python3 merge.py merge-inputs --output-dir out --top 5"
    )
    assert merge.command_line(how, inner) == (
        "python3 merge.py merge-inputs --output-dir out --counts-only"
    )
    shell = merge.Merge.of_script(Path("reduce.sh"), ("{inputs_dir}", "x y", "{output_dir}"))
    assert merge.command_line(shell, root) == "./reduce.sh merge-inputs 'x y' out"


def test_only_partial_merges_satisfy_dependents_on_failure():
    assert merge.exit_conditions(None) is None
    assert merge.exit_conditions(merge.Merge.of_topwords(3)) is None
    conditions = merge.exit_conditions(merge.Merge.of_topwords(3, partial=True))
    assert conditions is not None
    for options in (
        conditions.default,
        conditions.pre_processing_error,
        conditions.file_upload_error,
    ):
        assert options is not None
        assert options.dependency_action == "satisfy"


def test_the_fingerprint_keeps_the_merge_and_names_a_change():
    plain = Fingerprint("topwords", "s", (), "1:x", False)
    merged = Fingerprint("topwords", "s", (), "1:x", False, 1, merge.Merge.of_topwords(3).record())
    partial = merge.Merge.of_topwords(3, partial=True).record()
    assert Fingerprint.read(merged.metadata()) == merged
    assert Fingerprint.read(plain.metadata()) == plain
    assert plain.differences(merged) == ["the merge (none then, merge.py now)"]
    assert merged.differences(Fingerprint("topwords", "s", (), "1:x", False, 1, partial)) == [
        "the merge (merge.py then, merge.py partial now)"
    ]
    recorded = merge.Recorded.read(json.loads(json.dumps(partial)))
    assert recorded == merge.Recorded(partial=True, topwords=True)
