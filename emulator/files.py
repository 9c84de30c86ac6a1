"""Resource files in and output files out, between a task's directories and blob storage.

Both run in a worker thread (the storage SDK is synchronous), move a task's files
several at a time (as a node's agent does), and return None or the failure the service
reports (from the table in ``failures``; for the first file in order that failed):

- resource files: from ``httpUrl``, ``storageContainerUrl`` (+ ``blobPrefix``) or
  ``autoStorageContainerName``; BlobNotFound, BlobAccessDenied, BlobDownloadMiscError,
  ResourceFileCreateFailed.
- output files: ``filePattern`` relative to the working directory (``**`` and ``../``
  allowed), ``uploadCondition``, container URL and ``path``; FileUploadContainerNotFound,
  FileUploadAccessDenied, FileUploadMiscError, with ``fileuploadout.txt`` and
  ``fileuploaderr.txt`` written to the task directory as on a node.

Neither can reach outside the task's directory: a resource file whose place (its
``filePath``, below which a container's blob names go) would land outside the working
directory fails the task with ResourceFileCreateFailed, and an output pattern's files
outside the task directory (``../../x``, an absolute path, a symbolic link out) are not
uploaded. The service allows more on its throwaway node; here the node is your machine.

Access is by the SAS in a URL, or by ``identityReference``: a node's managed identity,
which the emulator plays by reading with the storage account's key, for the identities
it was told the pool has. An identity it does not know is refused, as on a pool
without it.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core import PipelineClient
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.core.rest import HttpRequest, HttpResponse
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient, ExponentialRetry

from emulator import failures
from emulator.failures import Failure

_WILDCARDS = set("*?[")
PARALLEL_TRANSFERS = 8  # a task's files moving at once; tasks share the pool
HTTP_RETRY = {"retry_total": 6, "retry_backoff_factor": 0.5, "retry_backoff_max": 16}
"""A node retries a transfer that failed for want of an answer (a 5xx, a dropped
connection) a few times, backing off from half a second to 16."""


class StorageRetry(ExponentialRetry):
    """The storage SDK's exponential retry, waiting ``initial_backoff`` before the first
    retry as its formula reads: the SDK counts that retry as 1 before it waits, so its own
    first wait is ``initial_backoff + increment_base`` (2.5 s, not 0.5)."""

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return float(super().get_backoff_time({**settings, "count": settings["count"] - 1}))


def storage_retry() -> ExponentialRetry:
    """The storage SDK's policy, waiting 0.5, 2.5, 4.5, 8.5, 16.5 and 32.5 s (give or
    take 1) rather than its default 15, 18 and 24: a node should not hold a task up 15 s
    on one dropped request."""
    return StorageRetry(
        initial_backoff=0.5,  # type: ignore[arg-type]  # seconds: a float is fine
        increment_base=2,
        random_jitter_range=1,
        retry_total=6,
        retry_connect=6,
        retry_read=6,
        retry_status=6,
    )


class AccessError(Exception):
    """An identity reference that this pool cannot use."""


class EscapeError(OSError):
    """A resource file whose path would leave the working directory."""


class Storage:
    def __init__(self, connection_string: str | None, identities: Sequence[str]) -> None:
        self.identities = {identity.lower() for identity in identities}
        self._containers: dict[tuple[str, bool], ContainerClient] = {}
        self._lock = threading.Lock()
        self._transfers = ThreadPoolExecutor(PARALLEL_TRANSFERS, "transfer")
        self.service: BlobServiceClient | None = None
        self.key: dict[str, str] | None = None
        # Anything at an httpUrl (a SAS URL, or any web server) with the same retries.
        self._http: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            "", policies=[RetryPolicy(**HTTP_RETRY)]
        )
        if connection_string:
            self.service = BlobServiceClient.from_connection_string(
                connection_string, retry_policy=storage_retry()
            )
            credential = self.service.credential
            self.key = {
                "account_name": credential.account_name,
                "account_key": credential.account_key,
            }

    def _container(self, url: str, credential: dict[str, str] | None) -> ContainerClient:
        """A client per container URL and credential, kept so its connections are reused."""
        key = (url, credential is not None)
        with self._lock:
            client = self._containers.get(key)
            if client is None:
                client = ContainerClient.from_container_url(
                    url, credential=credential, retry_policy=storage_retry()
                )
                self._containers[key] = client
        return client

    def _credential(self, reference: dict[str, Any] | None) -> dict[str, str] | None:
        if not reference:
            return None  # anonymous, or the SAS in the URL
        resource_id = str(reference.get("resourceId", "")).lower()
        if resource_id not in self.identities:
            raise AccessError(
                f"The identity {reference.get('resourceId')} is not assigned to the pool."
            )
        if self.key is None:
            raise AccessError("The emulator was started without a storage account.")
        return self.key

    # --- resource files -----------------------------------------------------------------

    def download(self, files: Sequence[dict[str, Any]], working: Path) -> Failure | None:
        started = [self._transfers.submit(self._download_one, file, working) for file in files]
        for future in started:
            try:
                future.result()
            except AccessError as error:
                return failures.BLOB_ACCESS_DENIED(str(error))
            except ResourceNotFoundError:
                return _download_failure(404, "")
            except (ClientAuthenticationError, HttpResponseError) as error:
                return _download_failure(error.status_code, str(error.reason))
            except AzureError as error:  # no answer, even after the retries
                return _download_failure(None, str(error.message))
            except OSError as error:
                message = f"Failure creating a resource file: {error}"
                return failures.RESOURCE_FILE_CREATE_FAILED(message)
        return None

    def _download_one(self, file: dict[str, Any], working: Path) -> None:
        credential = self._credential(file.get("identityReference"))
        file_path = file.get("filePath") or ""
        if file.get("httpUrl"):
            target = inside(working, file_path)
            if credential is None:
                response = self._http.send_request(HttpRequest("GET", file["httpUrl"]))
                response.raise_for_status()
                data = response.read()
            else:
                parsed = BlobClient.from_blob_url(file["httpUrl"])  # parses only
                name = parsed.blob_name  # percent-decoded, as the service reads it
                parts = urlsplit(file["httpUrl"])
                end = (
                    parts.path.index(f"/{parsed.container_name}/") + len(parsed.container_name) + 1
                )
                container_url = f"{parts.scheme}://{parts.netloc}{parts.path[:end]}"
                data = self._container(container_url, credential).download_blob(name).readall()
            _write(target, data, file.get("fileMode"))
            return
        if file.get("storageContainerUrl"):
            container = self._container(file["storageContainerUrl"], credential)
        else:
            if self.service is None:
                raise AccessError("The emulator was started without a storage account.")
            container = self.service.get_container_client(file["autoStorageContainerName"])
        for blob in container.list_blobs(name_starts_with=file.get("blobPrefix") or None):
            place = inside(working, f"{file_path}/{blob.name}" if file_path else blob.name)
            data = container.download_blob(blob.name).readall()
            _write(place, data, file.get("fileMode"))

    # --- output files -------------------------------------------------------------------

    def upload(
        self, files: Sequence[dict[str, Any]], task_directory: Path, exit_code: int | None
    ) -> Failure | None:
        working = task_directory / "wd"
        log: list[str] = []
        errors: list[str] = []
        failure: Failure | None = None
        for file in files:
            condition = file["uploadOptions"]["uploadCondition"].lower()
            succeeded = exit_code == 0
            if (condition == "tasksuccess" and not succeeded) or (
                condition == "taskfailure" and succeeded
            ):
                continue
            destination = file["destination"]["container"]
            url = _without_query(destination["containerUrl"])
            try:
                credential = self._credential(destination.get("identityReference"))
                container = self._container(destination["containerUrl"], credential)
                found = matches(file["filePattern"], working, destination.get("path"))
                sending = [
                    self._transfers.submit(_upload_one, container, path, name)
                    for path, name in found
                ]
                for (path, name), future in zip(found, sending, strict=True):
                    _wait_all_then_raise(sending, future)
                    log.append(f"Uploaded {path} to {url}/{name}")
            except AccessError as error:
                failure = failure or failures.FILE_UPLOAD_ACCESS_DENIED(str(error))
                errors.append(str(error))
            except ResourceNotFoundError as error:
                failure = failure or _upload_failure(404)
                errors.append(str(error.reason))
            except (ClientAuthenticationError, HttpResponseError) as error:
                failure = failure or _upload_failure(error.status_code)
                errors.append(str(error.reason))
            except OSError as error:
                failure = failure or _upload_failure(None)
                errors.append(str(error))
        if files:
            (task_directory / "fileuploadout.txt").write_text("".join(f"{line}\n" for line in log))
            (task_directory / "fileuploaderr.txt").write_text(
                "".join(f"{line}\n" for line in errors)
            )
        return failure


def _upload_one(container: ContainerClient, path: Path, name: str) -> None:
    with open(path, "rb") as data:
        container.upload_blob(name, data, overwrite=True)


def _wait_all_then_raise(sending: Sequence[Future[None]], future: Future[None]) -> None:
    """One upload's outcome; when it failed, only once the others have ended (a failing
    task's other files still arrive, as on a node)."""
    if future.exception() is not None:
        for other in sending:
            other.exception()
        future.result()


