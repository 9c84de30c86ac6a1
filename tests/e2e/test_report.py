"""`runner report` on the stack under test: a real job with a failing input, its report checked
against the service's own records and storage listings, then opened in a real browser
(the Debian Chromium, driven by playwright) with no network."""

from __future__ import annotations

import html
import os
import re
import time
from pathlib import Path

import pytest

from contract.outputs import StackOutputs
from runner.clients import connect, state_name
from tests.e2e.conftest import JobIds, runner
from tests.runner.test_report import remote_loads, tasks_by_id, without_bokehjs

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = """\
import pathlib, sys
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
if "broken" in name:
    print("reading " + name, file=sys.stderr)
    print("broken input: no words on line 1", file=sys.stderr)
    sys.exit(4)
out.mkdir(parents=True, exist_ok=True)
(out / "words.txt").write_text(str(len(pathlib.Path(name).read_text().split())))
"""
INPUTS = {
    "alpha.txt": "one two three\n" * 40,
    "beta.txt": "four five\n" * 300,
    "gamma.txt": "six\n" * 10,
    "delta.txt": "seven eight nine ten\n" * 90,
    "broken.txt": "???\n",
}


@pytest.fixture(scope="module")
def job_id(job_ids: JobIds) -> str:
    return job_ids("e2e-report")


