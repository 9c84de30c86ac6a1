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

Access is by the SAS in a URL, or by ``identityReference``: a node's managed identity,
which the emulator plays by reading with the storage account's key, for the identities
it was told the pool has. An identity it does not know is refused, as on a pool
without it.
"""

from __future__ import annotations

import glob
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

from emulator import failures
from emulator.failures import Failure

_WILDCARDS = set("*?[")
PARALLEL_TRANSFERS = 8  # a task's files moving at once; tasks share the pool


class AccessError(Exception):
    """An identity reference that this pool cannot use."""


class Storage:
    def __init__(self, connection_string: str | None, identities: Sequence[str]) -> None:
        self.identities = {identity.lower() for identity in identities}
        self._containers: dict[tuple[str, bool], ContainerClient] = {}
        self._lock = threading.Lock()
        self._transfers = ThreadPoolExecutor(PARALLEL_TRANSFERS, "transfer")
        self.service: BlobServiceClient | None = None
        self.key: dict[str, str] | None = None
        if connection_string:
            self.service = BlobServiceClient.from_connection_string(connection_string)
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
                client = ContainerClient.from_container_url(url, credential=credential)
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
            except urllib.error.HTTPError as error:
                return _download_failure(error.code, f"HTTP {error.code}")
            except (urllib.error.URLError, OSError) as error:
                message = f"Failure creating a resource file: {error}"
                return failures.RESOURCE_FILE_CREATE_FAILED(message)
        return None

    def _download_one(self, file: dict[str, Any], working: Path) -> None:
        credential = self._credential(file.get("identityReference"))
        target = working / file.get("filePath", "")
        if file.get("httpUrl"):
            if credential is None:
                with urllib.request.urlopen(file["httpUrl"], timeout=60) as response:
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
            data = container.download_blob(blob.name).readall()
            _write(target / blob.name, data, file.get("fileMode"))

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
    fixed leading directories.
    """
    parts = pattern.replace("\\", "/").split("/")
    fixed = 0
    while fixed < len(parts) and not _WILDCARDS & set(parts[fixed]):
        fixed += 1
    if fixed == len(parts):  # no wildcard: one file
        file = working / pattern
        return [(file, path or file.name)] if file.is_file() else []
    base = (working / "/".join(parts[:fixed])).resolve() if fixed else working.resolve()
    found = []
    for name in sorted(glob.glob(str(working / pattern), recursive=True)):
        file = Path(name)
        if file.is_file():
            relative = file.resolve().relative_to(base).as_posix()
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


def _write(target: Path, data: bytes, mode: str | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    os.chmod(target, int(mode, 8) if mode else 0o770)


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
