"""Downloading a job's results again, against Azurite: a file already there, complete
and unchanged, is not fetched again (by its MD5, or the blob's time where it has none);
a result document names its input as the user gave it; a folder that cannot be written
is one line."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient

from runner import fetch, merge, results
from runner.program import TopWords, named_input

JOB = "job"
TASK = "q3-summary-0123abcd"
NODE_DOCUMENT = b'{\n  "input": "Q3_summary.txt",\n  "top": [["the", 3]],\n  "bytes": 10\n}\n'


@pytest.fixture
def container(storage_connection) -> Iterator[ContainerClient]:
    blobs = BlobServiceClient.from_connection_string(storage_connection)
    client = blobs.create_container(f"again-{secrets.token_hex(6)}")
    yield client
    client.delete_container()


def _download(container: ContainerClient, out: Path, **options) -> fetch.Tally:
    tally = fetch.Tally()
    places = {TASK: "Q3 summary.txt"}
    in_place = fetch.download(container, JOB, out, places=places, tally=tally, **options)
    assert in_place == tally.files
    return tally


def test_a_complete_folder_is_downloaded_again_as_a_listing_only(container, tmp_path):
    for index in range(3):
        container.upload_blob(f"{JOB}/results/{TASK}/part{index}.txt", f"part {index}\n")
    out = tmp_path / "out"
    first = _download(container, out)
    assert (first.fetched, first.present) == (3, 0)
    files = sorted((out / "Q3 summary.txt").iterdir())
    inodes = [file.stat().st_ino for file in files]
    again = _download(container, out)
    assert (again.fetched, again.present) == (0, 3)
    assert [file.stat().st_ino for file in files] == inodes  # not written again
    # A file changed here, or a blob changed there, is fetched again; only it.
    files[0].write_text("part X\n")
    container.upload_blob(f"{JOB}/results/{TASK}/part1.txt", "part 1, again\n", overwrite=True)
    third = _download(container, out)
    assert (third.fetched, third.present) == (2, 1)
    assert files[0].read_text() == "part 0\n"
    assert files[1].read_text() == "part 1, again\n"
    # A download cut short leaves no file in place: only a .part a next run removes.
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_a_blob_without_an_md5_is_compared_by_its_size_and_time(container, tmp_path):
    name = f"{JOB}/results/{TASK}/blocks.txt"
    blob = container.get_blob_client(name)
    blob.stage_block("b1", b"in blocks\n")
    blob.commit_block_list([BlobBlock("b1")])  # no Content-MD5 for a block list
    assert not blob.get_blob_properties().content_settings.content_md5
    out = tmp_path / "out"
    assert _download(container, out).fetched == 1
    local = out / "Q3 summary.txt" / "blocks.txt"
    written = blob.get_blob_properties().last_modified.timestamp()
    assert int(local.stat().st_mtime) == int(written)  # the blob's time, as rsync keeps it
    assert _download(container, out).present == 1
    os.utime(local, (written - 60, written - 60))  # an older file of that name
    assert _download(container, out).fetched == 1


def test_a_result_document_names_its_input_as_given_and_stays_in_place(container, tmp_path):
    container.upload_blob(f"{JOB}/results/{TASK}/Q3_summary_OUTPUT.json", NODE_DOCUMENT)
    container.upload_blob(f"{JOB}/results/{TASK}/Q3_summary_OUTPUT.txt", b"the\t3\n")
    expected = [results.Expected(TASK, "Q3_summary.txt", "data/Q3 summary.txt", "Q3 summary.txt")]
    named = fetch.input_names(expected, TopWords())
    out = tmp_path / "out"
    assert _download(container, out, named=named).fetched == 2
    document = out / "Q3 summary.txt" / "Q3_summary_OUTPUT.json"
    assert json.loads(document.read_text())["input"] == "data/Q3 summary.txt"
    # Everything else as the node wrote it, byte for byte.
    assert named_input(document.read_bytes(), "data/Q3 summary.txt", "Q3_summary.txt") == (
        NODE_DOCUMENT
    )
    assert _download(container, out, named=named).present == 2
    # Without knowing the names (a job deleted since), the document as stored.
    assert _download(container, out).fetched == 1
    assert json.loads(document.read_text())["input"] == "Q3_summary.txt"


def test_a_packed_inputs_document_names_it_too():
    expected = [results.Expected("files-000001-aa", "a.txt", "in/a.txt", "a.txt", key="a-1")]
    named = fetch.input_names(expected, TopWords())
    assert named("a-1", "a_OUTPUT.json") == ("inputs/a-1/a.txt", "in/a.txt")
    assert named("a-1", "a_OUTPUT.txt") is None
    assert named("other", "a_OUTPUT.json") is None


def test_a_folder_that_cannot_be_written_is_one_line(container, tmp_path):
    container.upload_blob(f"{JOB}/results/{TASK}/x.txt", b"x")
    blocked = tmp_path / "a file"
    blocked.write_text("in the way")
    with pytest.raises(fetch.DownloadError) as raised:
        _download(container, blocked / "out")
    message = str(raised.value)
    assert message == f"cannot write {blocked / 'out' / 'Q3 summary.txt'}: Not a directory"
    assert blocked.read_text() == "in the way"


def test_merged_files_are_counted_and_fetched_once(container, tmp_path):
    for name in ("merged_OUTPUT.txt", "merged_OUTPUT.json"):
        container.upload_blob(f"{JOB}/merge/merge/{name}", b"{}")
    tally = fetch.Tally()
    assert merge.fetch_merged(container, JOB, tmp_path, tally) == [
        "merged_OUTPUT.json",
        "merged_OUTPUT.txt",
    ]
    assert (tally.fetched, tally.present) == (2, 0)
    assert merge.fetch_merged(container, JOB, tmp_path, tally) == [
        "merged_OUTPUT.json",
        "merged_OUTPUT.txt",
    ]
    assert (tally.fetched, tally.present) == (2, 2)
