"""What a newcomer does first, end to end on the stack under test: the README's own
script, inputs named as they were given everywhere (the table, the result documents,
`wait`, `download`), a job's inputs in storage taken by the name its table shows, a
merge's files counted, and a results folder that cannot be written refused up front."""

from __future__ import annotations

import json
from pathlib import Path

from runner.clients import connect
from tests.e2e.conftest import ROOT, batch_client, job_exists, runner
from tests.runner.test_tasks_and_packing import CLEAN
from tests.task.reference import reference_top

DATA = sorted((ROOT / "data").glob("*.txt"))


def test_the_readme_script_writes_into_its_output_folder(stack, job_ids, tmp_path):
    (tmp_path / "clean.py").write_text(CLEAN)
    (tmp_path / "sales.csv").write_text("north,1\nsouth,2\n")
    job_id = job_ids("e2e-clean")
    result = runner(
        "submit", "sales.csv", "--script", "clean.py", "--outputs", str(stack),
        "--job-id", job_id, "--no-report", "--", "{input}", "--out", "{output_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "results" / job_id / "sales.csv" / "lines.txt").read_text() == "2\n"
    assert "1 task added on pool" in result.stderr  # a task per input, as ever


def test_inputs_are_named_as_given_in_results_wait_and_download(stack, job_ids, tmp_path):
    (tmp_path / "my data").mkdir()
    (tmp_path / "my data" / "Q3 summary.txt").write_text("alpha beta beta")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("gamma gamma delta")
    absolute = str(tmp_path / "my data" / "Q3 summary.txt")
    given = [absolute, "notes.txt"]  # one absolute, one relative: no one prefix names both
    job_id = job_ids("e2e-named")
    common = ("--outputs", str(stack), "--json", "--no-report")
    submitted = runner("submit", *given, "--job-id", job_id, *common, cwd=tmp_path / "work")
    assert submitted.returncode == 0, submitted.stderr
    assert [task["input"] for task in json.loads(submitted.stdout)["tasks"]] == given
    out = tmp_path / "work" / "results" / job_id
    documents = [
        out / "my data" / "Q3 summary.txt" / "Q3_summary_OUTPUT.json",
        out / "work" / "notes.txt" / "notes_OUTPUT.json",
    ]
    for document, name in zip(documents, given, strict=True):
        read = json.loads(document.read_text())
        assert read["input"] == name  # not the node's "Q3_summary.txt"
        assert [tuple(pair) for pair in read["top"]][:1] in ([("beta", 2)], [("gamma", 2)])

    # wait, from anywhere, shows what submit showed, and fetches nothing it has.
    waited = runner("wait", job_id, "--out", str(out), *common, cwd=tmp_path)
    assert waited.returncode == 0, waited.stderr
    assert [task["input"] for task in json.loads(waited.stdout)["tasks"]] == given
    assert f"downloaded 0 files to {out} (4 already there)" in waited.stderr

    # download names them so too, and a second download is a listing only.
    again = tmp_path / "again"
    copy = again / documents[0].relative_to(out)
    written = []
    for _ in range(2):
        fetched = runner(
            "download", job_id, "--outputs", str(stack), "--out", str(again), cwd=tmp_path
        )
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == f"4 files in {again}\n"
        assert json.loads(copy.read_text())["input"] == absolute
        written.append(copy.stat().st_ino)
    assert written[0] == written[1]  # not written again


def test_a_jobs_inputs_in_storage_are_taken_by_the_name_its_table_shows(
    stack, stack_outputs, job_ids, tmp_path
):
    prefix = job_ids("e2e-kept")
    inputs = connect(stack_outputs).container(stack_outputs.containers.input)
    text = b"red green green"
    inputs.upload_blob(f"{prefix}/colours.txt", text)
    try:
        job_id = job_ids("e2e-blobs-named")
        name = f"{stack_outputs.containers.input}/{prefix}"  # as a table names its inputs
        result = runner(
            "submit", "--blobs", name, "--outputs", str(stack), "--json", "--job-id", job_id,
            "--no-report", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        (task,) = json.loads(result.stdout)["tasks"]
        assert task["input"] == f"{name}/colours.txt"
        assert [tuple(pair) for pair in task["top"]] == reference_top(text, 3)
        document = tmp_path / "results" / job_id / name / "colours.txt" / "colours_OUTPUT.json"
        assert json.loads(document.read_text())["input"] == f"{name}/colours.txt"
    finally:
        inputs.delete_blob(f"{prefix}/colours.txt")


def test_a_merge_counts_the_files_it_downloads(stack, job_ids, tmp_path):
    job_id = job_ids("e2e-merge-count")
    result = runner(
        "submit", *map(str, DATA), "--merge", "--outputs", str(stack), "--job-id", job_id,
        "--no-report", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = tmp_path / "results" / job_id
    assert len([path for path in out.rglob("*") if path.is_file()]) == 8
    assert f"downloaded 8 files to {Path('results') / job_id}" in result.stderr


def test_a_results_folder_that_cannot_be_written_is_refused_before_any_upload(
    stack, stack_outputs, job_ids, tmp_path
):
    job_id = job_ids("e2e-proc-out")
    result = runner(
        "submit", str(DATA[0]), "--out", "/proc/nope", "--outputs", str(stack),
        "--job-id", job_id, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: --out /proc/nope: cannot create a folder there")
    assert result.stderr.count("\n") == 1
    assert not job_exists(batch_client(stack_outputs), job_id)
    assert list(tmp_path.iterdir()) == []


def test_a_results_folder_that_fails_at_download_is_one_line(stack, job_ids, tmp_path):
    (tmp_path / "a.txt").write_text("alpha alpha beta")
    job_id = job_ids("e2e-blocked-out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("a file where the input's results folder goes")
    result = runner(
        "submit", "a.txt", "--out", "out", "--outputs", str(stack), "--job-id", job_id,
        "--no-report", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last == (
        f"error: job {job_id}: cannot write out/a.txt: File exists; its results stay in "
        f"storage: `download {job_id} --out DIR` fetches them"
    )
    assert "Traceback" not in result.stderr
