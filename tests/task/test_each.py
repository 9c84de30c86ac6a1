"""task/each.py: a per-file program run over each of a task's inputs, as on a node."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from runner import packing
from task import each, topwords

TOPWORDS = Path(__file__).resolve().parents[2] / "task" / "topwords.py"
EACH = Path(each.__file__)


def _task(directory: Path, texts: dict[str, str]) -> None:
    for key, text in texts.items():
        folder = directory / "inputs" / key
        folder.mkdir(parents=True)
        (folder / "doc.txt").write_text(text)


def test_runs_topwords_in_process_with_each_input_in_its_own_folder(tmp_path: Path):
    _task(tmp_path, {"b-2": "beta beta alpha", "a-1": "alpha alpha alpha beta"})
    done = subprocess.run(
        [sys.executable, str(EACH), "--in-process", str(TOPWORDS), "{input}", "--top", "1",
         "--output-dir", "{output_dir}", "--workers", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = json.loads((tmp_path / "status.json").read_text())
    assert list(status) == ["a-1", "b-2"]
    assert all(entry["exit_code"] == 0 for entry in status.values())
    a = json.loads((tmp_path / "out" / "a-1" / "doc_OUTPUT.json").read_text())
    b = json.loads((tmp_path / "out" / "b-2" / "doc_OUTPUT.json").read_text())
    assert (a["top"], b["top"]) == ([["alpha", 3]], [["beta", 2]])


@pytest.mark.parametrize("inside", [True, False])
def test_a_program_imports_the_modules_staged_beside_it(tmp_path: Path, inside: bool):
    """--code files sit beside the script in the job's program folder, not in the task's
    working directory: in-process or as a process, the script imports them."""
    program = tmp_path / "program"
    program.mkdir()
    (program / "helpers.py").write_text("def words(text):\n    return len(text.split())\n")
    (program / "count.py").write_text(
        "import pathlib, sys\nimport helpers\n"
        "def main(argv):\n"
        "    out = pathlib.Path(argv[1]); out.mkdir(parents=True, exist_ok=True)\n"
        "    (out / 'n.txt').write_text(str(helpers.words(pathlib.Path(argv[0]).read_text())))\n"
        "    return 0\n"
        "if __name__ == '__main__':\n    sys.exit(main(sys.argv[1:]))\n"
    )
    work = tmp_path / "wd"
    _task(work, {"a-1": "one two three"})
    flag = ["--in-process"] if inside else []
    done = subprocess.run(
        [sys.executable, str(EACH), *flag, str(program / "count.py"), "{input}", "{output_dir}"],
        cwd=work, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (work / "out" / "a-1" / "n.txt").read_text() == "3"


def test_a_failing_input_is_recorded_and_the_others_still_run(tmp_path: Path):
    _task(tmp_path, {"1": "fine", "2": "poison", "3": "fine too"})
    script = tmp_path / "check.sh"
    script.write_text(
        '#!/bin/sh\ngrep -q poison "$1" && { echo "bad: $1" >&2; exit 5; }\ncp "$1" "$2/"\n'
    )
    script.chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(EACH), "check.sh", "{input}", "{output_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    status = json.loads((tmp_path / "status.json").read_text())
    assert {key: entry["exit_code"] for key, entry in status.items()} == {"1": 0, "2": 5, "3": 0}
    assert status["2"]["stderr_tail"] == ["bad: inputs/2/doc.txt"]
    assert "2: bad: inputs/2/doc.txt" in done.stderr  # the task's own stderr names it too
    assert (tmp_path / "out" / "3" / "doc.txt").read_text() == "fine too"


def test_the_runner_and_the_wrapper_agree_on_the_layout():
    assert str(each.INPUTS) == packing.INPUTS_DIR
    assert str(each.STATUS) == packing.STATUS_FILE
    assert Path(each.__file__).resolve() == packing.WRAPPER


def test_a_packed_topwords_task_hands_the_merge_one_file_of_its_inputs_counts(tmp_path: Path):
    _task(tmp_path, {"a-1": "alpha alpha beta", "b-2": "beta gamma", "c-3": "alpha"})
    done = subprocess.run(
        [sys.executable, str(EACH), "--in-process", str(TOPWORDS), "{input}", "--top", "1",
         "--output-dir", "{output_dir}", "--workers", "1", "--counts-dir", "{merge_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    handed = sorted(p.relative_to(tmp_path) for p in (tmp_path / "merge").rglob("*"))
    assert handed == [Path("merge/combined_COUNTS.tsv.gz")]
    counts: Counter[bytes] = Counter()
    assert topwords.read_counts(tmp_path / handed[0], counts) == 3
    assert counts == Counter({b"alpha": 3, b"beta": 2, b"gamma": 1})


HANDS_OVER = """
import sys
from pathlib import Path

def main(argv):
    source, merge_dir = Path(argv[0]), Path(argv[1])
    (merge_dir / "part.txt").write_text(source.read_text())
    return 1 if "poison" in source.read_text() else 0

def combine(folders, into):
    if any("boom" in (f / "part.txt").read_text() for f in folders):
        raise RuntimeError("cannot combine")
    (into / "all.txt").write_text("+".join((f / "part.txt").read_text() for f in folders))
"""


def test_combine_gets_the_succeeded_inputs_and_the_task_hands_over_only_its_result(
    tmp_path: Path,
):
    (tmp_path / "hands.py").write_text(HANDS_OVER)
    _task(tmp_path, {"1": "one", "2": "poison", "3": "three"})
    command = [sys.executable, str(EACH), "--in-process", "hands.py", "{input}", "{merge_dir}"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1  # an input failed: the task still says so
    assert [p.name for p in (tmp_path / "merge").iterdir()] == ["all.txt"]  # not the failed one
    assert (tmp_path / "merge" / "all.txt").read_text() == "one+three"


def test_a_failed_combine_fails_the_task_and_hands_over_every_input_as_it_was(tmp_path: Path):
    (tmp_path / "hands.py").write_text(HANDS_OVER)
    _task(tmp_path, {"1": "one", "2": "boom"})
    command = [sys.executable, str(EACH), "--in-process", "hands.py", "{input}", "{merge_dir}"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "each: error: combining" in done.stderr
    assert "cannot combine" in done.stderr
    assert sorted(p.name for p in (tmp_path / "merge").iterdir()) == ["1", "2"]
    assert json.loads((tmp_path / "status.json").read_text())["2"]["exit_code"] == 0
