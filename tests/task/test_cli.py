"""The command line as a Batch node runs it: a subprocess of python3 on the script file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from task import topwords
from tests.task.reference import reference_top

SCRIPT = Path(topwords.__file__)
DATA = Path(__file__).resolve().parents[2] / "data"


def run(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    user: int | None = None,
    python: str = sys.executable,
    script: Path = SCRIPT,
):
    return subprocess.run(
        [python, str(script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        user=user,
        timeout=60,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_writes_text_and_json_outputs(tmp_path: Path):
    a = write(tmp_path / "alpha.txt", "The cat. The dog! the bird, a cat")
    b = write(tmp_path / "beta.log", "x y z")
    result = run(a, b, "--top", "2", "--output-dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "alpha_OUTPUT.json",
        "alpha_OUTPUT.txt",
        "beta_OUTPUT.json",
        "beta_OUTPUT.txt",
    ]
    assert (out / "alpha_OUTPUT.txt").read_text() == "the\t3\ncat\t2\n"
    assert (out / "beta_OUTPUT.txt").read_text() == "x\t1\ny\t1\n"
    document = json.loads((out / "alpha_OUTPUT.json").read_text())
    assert document["input"] == str(a)
    assert document["top"] == [["the", 3], ["cat", 2]]
    assert document["total_words"] == 8
    assert document["distinct_words"] == 5
    assert document["bytes"] == a.stat().st_size
    assert document["seconds"] >= 0
    assert document["script_sha256"] == hashlib.sha256(SCRIPT.read_bytes()).hexdigest()
    assert not {"node", "task", "job", "pool"} & document.keys()
    assert "alpha.txt: 8 words, 5 distinct, top 2:" in result.stdout


def test_defaults_top_three_into_output_under_the_working_directory(tmp_path: Path):
    source = write(tmp_path / "s.txt", "d d d d c c c b b a e")
    assert run(source.name, cwd=tmp_path).returncode == 0
    assert (tmp_path / "output" / "s_OUTPUT.txt").read_text() == "d\t4\nc\t3\nb\t2\n"


def test_records_the_batch_environment(tmp_path: Path):
    source = write(tmp_path / "s.txt", "word")
    env = {
        "AZ_BATCH_NODE_ID": "tvm-1",
        "AZ_BATCH_TASK_ID": "task-7",
        "AZ_BATCH_JOB_ID": "job-3",
        "AZ_BATCH_POOL_ID": "pool-a",
    }
    assert run(source, cwd=tmp_path, env=env).returncode == 0
    document = json.loads((tmp_path / "output" / "s_OUTPUT.json").read_text())
    assert (document["node"], document["task"], document["job"], document["pool"]) == (
        "tvm-1",
        "task-7",
        "job-3",
        "pool-a",
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sample_data_matches_the_reference(tmp_path: Path, workers: str):
    inputs = sorted(DATA.glob("*.txt"))
    assert len(inputs) == 3
    result = run(*inputs, "--workers", workers, "--output-dir", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for path in inputs:
        lines = (tmp_path / f"{path.stem}_OUTPUT.txt").read_text().splitlines()
        expected = reference_top(path.read_bytes(), 3)
        assert [tuple(line.split("\t")) for line in lines] == [(w, str(n)) for w, n in expected]


def test_empty_file_is_an_empty_result(tmp_path: Path):
    source = tmp_path / "empty.txt"
    source.write_bytes(b"")
    result = run(source, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "output" / "empty_OUTPUT.txt").read_text() == ""
    document = json.loads((tmp_path / "output" / "empty_OUTPUT.json").read_text())
    assert (document["top"], document["total_words"], document["bytes"]) == ([], 0, 0)


def test_same_results_with_one_and_many_workers_on_a_larger_file(tmp_path: Path):
    source = tmp_path / "big.txt"
    source.write_bytes((DATA / "taskdata1.txt").read_bytes() * 4000)  # about 9 MB: split
    one = run(source, "--workers", "1", "--top", "50", "--output-dir", "one", cwd=tmp_path)
    two = run(source, "--workers", "2", "--top", "50", "--output-dir", "two", cwd=tmp_path)
    assert one.returncode == two.returncode == 0
    assert (tmp_path / "one" / "big_OUTPUT.txt").read_text() == (
        tmp_path / "two" / "big_OUTPUT.txt"
    ).read_text()


# --- Bad input: one line on stderr, a distinct exit status, nothing written ----------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top", "0", "x.txt"], "--top must be at least 1, got 0"),
        (["--top", "-2", "x.txt"], "--top must be at least 1, got -2"),
        (["--top", "three", "x.txt"], "--top must be a whole number, got 'three'"),
        (["--top", "1.5", "x.txt"], "--top must be a whole number, got '1.5'"),
        (["--workers", "0", "x.txt"], "--workers must be at least 1, got 0"),
        ([], "no input files given"),
        (["--bogus", "x.txt"], "unrecognized arguments: --bogus"),
        (["x.txt", "sub/x.txt"], "would both write x_OUTPUT.txt"),
        (["x.txt", "x.txt"], "would both write x_OUTPUT.txt"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str):
    write(tmp_path / "x.txt", "words")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "x.txt", "words")
    result = run(*args, cwd=tmp_path)
    assert result.returncode == topwords.EXIT_USAGE == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("topwords: error: ")
    assert message in result.stderr
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize("case", ["missing", "directory", "output under a file"])
def test_input_errors_exit_3_and_write_nothing(tmp_path: Path, case: str):
    good = write(tmp_path / "good.txt", "fine words")
    output = tmp_path / "out"
    if case == "missing":
        bad, message = tmp_path / "nope.txt", "input not found:"
    elif case == "directory":
        bad, message = tmp_path / "folder", "input is a directory:"
        bad.mkdir()
    else:
        bad, message = write(tmp_path / "other.txt", "x"), "cannot create output directory"
        output = write(tmp_path / "a-file", "") / "out"
    result = run(good, bad, "--output-dir", output, cwd=tmp_path)
    assert result.returncode == topwords.EXIT_INPUT == 3, result.stderr
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not output.exists()


def test_unreadable_input_exits_3_and_writes_nothing():
    """Root reads anything, so as root the script runs as 'nobody' on the system python3."""
    python, user = sys.executable, None
    if os.geteuid() == 0:
        python, user = "/usr/bin/python3", 65534
        if not os.access(python, os.X_OK):
            pytest.skip("running as root with no system python3 to run as 'nobody'")
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        directory.chmod(0o777)
        script = directory / "topwords.py"
        shutil.copy(SCRIPT, script)
        good = write(directory / "good.txt", "fine words")
        bad = write(directory / "secret.txt", "hidden")
        bad.chmod(0o000)
        result = run(good, bad, cwd=directory, user=user, python=python, script=script)
        assert result.returncode == 3, result.stderr
        assert result.stderr == f"topwords: error: cannot read {bad}: Permission denied\n"
        assert not (directory / "output").exists()


def test_no_temporary_files_are_left_behind(tmp_path: Path):
    source = write(tmp_path / "s.txt", "a b c")
    assert run(source, "--output-dir", "out", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s_OUTPUT.json", "s_OUTPUT.txt"]


def test_existing_outputs_are_replaced_whole(tmp_path: Path):
    source = write(tmp_path / "s.txt", "new")
    out = tmp_path / "output"
    out.mkdir()
    (out / "s_OUTPUT.txt").write_text("old\t99\nstale\t1\n")
    assert run(source, cwd=tmp_path).returncode == 0
    assert (out / "s_OUTPUT.txt").read_text() == "new\t1\n"
