"""task/merge.py: per-file counts merged, in one step or a tree, equal topwords run over
every input's words together."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from task import merge, topwords
from tests.task.reference import reference_top
from tests.task.test_properties import ALPHABET

TASK = Path(topwords.__file__).resolve().parent


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TASK / script), *args], cwd=cwd, capture_output=True, text=True
    )


def _per_file_counts(files: list[bytes], root: Path) -> Path:
    """Each file's counts, as per-file tasks write them, in a folder of its own."""
    for index, data in enumerate(files):
        source = root / "sources" / f"f{index}.txt"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(data)
        out = root / "inputs" / f"task-{index}" / "deep" / "path"
        args = [str(source), "--counts-dir", str(out), "--output-dir", str(root / "results")]
        done = topwords.main([*args, "--workers", "1"])
        assert done == 0
    return root / "inputs"


def _merged_top(directory: Path) -> list[tuple[str, int]]:
    document = json.loads((directory / "merged_OUTPUT.json").read_text())
    return [(word, count) for word, count in document["top"]]


texts = st.lists(
    st.text(alphabet=ALPHABET, max_size=60).map(str.encode) | st.binary(max_size=20),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(files=texts, n=st.integers(1, 8))
def test_merged_top_equals_topwords_over_all_words(tmp_path_factory, files, n):
    root = tmp_path_factory.mktemp("merge")
    inputs = _per_file_counts(files, root)
    assert merge.main([str(inputs), "--top", str(n), "--output-dir", str(root / "out")]) == 0
    # Files joined by a newline: no word runs on from one file into the next.
    assert _merged_top(root / "out") == reference_top(b"\n".join(files), n)


def test_a_tree_of_merges_equals_one_merge(tmp_path):
    files = [f"alpha beta gamma {'beta ' * i} délta{i % 3}\n".encode() for i in range(9)]
    for group in range(3):  # three merges below the root, three inputs each
        below = _per_file_counts(files[group * 3 : group * 3 + 3], tmp_path / f"group{group}")
        middle = str(tmp_path / "middle" / f"merge_1_{group}")
        assert merge.main([str(below), "--counts-only", "--output-dir", middle]) == 0
    root = ["--top", "4", "--output-dir", str(tmp_path / "out")]
    assert merge.main([str(tmp_path / "middle"), *root]) == 0
    assert _merged_top(tmp_path / "out") == reference_top(b"\n".join(files), 4)
    document = json.loads((tmp_path / "out" / "merged_OUTPUT.json").read_text())
    assert document["inputs"] == 9  # counted through the middle merges' headers
    assert (tmp_path / "out" / "merged_OUTPUT.txt").read_text().splitlines()[0] == "beta\t45"


def test_counts_files_are_exact_sorted_and_reproducible(tmp_path):
    source = tmp_path / "a.txt"
    source.write_text("b a b, C c c\n")
    for run in ("one", "two"):
        topwords.main(
            [str(source), "--counts-dir", str(tmp_path / run), "--output-dir", str(tmp_path)]
        )
    first = (tmp_path / "one" / "a_COUNTS.tsv.gz").read_bytes()
    assert first == (tmp_path / "two" / "a_COUNTS.tsv.gz").read_bytes()  # no time stamp
    lines = gzip.decompress(first).decode().splitlines()
    assert json.loads(lines[0]) == {"format": topwords.COUNTS_FORMAT, "inputs": 1}
    assert lines[1:] == ["a\t1", "b\t2", "c\t3"]


def test_without_counts_no_counts_file(tmp_path):
    source = tmp_path / "a.txt"
    source.write_text("x y\n")
    topwords.main([str(source), "--output-dir", str(tmp_path / "out")])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_OUTPUT.json", "a_OUTPUT.txt"]


def test_no_counts_and_bad_counts_are_one_line_exit_3(tmp_path):
    (tmp_path / "empty").mkdir()
    nothing = _run("merge.py", "empty", cwd=tmp_path)
    assert (nothing.returncode, nothing.stderr.count("\n")) == (3, 1)
    assert "no *_COUNTS.tsv.gz files below empty" in nothing.stderr
    missing = _run("merge.py", "nowhere", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        3,
        "merge: error: inputs directory not found: nowhere\n",
    )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x_COUNTS.tsv.gz").write_bytes(b"not gzip")
    bad = _run("merge.py", "bad", cwd=tmp_path)
    assert (bad.returncode, bad.stderr.count("\n")) == (3, 1)
    assert not (tmp_path / "output").exists()  # nothing half-written
    usage = _run("merge.py", "bad", "--top", "0", cwd=tmp_path)
    assert usage.returncode == 2


def test_runs_as_staged_on_a_node(tmp_path):
    """On a node merge.py and topwords.py lie side by side with no package around them."""
    for name in ("merge.py", "topwords.py"):
        (tmp_path / name).write_bytes((TASK / name).read_bytes())
    (tmp_path / "in" / "t").mkdir(parents=True)
    (tmp_path / "doc.txt").write_text("the end of the story\n")
    per_file = [str(tmp_path / "doc.txt"), "--counts-dir", str(tmp_path / "in/t")]
    assert topwords.main(per_file) == 0
    done = subprocess.run(
        [sys.executable, "merge.py", "in", "--output-dir", "out", "--top", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "AZ_BATCH_TASK_ID": "merge"},
    )
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "out" / "merged_OUTPUT.json").read_text())
    assert (document["top"], document["task"]) == ([["the", 2]], "merge")
