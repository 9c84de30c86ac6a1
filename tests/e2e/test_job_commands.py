"""The job commands (status, jobs, logs, download, delete) and resuming after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.e2e.conftest import ROOT, Gate, interruptible, runner

DATA = sorted((ROOT / "data").glob("*.txt"))


def test_status_jobs_logs_download_delete(stack, job_ids, tmp_path):
    job_id = job_ids("e2e-commands")
    submitted = runner(
        "submit", str(DATA[0]), "--outputs", str(stack), "--job-id", job_id,
        "--keep-logs", cwd=tmp_path,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert "removed its 1 input blob " in submitted.stderr  # no --keep-inputs
    status = runner("status", job_id, "--outputs", str(stack), cwd=tmp_path)
    assert status.stdout.strip() == (
        f"{job_id}: completed; active 0, running 0, succeeded 1, failed 0"
    )
    listed = runner("jobs", "--outputs", str(stack), cwd=tmp_path)
    header, *rows = [line.split() for line in listed.stdout.splitlines()]
    assert header == ["job", "state", "created"]
    assert [job_id, "completed"] in [row[:2] for row in rows]  # among whatever else runs
    task_id = submitted.stdout.splitlines()[1].split()[1]
    logs = runner("logs", job_id, task_id, "--outputs", str(stack), cwd=tmp_path)
    assert logs.returncode == 0, logs.stderr
    assert "top 3:" in logs.stdout
    fetched = runner("download", job_id, "--out", "again", "--outputs", str(stack), cwd=tmp_path)
    assert fetched.stdout.strip() == "2 files in again"  # the results only
    assert sorted(p.name for p in (tmp_path / "again" / DATA[0].name).iterdir()) == [
        "taskdata1_OUTPUT.json",
        "taskdata1_OUTPUT.txt",
    ]
    with_logs = runner(
        "download", job_id, "--logs", "--out", "all", "--outputs", str(stack), cwd=tmp_path
    )
    assert with_logs.stdout.strip() == "4 files in all"
    assert "top 3:" in (tmp_path / "all" / "logs" / task_id / "stdout.txt").read_text()
    assert (tmp_path / "all" / "logs" / task_id / "stderr.txt").is_file()
    deleted = runner("delete", job_id, "--outputs", str(stack), cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith(
        f"deleted job {job_id}; its 4 input and result blobs stay in storage: "
    )  # said, with the command that removes them
    assert deleted.stdout.strip().endswith(f"delete {job_id} --inputs removes them")
    gone = runner("status", job_id, "--outputs", str(stack), cwd=tmp_path)
    assert gone.returncode == 2
    assert f"no job {job_id} on this stack" in gone.stderr
    # With the job (and its nodes' files) gone, the logs come from the output container.
    logs = runner("logs", job_id, task_id, "--outputs", str(stack), cwd=tmp_path)
    assert logs.returncode == 0, logs.stderr
    assert "top 3:" in logs.stdout
    blobs = runner("delete", job_id, "--inputs", "--outputs", str(stack), cwd=tmp_path)
    assert blobs.returncode == 0, blobs.stderr
    assert blobs.stdout.strip() == (
        f"job {job_id} was already deleted; deleted its 4 blobs"  # results and logs
    )


def test_ctrl_c_during_monitoring_then_wait(stack, job_ids, tmp_path):
    gate = Gate(tmp_path)  # the tasks run until the Ctrl-C is in (or 3 s on Azure)
    job_id = job_ids("e2e-interrupted")
    for name in ("one.txt", "two.txt"):
        (tmp_path / name).write_text(name)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "runner", "submit", "one.txt", "two.txt",
            "--outputs", str(stack), "--job-id", job_id, "--script", *gate.arguments(3),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )  # fmt: skip
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "tasks added" in line:
            break
    os.kill(process.pid, signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    gate.open()
    assert process.returncode == 130, "".join(lines) + rest
    resume = f"{sys.executable} -m runner wait {job_id} --outputs {stack}"
    assert f"to resume: {resume}" in rest

    resumed = runner(*resume.split()[3:], "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    results = tmp_path / "results" / job_id
    assert sorted(p.name for p in results.glob("*/*.done")) == ["one.txt.done", "two.txt.done"]


COUNT_SCRIPT = """\
import pathlib, sys
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
(out / (name + ".len")).write_text(str(len(pathlib.Path(name).read_text())))
"""


def test_a_script_job_shows_its_output_files_and_wait_knows_it(stack, job_ids, tmp_path):
    """The table comes from the task program: a --script job lists the files each task
    wrote (no empty top-words column), its job is named after the script, and `wait`
    tells the program from the job itself."""
    script = tmp_path / "count_chars.py"
    script.write_text(COUNT_SCRIPT)
    (tmp_path / "one.txt").write_text("twelve chars")
    submitted = runner(
        "submit", "one.txt", "--outputs", str(stack), "--script", str(script),
        "--", "{input}", "{output_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    header, row = submitted.stdout.splitlines()
    assert header.split() == ["input", "task", "result", "output", "files"]
    assert row.split()[2:] == ["ok", "one.txt.len"]
    job_id = submitted.stderr.split("job ", 1)[1].split(":", 1)[0]
    assert job_id.startswith("count-chars-")

    waited = runner("wait", job_id, "--outputs", str(stack), "--out", "again", cwd=tmp_path)
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout == submitted.stdout
    words_job = job_ids("e2e-words")
    words = runner(
        "submit", "one.txt", "--outputs", str(stack), "--job-id", words_job, cwd=tmp_path
    )
    assert words.returncode == 0, words.stderr
    again = runner("wait", words_job, "--outputs", str(stack), cwd=tmp_path)
    assert again.stdout.splitlines()[0].split()[-2:] == ["top", "words"]
    assert again.stdout == words.stdout


def test_a_job_whose_tasks_all_failed_does_not_look_done(stack, job_ids, tmp_path):
    """Its stderr came from a file: it reaches the terminal escaped (a name with a control
    character is refused at submit)."""
    job_id = job_ids("e2e-all-failed")
    name = "bad name.txt"
    (tmp_path / name).write_text("words")
    (tmp_path / "fail.py").write_text("import sys\nsys.exit('\\x1b]0;owned\\x07 no')\n")
    submitted = runner(
        "submit", name, "--outputs", str(stack), "--job-id", job_id, "--script", "fail.py",
        "--task-retries", "0", "--no-report", "--", "{input}", cwd=tmp_path,
    )  # fmt: skip
    assert submitted.returncode == 1, submitted.stderr
    assert "bad name.txt" in submitted.stdout
    assert "\\x1b]0;owned\\x07 no" in submitted.stderr
    assert "\x1b" not in submitted.stdout + submitted.stderr
    listed = runner("jobs", "--outputs", str(stack), cwd=tmp_path)
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(f"{job_id} ")]
    assert "completed, 1 of 1 tasks failed" in row
    status = runner("status", job_id, "--outputs", str(stack), cwd=tmp_path)
    assert status.returncode == 1  # a pipeline polling status sees the failure
    assert status.stdout.strip().endswith("succeeded 0, failed 1")
