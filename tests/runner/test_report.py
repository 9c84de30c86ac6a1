"""`report`, with no server: the records as the service gives them (the Batch REST JSON,
read by the SDK's models), shaped, measured and rendered; and what the page holds."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from azure.batch import models
from azure.core.exceptions import ResourceNotFoundError
from bokeh.resources import INLINE

from contract.outputs import ContainerNames, StackOutputs
from runner import report
from runner.clients import Clients
from runner.report import data as report_data
from runner.report import metrics as report_metrics
from runner.report import prices as report_prices
from runner.report.data import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    WAITING,
    BlobTotal,
    JobInfo,
    ReportData,
    StderrTail,
    TaskRecord,
)

BASE = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
NODE_A = "tvmps_0ece5ecd55ea41bdaece0000_d"
NODE_B = "tvmps_b510e1cb7bb34f37aa070001_d"
OUTPUTS = StackOutputs(
    location="local",
    resourceGroupName="local",
    storageAccountName="devstoreaccount1",
    blobEndpoint="http://127.0.0.1:1/devstoreaccount1",
    containers=ContainerNames("application", "input", "output"),
    batchAccountName="devbatch",
    batchAccountEndpoint="http://127.0.0.1:2",
    poolId="runner-pool",
    poolIdentityResourceId=None,
)


# --- reading a page as a browser would -----------------------------------------------------


def bokeh_documents(page: str) -> list[dict[str, Any]]:
    """The Bokeh documents a page embeds (its ``application/json`` scripts)."""
    found = re.findall(
        r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', page, re.S
    )
    return [doc for text in found for doc in json.loads(html.unescape(text)).values()]


def _decode(value: Any) -> list[Any]:
    if isinstance(value, dict) and value.get("type") == "ndarray":
        raw = base64.b64decode(value["array"]["data"])
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return np.frombuffer(raw, dtype=value["dtype"]).tolist()
    return list(value)


def _bokeh_objects(page: str) -> Iterator[dict[str, Any]]:
    """Every object (a dict) in the page's Bokeh documents, at any depth, in order."""

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield node
        if isinstance(node, dict | list):
            for value in node.values() if isinstance(node, dict) else node:
                yield from walk(value)

    for document in bokeh_documents(page):
        yield from walk(document)


def bokeh_sources(page: str) -> dict[str, dict[str, list[Any]]]:
    """Every named ColumnDataSource of the page, its columns decoded to lists."""
    sources: dict[str, dict[str, list[Any]]] = {}
    for node in _bokeh_objects(page):
        if node.get("name") == "ColumnDataSource" and "attributes" in node:
            attributes = node["attributes"]
            data = attributes.get("data", {}).get("entries", [])
            sources[attributes.get("name")] = {key: _decode(v) for key, v in data}
    return sources


def index_filters(page: str) -> list[list[int]]:
    return [
        _decode(node["attributes"]["indices"])
        for node in _bokeh_objects(page)
        if node.get("name") == "IndexFilter"
    ]


def tasks_by_id(page: str) -> dict[str, dict[str, Any]]:
    columns = bokeh_sources(page)["tasks"]
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    return {row["task"]: row for row in rows}


LIBRARY = {code.strip() for code in INLINE.js_raw}


def without_bokehjs(page: str) -> str:
    """The page less BokehJS's own code, each bundle inlined as the library ships it:
    what remains is the markup, the styles, the data and the lines that embed the plots."""

    def drop(script: re.Match[str]) -> str:
        return "<script></script>" if script.group(1).strip() in LIBRARY else script.group(0)

    return re.sub(r"<script>(.*?)</script>", drop, page, flags=re.S)


def remote_loads(page: str) -> list[str]:
    """What in a page would make a browser fetch from elsewhere: a tag's src or href, a
    CSS @import or url() naming a remote (or protocol-relative) address."""
    remote = r"""\s*["']?\s*(?:https?:)?//"""
    patterns = [
        rf"\b(?:src|href|srcset|action|poster|data)\s*={remote}",
        r"@import",
        rf"url\({remote}",
    ]
    return [m.group(0) for p in patterns for m in re.finditer(p, page, re.I)]


# --- records as the service gives them -------------------------------------------------


