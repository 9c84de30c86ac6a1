"""Inputs as users have them, end to end on the stack under test: any file name,
directories with the same base names, filters, and lists from a file or standard input."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError

from runner.clients import connect
from tests.e2e.conftest import runner
from tests.task.reference import reference_top

NAMES = [
    "Q3 summary.txt",
    "données.txt",  # NFC
    "donne\u0301es.txt",  # the same word in NFD: another file
    'it\'s "quoted" (1) #2 %20.txt',
    "-leading dash.txt",
    ".leading dot.txt",
    "$(touch pwned) `x`.txt",
    "x" * 240 + ".txt",
]


def test_any_file_name_in_one_job(stack, job_ids, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, name in enumerate(NAMES):
        (corpus / name).write_text(f"{name} alpha beta beta gamma gamma gamma {i}")
    result = runner(
        "submit", "corpus", "--outputs", str(stack), "--json", "--job-id", job_ids("e2e-names"),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    by_input = {Path(task["input"]).name: task for task in document["tasks"]}
    assert set(by_input) == set(NAMES)
    for name in NAMES:
        expected = reference_top((corpus / name).read_bytes(), 3)
        assert [tuple(pair) for pair in by_input[name]["top"]] == expected, name
    assert not (tmp_path / "pwned").exists()  # no name reached a shell unquoted


def test_same_base_names_filters_and_lists(stack, tmp_path):
    for directory in ("a", "b"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "report.txt").write_text(f"{directory} {directory} shared")
        (tmp_path / directory / "notes.log").write_text("skip me")
    both = runner(
        "submit", "a", "b", "--exclude", "*.log", "--outputs", str(stack), "--json",
        "--out", "out", cwd=tmp_path,
    )  # fmt: skip
    assert both.returncode == 0, both.stderr
    # The results mirror the inputs' tree, a folder per input.
    for directory in ("a", "b"):
        document = tmp_path / "out" / directory / "report.txt" / "report_OUTPUT.json"
        assert json.loads(document.read_text())["top"][0] == [directory, 2]
    tasks = json.loads(both.stdout)["tasks"]
    assert [task["input"] for task in tasks] == ["a/report.txt", "b/report.txt"]
    assert [task["top"][0] for task in tasks] == [["a", 2], ["b", 2]]

    (tmp_path / "list.txt").write_text("# the reports\na/report.txt\n\nb/report.txt\n")
    listed = runner(
        "submit", "--from-file", "list.txt", "--outputs", str(stack), "--json", cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    assert [t["input"] for t in json.loads(listed.stdout)["tasks"]] == [
        "a/report.txt",
        "b/report.txt",
    ]
    piped = subprocess.run(
        [sys.executable, "-m", "runner", "submit", "--from-file", "-", "a/report.txt",
         "--outputs", str(stack), "--json"],
        input="b/report.txt\n", capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert len(json.loads(piped.stdout)["tasks"]) == 2


def test_blobs_already_in_storage_are_read_where_they_are(stack, stack_outputs, job_ids, tmp_path):
    service = connect(stack_outputs).blobs
    job_id = job_ids("e2e-blobs")
    stored = job_ids("e2e-stored")  # blobs of this run's own, on a stack others share
    texts = {
        ("input", f"{stored}/one.txt"): b"one one two",
        ("input", f"{stored}/deeper/two words.txt"): b"three three three two",
        ("corpus", f"{stored}/three.txt"): b"red green green",
    }
    if not service.get_container_client("corpus").exists():
        service.create_container("corpus")
    for (container, name), content in texts.items():
        service.get_blob_client(container, name).upload_blob(content, overwrite=True)
    inputs = service.get_container_client("input")

    def listed() -> set[str]:  # this test's blobs: its stored ones, and any of its job
        return {
            blob.name
            for prefix in (f"{stored}/", f"{job_id}/")
            for blob in inputs.list_blobs(name_starts_with=prefix)
        }

    listed_before = listed()
    try:
        result = runner(
            "submit", "--blobs", stored, "--blobs", f"corpus/{stored}", "--outputs", str(stack),
            "--json", "--job-id", job_id, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "(0 uploaded" in result.stderr
        tasks = {task["input"]: task for task in json.loads(result.stdout)["tasks"]}
        assert set(tasks) == {f"{container}/{name}" for container, name in texts}
        for (container, name), content in texts.items():
            top = [tuple(p) for p in tasks[f"{container}/{name}"]["top"]]
            assert top == reference_top(content, 3)
            assert (tmp_path / "results" / job_id / container / name).is_dir()
        # Nothing uploaded, nothing deleted.
        assert listed() == listed_before
        assert service.get_blob_client("corpus", f"{stored}/three.txt").exists()

        missing = runner("submit", "--blobs", "nothing-here", "--outputs", str(stack), cwd=tmp_path)
        assert missing.returncode == 2
        assert "no blob under input/nothing-here" in missing.stderr
    finally:  # a stack that runs the suite again and again keeps none of them
        for container, name in texts:
            with contextlib.suppress(ResourceNotFoundError):
                service.get_blob_client(container, name).delete_blob()
