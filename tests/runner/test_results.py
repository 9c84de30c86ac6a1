"""Fetching blobs into the results directory, against Azurite."""

from __future__ import annotations

import os

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from runner import fetch, report
from task import merge as merge_task


@pytest.fixture
def container(storage_connection, request):
    blobs = BlobServiceClient.from_connection_string(storage_connection)
    client = blobs.create_container(f"fetch-{request.node.name.replace('_', '-')[:40]}")
    client.upload_blob("job/logs/t1/stderr.txt", b"boom\n")
    yield client
    client.delete_container()


def test_missing_blobs_are_skipped_when_allowed_and_leave_nothing_behind(container, tmp_path):
    found = [
        ("job/logs/t1/stderr.txt", tmp_path / "t1" / "stderr.txt"),
        ("job/logs/t2/stderr.txt", tmp_path / "t2" / "stderr.txt"),
    ]
    assert list(fetch.fetch_all(container, found, missing_ok=True)) == found[:1]
    assert (tmp_path / "t1" / "stderr.txt").read_bytes() == b"boom\n"
    assert list((tmp_path / "t2").iterdir()) == []  # no half-written .part file


def test_a_missing_blob_is_an_error_otherwise(container, tmp_path):
    with pytest.raises(ResourceNotFoundError):
        list(fetch.fetch_all(container, [("job/nothing.txt", tmp_path / "nothing.txt")]))
    assert list(tmp_path.iterdir()) == []


def test_partial_downloads_of_a_dead_runner_are_removed_and_a_live_ones_kept(tmp_path):
    folder = tmp_path / "doc 1.txt"
    folder.mkdir()
    finished = folder / "doc 1_OUTPUT.txt"
    finished.write_text("done")
    dead = folder / ".doc 1_OUTPUT.txt.4194305-0123abcd.part"  # above any pid_max
    dead.write_text("half")
    live = folder / f".doc 1_OUTPUT.json.{os.getpid()}-89abcdef.part"
    live.write_text("half")
    assert fetch.remove_partial(tmp_path) == 1
    assert not dead.exists()
    assert live.exists()
    assert finished.read_text() == "done"
    assert fetch.remove_partial(tmp_path / "not there") == 0


@pytest.mark.parametrize(
    "name", ["report.html", "merged_OUTPUT.txt", "merged_OUTPUT.json", "logs/a.txt"]
)
def test_an_input_named_like_what_the_runner_writes_gets_its_task_ids_folder(name):
    assert fetch.place("in-1", {"in-1": name}) == "in-1"
    assert fetch.place("in-1", {"in-1": f"sub/{name}"}) == f"sub/{name}"


def test_the_taken_names_are_the_ones_the_runner_writes():
    assert report.default_path("job").name in fetch.TAKEN_NAMES
    for suffix in ("txt", "json"):
        assert f"{merge_task.MERGED_STEM}_OUTPUT.{suffix}" in fetch.TAKEN_NAMES