@pytest.fixture(scope="module")
def job(stack: Path, job_id: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished job of 5 tasks, one failing (retried once, as submit does), and its
    report written where `report` puts it by default; the folder it ran in."""
    work = tmp_path_factory.mktemp("report")
    (work / "in").mkdir()
    for name, text in INPUTS.items():
        (work / "in" / name).write_text(text)
    (work / "count.py").write_text(SCRIPT)
    submitted = runner(
        "submit", "in", "--outputs", str(stack), "--job-id", job_id, "--keep-inputs",
        "--files-per-task", "1",
        "--script", "count.py", "--", "{input}", "{output_dir}", cwd=work,
        env={"CI": ""},  # as at a terminal: the report is written after the command returns
    )  # fmt: skip
    assert submitted.returncode == 1, submitted.stderr  # the broken input failed
    # submit says where the report will be, last; a process of its own writes it.
    last = submitted.stderr.splitlines()[-1]
    page = f"results/{job_id}/report.html"
    assert last == f"job {job_id}: report in {page} (being written: ready in a few seconds)"
    deadline = time.monotonic() + 60
    while not (work / page).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (work / page).stat().st_size > 100_000  # whole: written under another name first
    assert not (work / "results" / job_id / "report-error.txt").exists()
    reported = runner("report", job_id, "--outputs", str(stack), cwd=work)
    assert reported.returncode == 0, reported.stderr
    assert reported.stdout.strip() == f"results/{job_id}/report.html"
    return work


def test_the_report_says_what_the_service_recorded(stack, job, job_id):
    page = (job / "results" / job_id / "report.html").read_text()
    clients = connect(StackOutputs.read(stack))
    records = list(clients.batch.list_tasks(job_id))
    assert len(records) == len(INPUTS)
    rows = tasks_by_id(page)
    assert set(rows) == {task.id for task in records}
    for task in records:
        info, row = task.execution_info, rows[task.id]
        assert task.node_info is not None
        assert row["node"] == task.node_info.node_id
        assert row["input"] == task.display_name
        assert row["left"] == pytest.approx(info.start_time.timestamp() * 1000)
        assert row["right"] == pytest.approx(info.end_time.timestamp() * 1000)
        assert row["exit"] == str(info.exit_code)
        assert (row["retries"], row["requeues"]) == (info.retry_count, info.requeue_count)
        ok = state_name(info.result) == "success"
        assert row["outcome"] == ("succeeded" if ok else "failed")
    (broken,) = [task for task in records if task.display_name == "broken.txt"]
    assert (broken.execution_info.exit_code, broken.execution_info.retry_count) == (4, 1)

    failed = re.search(r"<section id=\"failed\">(.*?)</section>", page, re.S)
    assert failed is not None
    assert "1 task failed." in failed.group(1)
    assert f"data-task='{broken.id}'" in failed.group(1)
    assert "exit code <b>4</b>" in failed.group(1)
    assert "1 retry, 0 requeues" in failed.group(1)
    assert "last lines of stderr (uploaded logs)" in failed.group(1)
    assert "broken input: no words on line 1" in failed.group(1)

    # Bytes in and out, as storage lists them.
    containers = clients.outputs.containers
    inputs = list(clients.container(containers.input).list_blobs(name_starts_with=f"{job_id}/"))
    assert sum(blob.size for blob in inputs) == sum(len(t.encode()) for t in INPUTS.values())
    results = list(
        clients.container(containers.output).list_blobs(name_starts_with=f"{job_id}/results/")
    )
    assert len(results) == 4
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", without_bokehjs(page))))
    in_bytes = sum(blob.size for blob in inputs)
    out_bytes = sum(blob.size for blob in results)
    assert f"{in_bytes:,} bytes) in 5 inputs; 5 input blobs (input/{job_id}/) still stored" in text
    assert f"{out_bytes:,} bytes in 4 result blobs (output/{job_id}/results/)" in text
    assert "5: 4 succeeded , 1 failed , 0 running , 0 waiting" in text
    vm_size = clients.batch.get_pool(clients.outputs.poolId).vm_size
    assert f"({vm_size}, " in text
    assert "Estimated cost: USD" in text  # the local pool is Standard_D2s_v5, in the table
    assert remote_loads(without_bokehjs(page)) == []


def test_out_and_a_price_of_ones_own(stack, job, job_id):
    reported = runner(
        "report", job_id, "--outputs", str(stack), "--out", "elsewhere/r.html",
        "--price-per-node-hour", "1.25", cwd=job,
    )  # fmt: skip
    assert reported.returncode == 0, reported.stderr
    page = (job / "elsewhere" / "r.html").read_text()
    assert "1.25 per node-hour, as given with --price-per-node-hour" in page


def test_wait_writes_the_report_with_its_results_unless_told_not_to(stack, job, job_id):
    made = runner(  # in a pipeline, written before the command ends, for the next step
        "wait", job_id, "--outputs", str(stack), "--out", "elsewhere", cwd=job,
        env={"CI": "true"},
    )  # fmt: skip
    assert made.returncode == 1, made.stderr
    assert made.stderr.splitlines()[-1] == f"job {job_id}: report in elsewhere/report.html"
    assert "tvmps_" in (job / "elsewhere" / "report.html").read_text()
    skipped = runner(
        "wait", job_id, "--outputs", str(stack), "--out", "none", "--no-report", cwd=job
    )
    assert skipped.returncode == 1, skipped.stderr
    assert "report in" not in skipped.stderr
    assert not (job / "none" / "report.html").exists()
    assert (job / "none" / "alpha.txt" / "words.txt").is_file()


def test_a_job_that_does_not_exist(stack, tmp_path):
    reported = runner("report", "no-such-job", "--outputs", str(stack), cwd=tmp_path)
    assert reported.returncode == 2
    assert "no job no-such-job on this stack" in reported.stderr
    assert not (tmp_path / "results").exists()


VIEW = """(name) => {
  const view = Bokeh.index.roots.find((v) => v.model.name === name);
  const data = view.model.renderers[0].data_source.data;
  const box = view.canvas_view.el.getBoundingClientRect();
  return Array.from(data.task, (task, i) => ({
    task,
    x: box.left + view.frame.x_scale.compute((data.left[i] + data.right[i]) / 2),
    y: box.top + view.frame.y_scale.compute((data.bottom[i] + data.top[i]) / 2),
  }));
}"""


def test_the_report_renders_in_a_browser_with_no_network(job, job_id):
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium), so no browser test")
    from playwright.sync_api import sync_playwright

    path = job / "results" / job_id / "report.html"
    problems: list[str] = []
    elsewhere: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox"] if os.geteuid() == 0 else [],  # root gets no sandbox
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

            def route(request_route):
                url = request_route.request.url
                if url.startswith("file://"):
                    request_route.continue_()
                else:
                    elsewhere.append(url)
                    request_route.abort()

            page.route("**/*", route)
            page.goto(path.as_uri())
            page.wait_for_function(
                "() => window.Bokeh && Bokeh.index.roots.length >= 3 "
                "&& Bokeh.index.roots.every((v) => v.is_idle ?? true)"
            )
            # Each of the three plots is drawn: a Bokeh figure with its canvas.
            assert page.locator(".bk-Figure").count() == 3
            assert page.locator(".bk-Canvas").count() == 3
            assert page.locator("canvas").count() >= 3
            for box in (page.locator(".bk-Canvas").nth(i).bounding_box() for i in range(3)):
                assert box is not None
                assert box["width"] > 600
                assert box["height"] > 100
            # Hovering a bar shows that task's record.
            bars = page.evaluate(VIEW, "timeline")
            assert {bar["task"] for bar in bars} == set(tasks_by_id(path.read_text()))
            bar = next(bar for bar in bars if "broken" not in bar["task"])
            page.mouse.move(bar["x"], bar["y"])
            # (The tooltip draws its rows in its shadow root, which locators enter.)
            shown = page.locator(".bk-Tooltip").get_by_text(bar["task"], exact=True)
            shown.wait_for(state="visible")
            row = tasks_by_id(path.read_text())[bar["task"]]
            page.locator(".bk-Tooltip").get_by_text(row["node"], exact=True).wait_for()
        finally:
            browser.close()
    assert problems == []
    assert elsewhere == []
