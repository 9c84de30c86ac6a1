"""Uploading what a job needs: its inputs, in parallel, and the task script, by content.

An input whose blob already has the same MD5 is not sent again, so a retried submit
uploads nothing twice. The script goes to ``scripts/<sha256>/<name>`` in the application
container: a job always runs the script the user has, and its blob name records which
version ran.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient, ContentSettings

from runner.inputs import Input, windows
from runner.program import script_blob_name

PARALLEL_UPLOADS = 16
BLOB_BATCH = 32
"""Deletes to a blob batch request (the service takes up to 256). Azurite deletes one blob
at a time, slower the more it holds (53 ms each among 30,000 blobs): batches of 256, 16
at a time, outlasted the SDK's 60 s read timeout and failed a finished job's clean-up."""
PARALLEL_BATCHES = 4
BATCH_READ_TIMEOUT = 300  # seconds: a batch is slow to answer, and a retry only queues again


@dataclass(frozen=True)
class Staged:
    uploaded: int = 0  # files sent
    skipped: int = 0  # files already there, unchanged
    bytes_sent: int = 0

    def __add__(self, other: Staged) -> Staged:
        return Staged(
            self.uploaded + other.uploaded,
            self.skipped + other.skipped,
            self.bytes_sent + other.bytes_sent,
        )


def existing_blobs(container: ContainerClient, prefix: str) -> dict[str, bytes]:
    """The blobs under ``prefix`` and their MD5s: listed once for a whole submit."""
    return {
        blob.name: bytes(blob.content_settings.content_md5 or b"")
        for blob in container.list_blobs(name_starts_with=f"{prefix}/")
    }


def upload_inputs(
    container: ContainerClient,
    prefix: str,
    inputs: Sequence[Input],
    md5s: Mapping[str, bytes],
    existing: Mapping[str, bytes] | None = None,
) -> Staged:
    """Upload the inputs whose blob under ``prefix`` lacks their MD5 (``content_md5s``;
    ``existing``: what ``existing_blobs`` found, listed here if not given)."""
    if existing is None:
        existing = existing_blobs(container, prefix)

    def send(item: Input) -> int:
        md5 = md5s[item.relative]
        name = f"{prefix}/{item.blob}"
        if existing.get(name) == md5:
            return -1
        with open(item.path, "rb") as data:
            container.upload_blob(
                name,
                data,
                overwrite=True,
                content_settings=ContentSettings(content_md5=bytearray(md5)),
                metadata={"path": quote(item.relative)},  # the original path, kept
            )
        return item.size

    local = [item for item in inputs if item.stored is None]  # stored ones stay where they are
    uploaded = skipped = sent = 0
    with ThreadPoolExecutor(PARALLEL_UPLOADS) as pool:
        for window in windows(local):
            for size in pool.map(send, window):
                if size < 0:
                    skipped += 1
                else:
                    uploaded, sent = uploaded + 1, sent + size
    return Staged(uploaded=uploaded, skipped=skipped, bytes_sent=sent)


def upload_script(container: ContainerClient, script: Path) -> str:
    """Upload the script under its content hash (once); return its blob name."""
    name = script_blob_name(script)
    upload_bytes_once(container, name, script.read_bytes())
    return name


def upload_bytes_once(container: ContainerClient, name: str, data: bytes) -> None:
    """Upload a small blob named by its content unless it is there: the 409 that says
    so costs less than asking first."""
    with contextlib.suppress(ResourceExistsError):
        container.upload_blob(name, data, overwrite=False)


def upload_file_once(container: ContainerClient, name: str, path: Path) -> bool:
    """Upload a file named by its content unless it is there (asked first: uv is 40 MB);
    returns whether it was sent."""
    blob = container.get_blob_client(name)
    if blob.exists():
        return False
    with open(path, "rb") as data, contextlib.suppress(ResourceExistsError):
        blob.upload_blob(data, overwrite=False, max_concurrency=4)
    return True


def remove_blobs(container: ContainerClient, prefix: str) -> int:
    """Delete the blobs under ``<prefix>/``, BLOB_BATCH to a blob batch request, a few
    batches at a time; returns how many were deleted here (a blob another
    runner deleted first is not counted)."""
    names = [blob.name for blob in container.list_blobs(name_starts_with=f"{prefix}/")]
    batches = [names[i : i + BLOB_BATCH] for i in range(0, len(names), BLOB_BATCH)]

    def remove(batch: list[str]) -> int:
        responses = container.delete_blobs(
            *batch, raise_on_any_failure=False, read_timeout=BATCH_READ_TIMEOUT
        )
        return sum(1 for response in responses if response.status_code == 202)

    with ThreadPoolExecutor(PARALLEL_BATCHES) as pool:
        return sum(pool.map(remove, batches))
