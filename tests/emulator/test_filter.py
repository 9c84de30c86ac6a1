"""$filter and $select per list operation: the documented grammar, and the service's 400s.

The tables come from the REST reference's "OData filters in Azure Batch"; the rules
(DateTime literals, case-insensitive values, case-sensitive names) from "Create queries
to list Batch resources efficiently". See ``emulator.queryable`` and ``emulator.odata``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, timedelta
from email.utils import format_datetime
from functools import partial
from typing import Any, cast

import pytest
from azure.batch import BatchClient, models
from azure.core.rest import HttpRequest, HttpResponse

from emulator import errors, odata, queryable
from tests.emulator.conftest import raises_batch_error, wait_for

API = {"api-version": "2025-06-01"}


def _ids(tasks: Iterable[Any]) -> set[str]:
    return {task.id for task in tasks}


@pytest.fixture
def finished(batch: BatchClient, job: str) -> dict[str, models.BatchTask]:
    """Three completed tasks: a-ok (exit 0), a-bad (exit 3), then b-ok (exit 0), created last."""
    batch.create_tasks(
        job,
        [
            models.BatchTaskCreateOptions(id="a-ok", command_line="/bin/true"),
            models.BatchTaskCreateOptions(id="a-bad", command_line="/bin/sh -c 'exit 3'"),
        ],
    )
    batch.create_task(job, models.BatchTaskCreateOptions(id="b-ok", command_line="/bin/true"))
    wait_for(lambda: batch.get_job_task_counts(job).task_counts.completed == 3)
    return {task.id: task for task in batch.list_tasks(job)}


def test_tasks_filter_on_each_kind_of_property(batch, job, finished):
    def listed(text: str) -> set[str]:
        return _ids(batch.list_tasks(job, filter=text))

    last = finished["b-ok"].creation_time
    assert listed("startswith(id, 'a-')") == {"a-ok", "a-bad"}
    assert listed("startswith(id, 'a-') eq false") == {"b-ok"}
    assert listed("executionInfo/exitCode gt 0") == {"a-bad"}
    assert listed("state eq 'COMPLETED' and executionInfo/result eq 'Success'") == {"a-ok", "b-ok"}
    assert listed("id eq 'A-OK'") == {"a-ok"}  # values compare case-insensitively
    assert listed(f"creationTime ge DateTime'{last.isoformat()}'") == {"b-ok"}
    assert listed(f"creationTime lt DateTime'{last.isoformat()}'") == {"a-ok", "a-bad"}
    rfc1123 = format_datetime((last - timedelta(days=1)).astimezone(UTC), usegmt=True)
    assert listed(f"stateTransitionTime gt DateTime'{rfc1123}'") == set(finished)
    assert listed(
        "not (executionInfo/result eq 'failure') and (startswith(id, 'a-') or id eq 'b-ok')"
    ) == {"a-ok", "b-ok"}


def test_pools_nodes_jobs_and_images_filter_on_their_own_tables(batch, pool, job):
    assert [p.id for p in batch.list_pools(filter=f"id eq '{pool}'")] == [pool]
    matching = "enableAutoScale eq false and vmSize eq 'STANDARD_D2S_V3'"
    assert pool in {p.id for p in batch.list_pools(filter=matching)}
    nodes = list(batch.list_nodes(pool))
    when = "allocationTime lt DateTime'2100-01-01T00:00:00Z'"
    assert len(list(batch.list_nodes(pool, filter=when))) == len(nodes) > 0
    assert list(batch.list_nodes(pool, filter="startTaskInfo/exitCode eq 0")) == []
    assert job in {j.id for j in batch.list_jobs(filter=f"executionInfo/poolId eq '{pool}'")}
    ubuntu = "nodeAgentSKUId eq 'batch.node.ubuntu 24.04' and osType eq 'LINUX'"
    assert [i.node_agent_sku_id for i in batch.list_supported_images(filter=ubuntu)] == [
        "batch.node.ubuntu 24.04"
    ]


def _refused(call: Callable[[], object]) -> None:
    raises_batch_error(call, 400, "InvalidQueryParameterValue")


@pytest.mark.parametrize(
    "text",
    [
        "commandLine eq '/bin/true'",  # not a filterable property of a task
        "executionInfo/exitCode eq '3'",  # an Int compared with a string
        "creationTime gt '2026-01-01T00:00:00Z'",  # a DateTime needs DateTime'...'
        "creationTime gt DateTime'yesterday'",  # not a date
        "state gt 'active'",  # state allows eq and ne only
        "startswith(state, 'act')",  # and no startswith
        "ID eq 'a'",  # property names are case-sensitive
        "id eq 1.5",
    ],
)
def test_tasks_refuse_what_the_table_does_not_allow(batch, job, text):
    _refused(lambda: list(batch.list_tasks(job, filter=text)))


def test_each_list_refuses_properties_of_another(batch, pool, job):
    _refused(lambda: list(batch.list_pools(filter="targetDedicatedNodes eq 1")))
    _refused(lambda: list(batch.list_pools(filter="enableAutoScale eq 'false'")))
    _refused(lambda: list(batch.list_nodes(pool, filter="id eq 'x'")))  # not on nodes
    _refused(lambda: list(batch.list_jobs(filter="executionInfo/exitCode eq 0")))
    _refused(lambda: list(batch.list_supported_images(filter="capabilities eq 'x'")))


def test_files_filter_by_name_prefix_only(batch, job, finished):
    prefixed = batch.list_task_files(job, "a-ok", filter="startswith(name, 'std')")
    assert all(f.name.startswith("std") for f in prefixed)
    _refused(lambda: list(batch.list_task_files(job, "a-ok", filter="name eq 'stdout.txt'")))


def _refusal(batch: BatchClient, path: str, **params: str) -> dict[str, str]:
    """The values of the 400 InvalidQueryParameterValue a GET of ``path`` is answered with."""
    request = HttpRequest("GET", path, params={**API, **params})
    error = raises_batch_error(
        lambda: batch.send_request(request), 400, "InvalidQueryParameterValue"
    )
    response = cast(HttpResponse, error.response)
    return {entry["key"]: entry["value"] for entry in response.json()["values"]}


def test_a_refusal_names_the_parameter_its_value_and_the_reason(batch, job):
    text = "executionInfo/exitCode eq 'three'"
    values = _refusal(batch, f"/jobs/{job}/tasks", **{"$filter": text})
    assert values["QueryParameterName"] == "$filter"
    assert values["QueryParameterValue"] == text
    assert "Int" in values["Reason"]


def test_select_takes_top_level_properties_of_the_entity(batch, job, finished):
    task = batch.get_task(job, "a-bad", select=["id", "executionInfo"])
    assert (task.id, task.execution_info.exit_code, task.command_line) == ("a-bad", 3, None)
    for names in (["executionInfo/exitCode"], ["nosuchproperty"], ["ID"]):
        _refused(partial(batch.get_task, job, "a-bad", select=names))
        _refused(partial(list, batch.list_tasks(job, select=names)))
    values = _refusal(batch, f"/jobs/{job}/tasks", **{"$select": "id,nodeInfo/nodeId"})
    assert values["QueryParameterName"] == "$select"
    assert values["QueryParameterValue"] == "id,nodeInfo/nodeId"


@pytest.mark.parametrize(
    ("collection", "text", "document", "expected"),
    [
        ("files", "startswith(name, 'wd/')", {"name": "wd/out.txt"}, True),
        ("files", "startswith(name, 'wd/')", {"name": "stdout.txt"}, False),
        ("pools", "enableAutoScale eq false", {"id": "p"}, True),  # the API's default
        ("pools", "enableInterNodeCommunication ne true", {"id": "p"}, True),
        ("nodes", "startTaskInfo/exitCode ne 0", {"id": "n"}, True),  # null ne 0
        ("nodes", "startTaskInfo/exitCode lt 1", {"id": "n"}, False),  # null is not < 1
        ("poolnodecounts", "poolId eq 'P1'", {"poolId": "p1"}, True),
        ("poolusagemetrics", "poolId ge 'b'", {"poolId": "a"}, False),
        ("jobschedules", "schedule/doNotRunUntil gt DateTime'2026-01-01T00:00:00Z'",
         {"schedule": {"doNotRunUntil": "2026-06-01T00:00:00.0000000Z"}}, True),
    ],
)  # fmt: skip
def test_the_other_tables(collection, text, document, expected):
    assert odata.compile_filter(text, queryable.listing(collection))(document) is expected


@pytest.mark.parametrize(
    ("collection", "text"),
    [
        ("poolnodecounts", "poolId ne 'p1'"),  # eq only
        ("poolusagemetrics", "poolId ne 'p1'"),
        ("nodes", "startTaskInfo/state ne 'running'"),  # eq only
        ("supportedimages", "startswith(nodeAgentSKUId, 'batch')"),
    ],
)
def test_operators_outside_a_table_are_refused(collection, text):
    with pytest.raises(errors.BatchServiceError) as caught:
        odata.compile_filter(text, queryable.listing(collection))
    assert caught.value.code == "InvalidQueryParameterValue"