def when(seconds: float) -> str:
    """A time as the service writes it: 7 fractional digits, Z."""
    return (BASE + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def task_json(
    task_id: str,
    state: str = "completed",
    start: float | None = 1.0,
    end: float | None = 3.0,
    exit_code: int | None = 0,
    node: str | None = NODE_A,
    retries: int = 0,
    requeues: int = 0,
    failure: tuple[str, str] | None = None,
    display_name: str | None = None,
) -> dict[str, Any]:
    """A task as GET /jobs/{job}/tasks returns it (the fields the report selects)."""
    info: dict[str, Any] = {"retryCount": retries, "requeueCount": requeues}
    if start is not None:
        info["startTime"] = when(start)
    if end is not None:
        info["endTime"] = when(end)
    if exit_code is not None:
        info["exitCode"] = exit_code
    if state == "completed":
        info["result"] = "success" if exit_code == 0 and failure is None else "failure"
    if failure is not None:
        info["failureInfo"] = {"category": "usererror", "code": failure[0], "message": failure[1]}
    document: dict[str, Any] = {
        "id": task_id,
        "displayName": display_name or f"data/{task_id}.txt",
        "state": state,
        "creationTime": when(0),
        "executionInfo": info,
    }
    if node is not None:
        document["nodeInfo"] = {
            "nodeId": node,
            "poolId": "runner-pool",
            "affinityId": f"TVM:{node}",
        }
    return document


EXIT_3 = ("FailureExitCode", "The task process exited with an unexpected exit code")
TASKS = [
    task_json("ok-1", start=1, end=3),
    task_json("ok-2", start=1.5, end=2.5, node=NODE_A),  # beside ok-1: a second lane
    task_json("ok-3", start=4, end=10, node=NODE_B),  # the slowest
    task_json("retried", start=5, end=6, node=NODE_B, retries=1),
    task_json("requeued", start=7, end=8, node=NODE_A, requeues=1),
    task_json("bad-logs", start=3, end=4, exit_code=3, retries=1, failure=EXIT_3),
    task_json("bad-node", start=3, end=3.5, exit_code=2, node=NODE_B, failure=EXIT_3),
    task_json(
        "bad-nothing",
        start=9,
        end=9,
        exit_code=None,
        node=None,
        failure=("ResourceFileDownloadError", "One or more resource files failed to download"),
    ),
    task_json("running", state="running", start=8, end=None, exit_code=None, node=NODE_B),
    task_json("waiting", state="active", start=None, end=None, exit_code=None, node=None),
    task_json("again", state="active", start=2, end=None, exit_code=1, node=None, retries=1),
    task_json(
        "files-000001-0a1b2c3d",
        start=1,
        end=2,
        exit_code=1,
        node=NODE_B,
        failure=EXIT_3,
        display_name="data/p1.txt and 2 more",
    ),
]
NOW = BASE + timedelta(seconds=12)
LONG_STDERR = "".join(f"line {i}\n" for i in range(1, 26)).encode()


class FakeBatch:
    def __init__(self, tasks: list[dict[str, Any]], pool: bool = True) -> None:
        self.tasks = tasks
        self.pool = pool
        self.selected: list[str] | None = None
        self.node_files = {("bad-node", "stderr.txt"): b"node says no\n"}

    def get_job(self, job_id: str, **_: Any) -> models.BatchJob:
        if job_id != "job-1":
            raise ResourceNotFoundError("no job")
        return models.BatchJob(
            {
                "id": job_id,
                "state": "active",
                "creationTime": when(0),
                "poolInfo": {"poolId": "runner-pool"},
                "executionInfo": {"startTime": when(0), "poolId": "runner-pool"},
            }
        )

    def list_tasks(self, job_id: str, select: list[str] | None = None, **_: Any):
        self.selected = select
        return iter(models.BatchTask(document) for document in self.tasks)

    def get_pool(self, pool_id: str, **_: Any) -> models.BatchPool:
        if not self.pool:
            raise ResourceNotFoundError("no pool")
        return models.BatchPool({"id": pool_id, "vmSize": "Standard_D2s_v5", "taskSlotsPerNode": 2})

    def list_nodes(self, pool_id: str, **_: Any):
        return iter(
            [models.BatchNode({"id": NODE_A, "state": "idle", "vmSize": "standard_d2s_v5"})]
        )

    def download_task_file(self, job_id: str, task_id: str, name: str, **_: Any):
        if (task_id, name) not in self.node_files:
            raise ResourceNotFoundError("no such file")
        return iter([self.node_files[task_id, name]])


class FakeContainer:
    """A container answering List Blobs as the service does: pages of XML (here of 2
    blobs, so a listing takes several), each first answered 503 and retried."""

    PAGE = 2

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def list_blob_names(self, name_starts_with: str = "", raw_response_hook=None):
        names = sorted(name for name in self.blobs if name.startswith(name_starts_with))
        for start in range(0, max(len(names), 1), self.PAGE):
            page = names[start : start + self.PAGE]
            marker = f"&marker=m{start}" if start else ""
            url = f"http://127.0.0.1:1/devstoreaccount1/c?restype=container&comp=list{marker}"
            body = (
                "<?xml version='1.0' encoding='utf-8'?><EnumerationResults><Blobs>"
                + "".join(
                    f"<Blob><Name>{name}</Name><Properties><Content-Length>"
                    f"{len(self.blobs[name])}</Content-Length><BlobType>BlockBlob</BlobType>"
                    "</Properties></Blob>"
                    for name in page
                )
                + "</Blobs><NextMarker/></EnumerationResults>"
            )
            if raw_response_hook is not None:
                for status in (503, 200, 200):  # throttled, then answered (and read twice)
                    answer = SimpleNamespace(
                        status_code=status,
                        request=SimpleNamespace(url=url),
                        text=lambda body=body, status=status: body if status == 200 else "busy",
                    )
                    raw_response_hook(SimpleNamespace(http_response=answer))
            yield from page

    def download_blob(self, name: str) -> Any:
        if name not in self.blobs:
            raise ResourceNotFoundError("no blob")
        return SimpleNamespace(readall=lambda: self.blobs[name])


class FakeBlobs:
    def __init__(self, containers: dict[str, dict[str, bytes]]) -> None:
        self.containers = {name: FakeContainer(blobs) for name, blobs in containers.items()}

    def get_container_client(self, name: str) -> FakeContainer:
        return self.containers[name]


def storage() -> dict[str, dict[str, bytes]]:
    manifest = {
        "task": "files-000001-0a1b2c3d",
        "inputs": [
            {"key": "p1-1", "relative": "p1.txt", "label": "data/p1.txt"},
            {"key": "p2-2", "relative": "p2.txt", "label": "data/p2.txt"},
            {"key": "p3-3", "relative": "p3.txt", "label": "data/p3.txt"},
        ],
    }
    status = {
        "p1-1": {"exit_code": 0, "seconds": 0.1, "stderr_tail": []},
        "p2-2": {"exit_code": 3, "seconds": 0.1, "stderr_tail": ["p2 is not text"]},
        "p3-3": {"exit_code": 0, "seconds": 0.1, "stderr_tail": []},
    }
    return {
        "input": {
            "job-1/data/a.txt": b"x" * 1000,
            "job-1/data/b.txt": b"y" * 234,
            "job-10/data/c.txt": b"not this job's" * 100,  # another job, same start
        },
        "output": {
            "job-1/results/ok-1/out/a.json": b"z" * 50,
            "job-1/results/ok-2/out/b.json": b"z" * 70,
            "job-1/logs/bad-logs/stderr.txt": LONG_STDERR,
            "job-1/logs/bad-logs/stdout.txt": b"not counted as a result",
            "job-1/groups/files-000001-0a1b2c3d.json": json.dumps(manifest).encode(),
            "job-1/status/files-000001-0a1b2c3d.json": json.dumps(status).encode(),
        },
    }


@pytest.fixture
def clients() -> Clients:
    return Clients(FakeBatch(TASKS), FakeBlobs(storage()), OUTPUTS)  # type: ignore[arg-type]


@pytest.fixture
def data(clients: Clients) -> ReportData:
    return report_data.fetch(clients, "job-1", now=NOW)


@pytest.fixture
def page(data: ReportData) -> str:
    return report.render(data)


# --- shaping -------------------------------------------------------------------------------


def test_the_records_are_read_as_the_service_gives_them(data, clients):
    assert clients.batch.selected == report_data.TASK_FIELDS
    tasks = {task.task_id: task for task in data.tasks}
    assert len(tasks) == len(TASKS)
    assert {name: task.outcome for name, task in tasks.items()} == {
        "ok-1": SUCCEEDED, "ok-2": SUCCEEDED, "ok-3": SUCCEEDED, "retried": SUCCEEDED,
        "requeued": SUCCEEDED, "bad-logs": FAILED, "bad-node": FAILED, "bad-nothing": FAILED,
        "running": RUNNING, "waiting": WAITING, "again": WAITING,
        "files-000001-0a1b2c3d": FAILED,
    }  # fmt: skip
    ok = tasks["ok-3"]
    assert (ok.node_id, ok.start, ok.seconds, ok.exit_code) == (
        NODE_B, BASE + timedelta(seconds=4), 6.0, 0,
    )  # fmt: skip
    assert (tasks["retried"].retries, tasks["requeued"].requeues) == (1, 1)
    assert tasks["bad-nothing"].failure == (
        "ResourceFileDownloadError: One or more resource files failed to download"
    )
    assert tasks["running"].end is None
    assert tasks["running"].seconds is None
    assert data.job.vm_size == "Standard_D2s_v5"
    assert data.job.slots_per_node == 2
    assert [node.node_id for node in data.nodes] == [NODE_A]


def test_a_record_without_a_result_is_judged_by_its_exit_code():
    info = models.BatchTaskExecutionInfo({"exitCode": 0, "retryCount": 0, "requeueCount": 0})
    assert report_data.outcome_of("completed", info) == SUCCEEDED
    info = models.BatchTaskExecutionInfo({"exitCode": 1, "retryCount": 0, "requeueCount": 0})
    assert report_data.outcome_of("completed", info) == FAILED
    assert report_data.outcome_of("completed", {"exitCode": 0, "failureInfo": {"code": "x"}}) == (
        FAILED
    )
    assert report_data.outcome_of("preparing", None) == RUNNING


def test_bytes_in_and_out_come_from_the_listings_of_this_job_only(data):
    assert (data.inputs.count, data.inputs.size) == (2, 1234)
    assert (data.results.count, data.results.size) == (2, 120)  # logs are not results
    assert (data.inputs.container, data.inputs.prefix) == ("input", "job-1/")
    assert data.results.prefix == "job-1/results/"


def test_failed_tasks_get_their_stderr_from_the_logs_then_the_node(data):
    failed = {detail.task.task_id: detail for detail in data.failed}
    assert list(failed) == ["files-000001-0a1b2c3d", "bad-node", "bad-logs", "bad-nothing"]
    logs = failed["bad-logs"].stderr
    assert logs.source == "uploaded logs"
    assert logs.lines == tuple(f"line {i}" for i in range(16, 26))  # the last 10
    node = failed["bad-node"].stderr
    assert node == StderrTail(("node says no",), f"stderr.txt on node {NODE_B}")
    assert failed["bad-nothing"].stderr == StderrTail()  # no log, no node
    packed = failed["files-000001-0a1b2c3d"]
    assert packed.packed_inputs == 3
    assert [(item.label, item.exit_code, item.stderr_tail) for item in packed.inputs] == [
        ("data/p2.txt", 3, ("p2 is not text",))
    ]


def test_only_the_first_failures_are_read_in_detail(clients):
    many = [
        task_json(f"bad-{i:03d}", start=i, end=i + 1, exit_code=1, failure=EXIT_3)
        for i in range(report_data.FAILED_DETAILS + 7)
    ]
    clients = Clients(FakeBatch(many), clients.blobs, OUTPUTS)
    data = report_data.fetch(clients, "job-1", now=NOW)
    assert [d.task.task_id for d in data.failed] == [
        f"bad-{i:03d}" for i in range(report_data.FAILED_DETAILS)
    ]
    page = report.render(data)
    assert "7 more failed tasks" in page
    assert "<td><code>bad-056</code></td>" in page


def test_a_job_that_does_not_exist_is_an_error(clients):
    with pytest.raises(ResourceNotFoundError):
        report_data.fetch(clients, "no-such-job")


# --- the figures ---------------------------------------------------------------------------


def test_concurrent_tasks_on_a_node_get_lanes_that_never_overlap(data):
    line = report_metrics.timeline(data.tasks, NOW)
    assert line.nodes == [NODE_A, NODE_B]
    bars = {bar.task.task_id: bar for bar in line.bars}
    assert set(bars) == {
        "ok-1",
        "ok-2",
        "ok-3",
        "retried",
        "requeued",
        "bad-logs",
        "bad-node",
        "running",
        "files-000001-0a1b2c3d",
    }  # fmt: skip (started, and on a node)
    assert bars["running"].end == NOW
    for one in line.bars:
        for other in line.bars:
            if one is not other and one.row == other.row and one.lane == other.lane:
                assert one.end <= other.start or other.end <= one.start
    assert {bar.lane for bar in line.bars if bar.row == 0} == {0, 1}


def test_nodes_in_use_and_node_hours():
    def task(name: str, node: str, start: float, end: float) -> TaskRecord:
        return TaskRecord(
            name, name, "completed", SUCCEEDED, node, BASE,
            BASE + timedelta(seconds=start), BASE + timedelta(seconds=end), 0, 0, 0,
        )  # fmt: skip

    tasks = [
        task("a1", "a", 0, 10), task("a2", "a", 20, 30),  # a: in use 0-30, busy 20 s
        task("b1", "b", 5, 15), task("b2", "b", 10, 40),  # b: in use 5-40, busy 35 s
        task("c1", "c", 40, 50),  # c takes over as b ends
    ]  # fmt: skip
    bars = report_metrics.timeline(tasks, NOW).bars
    steps = [
        ((moment - BASE).total_seconds(), count)
        for moment, count in report_metrics.nodes_over_time(bars)
    ]
    assert steps == [(0, 1), (5, 2), (30, 1), (50, 0)]
    used = report_metrics.node_time(bars)
    assert used.nodes == 3
    assert used.span_hours == pytest.approx((30 + 35 + 10) / 3600)
    assert used.busy_hours == pytest.approx((20 + 35 + 10) / 3600)


def test_prices_come_with_their_source_and_unknown_sizes_get_none():
    for price in report_prices.PRICES.values():
        assert price.usd_per_hour > 0
        assert price.region
        assert price.terms
        assert price.source.publisher
        assert price.source.title
        assert price.source.reference.startswith("https://")
        assert price.source.stated
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", price.source.read)
    assert report_prices.price_for("standard_d2s_v5") is report_prices.PRICES["standard_d2s_v5"]
    unknown = report_prices.estimate(2.0, "Standard_NC24ads_A100_v4")
    assert (unknown.per_hour, unknown.cost) == (None, None)
    given = report_prices.estimate(2.0, "Standard_NC24ads_A100_v4", given=1.5)
    assert (given.cost, given.given) == (3.0, True)


# --- the page ------------------------------------------------------------------------------


def test_every_started_task_is_on_the_timeline_with_its_record(page, data):
    rows = tasks_by_id(page)
    started = {t.task_id for t in data.tasks if t.start is not None and t.node_id}
    assert set(rows) == started
    for task in data.tasks:
        if task.task_id not in rows:
            continue
        row = rows[task.task_id]
        assert row["input"] == task.display_name
        assert row["node"] == task.node_id
        assert row["outcome"] == task.outcome
        assert row["left"] == pytest.approx(task.start.timestamp() * 1000)
        end = task.end or NOW
        assert row["right"] == pytest.approx(end.timestamp() * 1000)
        assert row["duration"] == pytest.approx((end - task.start).total_seconds())
        assert row["exit"] == ("" if task.exit_code is None else str(task.exit_code))
        assert (row["retries"], row["requeues"]) == (task.retries, task.requeues)
    # Retried and requeued tasks are outlined: an IndexFilter of exactly those bars.
    order = bokeh_sources(page)["tasks"]["task"]
    (outlined,) = index_filters(page)
    assert {order[i] for i in outlined} == {"retried", "requeued", "bad-logs"}
    assert "retried or requeued (outlined)" in page
    # The hover shows what each bar is.
    for label in ("@task", "@input", "@node", "@left{", "@right{", "@duration", "@exit"):
        assert label in page
    assert "@retries" in page
    assert "@requeues" in page


def test_the_summary_counts_and_bytes(page):
    text = html.unescape(re.sub(r"<[^>]+>", " ", without_bokehjs(page)))
    text = re.sub(r"\s+", " ", text)
    assert "12: 5 succeeded , 4 failed , 1 running , 2 waiting (1 waiting to run again)" in text
    assert "3 tasks retried, 1 requeued" in text
    assert "1.2 KiB (1,234 bytes) in 2 input blobs (input/job-1/)" in text
    assert "120 bytes in 2 result blobs (output/job-1/results/)" in text
    assert "Standard_D2s_v5, 2 task slots a node" in text
    assert f"{NODE_B} (left the pool)" in page  # the pool has node A only now


def test_the_slowest_and_the_failed_tasks_are_listed(page):
    slowest = re.search(r"<table class='tasks' id='slowest-tasks'>(.*?)</table>", page, re.S)
    assert slowest is not None
    ids = re.findall(r"<tr><td><code>([^<]+)</code>", slowest.group(1))
    assert ids[:2] == ["ok-3", "running"]  # 6 s, then 4 s so far
    failed = re.search(r"<section id=\"failed\">(.*?)</section>", page, re.S)
    assert failed is not None
    section = failed.group(1)
    assert "4 tasks failed." in section
    blocks = dict(
        re.findall(r"<div class='failure' data-task='([^']+)'>(.*?)</div>", section, re.S)
    )
    assert "exit code <b>3</b>" in blocks["bad-logs"]
    assert "1 retry, 0 requeues" in blocks["bad-logs"]
    assert "line 25" in blocks["bad-logs"]
    assert "line 15" not in blocks["bad-logs"]  # the tail only
    assert "exit code <b>2</b>" in blocks["bad-node"]
    assert "node says no" in blocks["bad-node"]
    assert "not available" in blocks["bad-nothing"]
    assert "exit code <b>-</b>, ResourceFileDownloadError" in blocks["bad-nothing"]
    assert "data/p2.txt: exit code 3" in blocks["files-000001-0a1b2c3d"]
    assert "p2 is not text" in blocks["files-000001-0a1b2c3d"]


def test_the_cost_is_estimated_only_from_a_cited_price(data):
    page = report.render(data)
    assert "Estimated cost: <b>USD " in page
    assert "c3x.dev (blog)" in page
    assert "June 2026" in page
    given = report.render(data, price_per_node_hour=2.0)
    assert "per node-hour, as given with --price-per-node-hour" in given
    unknown = ReportData(
        job=JobInfo("job-1", "completed", "gpus", BASE, BASE, BASE, "Standard_ND96asr_v4", 1),
        tasks=data.tasks,
        nodes=[],
        inputs=data.inputs,
        results=data.results,
        failed=[],
        generated=NOW,
    )
    page = report.render(unknown)
    assert "No estimated cost: the pool's VM size, Standard_ND96asr_v4, is not in the table" in page
    assert "Pass <code>--price-per-node-hour</code>" in page
    assert "node-hours</b>" in page


def test_the_page_loads_nothing_from_elsewhere(page):
    # BokehJS is inlined whole (its code names a CDN for MathJax, loaded only to typeset
    # math, which the page has none of: the browser test sees that nothing is fetched),
    # and nothing else in the page points outside it.
    bokeh_min = next(code for code in LIBRARY if code.startswith("/* BEGIN bokeh.min.js"))
    assert bokeh_min in page
    assert bokeh_min not in without_bokehjs(page)
    assert remote_loads(without_bokehjs(page)) == []
    assert not re.search(r"https?://", without_bokehjs(page))
    assert "<link" not in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<(?:img|iframe|object|embed|video|audio|source)\b", page)
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", page, re.S))
    assert "@import" not in styles
    assert "url(" not in styles


def test_names_are_text_not_markup(clients):
    hostile = task_json(
        "evil",
        display_name='<img src="https://example.invalid/x.png"><script>alert(1)</script>.txt',
        exit_code=1,
        failure=EXIT_3,
    )
    clients = Clients(FakeBatch([hostile]), clients.blobs, OUTPUTS)
    page = report.render(report_data.fetch(clients, "job-1", now=NOW))
    assert "<img" not in page
    assert "<script>alert" not in page
    assert tasks_by_id(page)["evil"]["input"] == hostile["displayName"]
    assert remote_loads(without_bokehjs(page)) == []


def test_a_job_with_no_task_that_ran_still_gets_a_page(clients):
    clients = Clients(
        FakeBatch([task_json("waiting", state="active", start=None, end=None, exit_code=None)]),
        clients.blobs,
        OUTPUTS,
    )
    page = report.render(report_data.fetch(clients, "job-1", now=NOW))
    assert tasks_by_id(page) == {}
    assert "No task has started." in page
    assert "No task failed." in page


def test_the_pool_being_gone_is_said(clients):
    clients = Clients(FakeBatch(TASKS, pool=False), clients.blobs, OUTPUTS)
    data = report_data.fetch(clients, "job-1", now=NOW)
    assert (data.job.vm_size, data.nodes) == (None, [])
    page = report.render(data)
    assert "the pool is gone: its VM size is unknown" in page
    assert "No estimated cost" in page


def test_write_puts_the_page_next_to_the_results(clients, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = report.write(clients, "job-1")
    assert written == report.default_path("job-1")
    assert written == tmp_path.joinpath("results", "job-1", "report.html").relative_to(tmp_path)
    assert written.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in written.parent.iterdir()] == ["report.html"]  # no temporary left
    elsewhere = report.write(clients, "job-1", tmp_path / "deep" / "r.html", 0.5)
    assert elsewhere.is_file()


def test_ten_thousand_tasks_make_a_page_of_at_most_5_mb_quickly():
    nodes = [f"tvmps_{i:024x}_d" for i in range(8)]
    tasks = []
    for i in range(10_000):
        start = BASE + timedelta(seconds=i // 8 * 0.7)
        failed = i % 97 == 0
        tasks.append(
            TaskRecord(
                task_id=f"doc{i:05d}-{i * 2654435761 % 16**8:08x}",
                display_name=f"data/shard{i // 1000:03d}/doc{i:05d}.txt",
                state="completed",
                outcome=FAILED if failed else SUCCEEDED,
                node_id=nodes[i % 8],
                created=BASE,
                start=start,
                end=start + timedelta(seconds=0.2 + (i % 13) / 10),
                exit_code=1 if failed else 0,
                retries=1 if failed else 0,
                requeues=1 if i % 1000 == 1 else 0,
            )
        )
    data = ReportData(
        job=JobInfo("big", "completed", "runner-pool", BASE, BASE, NOW, "Standard_D2s_v5", 2),
        tasks=tasks,
        nodes=[],
        inputs=BlobTotal("input", "big/", 10_000, 10_000_000),
        results=BlobTotal("output", "big/results/", 20_000, 2_000_000),
        failed=[
            report_data.FailedTask(task, StderrTail(("boom",) * 10, "uploaded logs"))
            for task in report_data.first_failed(tasks)
        ],
        generated=NOW,
    )
    started = time.perf_counter()
    page = report.render(data)
    seconds = time.perf_counter() - started
    assert len(page.encode()) <= 5_000_000
    assert seconds < 5
    assert len(tasks_by_id(page)) == 10_000


def _summary_text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", without_bokehjs(page))))


def test_the_bytes_in_are_those_submitted_once_the_inputs_are_removed(data):
    """A succeeded job's uploaded inputs are gone when its report is made: the runner
    recorded their count and bytes in the job's fingerprint at submit."""
    from runner.fingerprint import Fingerprint

    recorded = Fingerprint("topwords", "scripts/x/topwords.py", (), "3:abc", False, 1, "", (), 4096)
    read = Fingerprint.read(recorded.metadata())
    assert read == recorded
    assert read.input_bytes == 4096
    gone = dataclasses.replace(data, inputs=BlobTotal("input", "job-1/", 0, 0), submitted=(3, 4096))
    assert "4.0 KiB (4,096 bytes) in 3 inputs; none still stored" in _summary_text(
        report.render(gone)
    )
    kept = dataclasses.replace(data, submitted=(2, 1234))
    assert "in 2 inputs; 2 input blobs (input/job-1/) still stored" in _summary_text(
        report.render(kept)
    )


def test_one_retried_task_is_one_task_and_every_time_tick_a_clock_time(data):
    once = [
        dataclasses.replace(task, retries=1 if task.task_id == "retried" else 0)
        for task in data.tasks
    ]
    page = report.render(dataclasses.replace(data, tasks=once))
    assert "1 task retried, " in _summary_text(page)
    formatters = [
        node["attributes"]
        for node in _bokeh_objects(page)
        if node.get("name") == "DatetimeTickFormatter" and "attributes" in node
    ]
    assert len(formatters) == 2  # the tasks over time and the nodes over time
    for formatter in formatters:  # no "0ms", no ":37:42": hours, minutes, seconds
        assert formatter["milliseconds"] == "%H:%M:%S.%3N"
        assert formatter["seconds"] == formatter["minsec"] == "%H:%M:%S"