def matches(pattern: str, working: Path, path: str | None) -> list[tuple[Path, str]]:
    """Files a filePattern selects, each with its blob name, by Batch's rules.

    Without a wildcard, ``path`` is the blob's name (default: the file's name). With one,
    ``path`` is a virtual directory and each file keeps its path below the pattern's
    fixed leading directories. Files outside the task directory (``working``'s parent)
    are never selected, however the pattern or a symbolic link points there.
    """
    parts = pattern.replace("\\", "/").split("/")
    fixed = 0
    while fixed < len(parts) and not _WILDCARDS & set(parts[fixed]):
        fixed += 1
    task_directory = working.parent  # where ``../`` may reach, and no further
    if fixed == len(parts):  # no wildcard: one file
        file = working / pattern
        contained = file.is_file() and _contained(file, task_directory)
        return [(file, path or file.name)] if contained else []
    base = (working / "/".join(parts[:fixed])).resolve() if fixed else working.resolve()
    found = []
    seen: set[Path] = set()  # a file once, however many links lead to it
    for name in sorted(glob.glob(str(working / pattern), recursive=True)):
        file = Path(name)
        real = file.resolve()
        # Below the pattern's own directory too: a link elsewhere has no blob name.
        if file.is_file() and _contained(file, task_directory) and _contained(file, base):
            if real in seen:
                continue
            seen.add(real)
            relative = real.relative_to(base).as_posix()
            found.append((file, f"{path.rstrip('/')}/{relative}" if path else relative))
    return found


def _download_failure(status: int | None, detail: str) -> Failure:
    if status == 404:
        return failures.BLOB_NOT_FOUND()
    if status in (401, 403):
        return failures.BLOB_ACCESS_DENIED()
    return failures.BLOB_DOWNLOAD_MISC_ERROR(f"Error downloading a resource file: {detail}")


def _upload_failure(status: int | None) -> Failure:
    if status == 404:
        return failures.FILE_UPLOAD_CONTAINER_NOT_FOUND()
    if status in (401, 403):
        return failures.FILE_UPLOAD_ACCESS_DENIED()
    return failures.FILE_UPLOAD_MISC_ERROR()


def inside(root: Path, relative: str) -> Path:
    """``root/relative``, unless that (symbolic links followed) is not below ``root``:
    a ``..``, an absolute path or a link out raises EscapeError."""
    target = (root / relative).resolve()
    if target == root.resolve() or not target.is_relative_to(root.resolve()):
        raise EscapeError(f"The path {relative!r} is outside the task's working directory.")
    return target


def _contained(file: Path, root: Path) -> bool:
    return file.resolve().is_relative_to(root.resolve())


def _write(target: Path, data: bytes, mode: str | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    os.chmod(target, int(mode, 8) if mode else 0o770)


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
