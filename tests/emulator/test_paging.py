"""Paging: lists come in id order, and a $skiptoken is a key, not an offset.

A page ends at its last item's id; the next page starts after that id, whatever was
deleted or added meanwhile. The token is opaque (urlsafe base64 of a small JSON) and one
the service did not issue is InvalidQueryParameterValue. See ``emulator.odata``.
"""

from __future__ import annotations

from functools import partial
from typing import cast
from urllib.parse import parse_qs, urlparse

from azure.batch import BatchClient, models
from azure.core.rest import HttpRequest, HttpResponse

from tests.emulator.conftest import raises_batch_error

API = {"api-version": "2025-06-01"}


def _add(batch: BatchClient, job: str, *ids: str) -> None:
    tasks = [models.BatchTaskCreateOptions(id=i, command_line="/bin/true") for i in ids]
    batch.create_task_collection(job, models.BatchTaskGroup(task_values=tasks))


def test_lists_are_in_id_order_whatever_the_creation_order(batch, job):
    _add(batch, job, "b", "a", "C", "c0", "a1")
    assert [t.id for t in batch.list_tasks(job, select=["id"])] == ["C", "a", "a1", "b", "c0"]


def test_a_page_boundary_survives_deletes_and_inserts(batch, job):
    _add(batch, job, *(f"t{i}" for i in range(6)))
    pages = batch.list_tasks(job, select=["id"], max_results=3).by_page()
    first = [t.id for t in next(pages)]
    assert first == ["t0", "t1", "t2"]
    batch.delete_task(job, "t1")  # an offset would now skip t3
    _add(batch, job, "t2a", "a")  # after the boundary: listed; before it: not
    rest = [t.id for page in pages for t in page]
    assert rest == ["t2a", "t3", "t4", "t5"]


def test_pages_of_a_filtered_list_end_with_the_last_match(batch, job):
    _add(batch, job, "k1", "x1", "k2", "x2", "k3", "k4")
    request = HttpRequest(
        "GET",
        f"/jobs/{job}/tasks",
        params={**API, "$filter": "startswith(id, 'k')", "$select": "id", "maxresults": "2"},
    )
    first = batch.send_request(request).json()
    assert [t["id"] for t in first["value"]] == ["k1", "k2"]
    link = first["odata.nextLink"]
    query = parse_qs(urlparse(link).query)
    assert query["$filter"] == ["startswith(id, 'k')"]
    assert query["$select"] == ["id"]
    assert "k2" not in query["$skiptoken"][0]  # opaque
    second = batch.send_request(HttpRequest("GET", link)).json()
    assert [t["id"] for t in second["value"]] == ["k3", "k4"]
    assert "odata.nextLink" not in second  # nothing matches after k4


def test_a_token_the_service_did_not_issue_is_invalid(batch, job):
    for token in ("3", "not a token", "eyJ4IjoxfQ"):  # an offset, garbage, {"x":1}
        request = HttpRequest("GET", f"/jobs/{job}/tasks", params={**API, "$skiptoken": token})
        error = raises_batch_error(
            partial(batch.send_request, request), 400, "InvalidQueryParameterValue"
        )
        response = cast(HttpResponse, error.response)
        values = {e["key"]: e["value"] for e in response.json()["values"]}
        assert values["QueryParameterName"] == "$skiptoken"
