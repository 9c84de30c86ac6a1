"""Resource files in and output files out, against Azurite, with SAS or pool identity."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.batch import models
from azure.storage.blob import (
    BlobServiceClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from contract import local as local_keys
from tests.emulator.conftest import POOL_IDENTITY, blob_sas_url, read_file, wait_for_task

pytestmark = pytest.mark.served  # real processes, storage or authentication

IDENTITY = models.BatchNodeIdentityReference(resource_id=POOL_IDENTITY)


@pytest.fixture(scope="module")
def blobs(storage_connection):
    return BlobServiceClient.from_connection_string(storage_connection)


@pytest.fixture
def container(blobs):
    client = blobs.create_container(f"c{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()


def _expiry():
    return datetime.now(UTC) + timedelta(hours=1)


def _container_sas_url(container, **permissions):
    sas = generate_container_sas(
        local_keys.STORAGE_ACCOUNT,
        container.container_name,
        account_key=local_keys.STORAGE_KEY,
        permission=ContainerSasPermissions(**permissions),
        expiry=_expiry(),
    )
    return f"{container.url}?{sas}"


def _run(batch, job, task_id, command_line="/bin/true", **settings):
    batch.create_task(
        job, models.BatchTaskCreateOptions(id=task_id, command_line=command_line, **settings)
    )
    return wait_for_task(batch, job, task_id)


def test_resource_file_from_an_http_url_with_sas(batch, job, container):
    container.upload_blob("input.txt", b"hello from blob")
    files = [
        models.ResourceFile(
            http_url=blob_sas_url(container, "input.txt"),
            file_path="in/data.txt",
            file_mode="0640",
        )
    ]
    task = _run(
        batch,
        job,
        "http",
        "/bin/sh -c 'cat in/data.txt; stat -c %a in/data.txt'",
        resource_files=files,
    )
    assert task.execution_info.result == "success"
    assert read_file(batch, job, "http", "stdout.txt") == "hello from blob640\n"


def test_resource_files_from_a_container_with_the_pool_identity(batch, job, container):
    for name in ("job1/a.txt", "job1/sub/b.txt", "job2/c.txt"):
        container.upload_blob(name, name.encode())
    files = [
        models.ResourceFile(
            storage_container_url=container.url, blob_prefix="job1/", identity_reference=IDENTITY
        )
    ]
    task = _run(
        batch,
        job,
        "prefix",
        "/bin/sh -c 'cat job1/a.txt job1/sub/b.txt; test ! -e job2'",
        resource_files=files,
    )
    assert task.execution_info.result == "success", task.execution_info.failure_info
    assert read_file(batch, job, "prefix", "stdout.txt") == "job1/a.txtjob1/sub/b.txt"


def test_resource_files_from_the_auto_storage_container(batch, job, container):
    container.upload_blob("auto.txt", b"auto")
    files = [
        models.ResourceFile(auto_storage_container_name=container.container_name, file_path="auto")
    ]
    task = _run(batch, job, "auto", "/bin/cat auto/auto.txt", resource_files=files)
    assert read_file(batch, job, "auto", "stdout.txt") == "auto"
    assert task.execution_info.result == "success"


def test_a_missing_blob_fails_the_task_with_blob_not_found(batch, job, container):
    files = [models.ResourceFile(http_url=blob_sas_url(container, "absent.txt"), file_path="x")]
    task = _run(batch, job, "missing", resource_files=files)
    info = task.execution_info
    assert (info.result, info.failure_info.code, info.failure_info.category) == (
        "failure",
        "BlobNotFound",
        "usererror",
    )
    assert info.exit_code is None


def test_an_unknown_identity_is_refused(batch, job, container):
    container.upload_blob("secret.txt", b"x")
    stranger = models.BatchNodeIdentityReference(resource_id=POOL_IDENTITY + "-other")
    files = [models.ResourceFile(storage_container_url=container.url, identity_reference=stranger)]
    task = _run(batch, job, "stranger", resource_files=files)
    assert task.execution_info.failure_info.code == "BlobAccessDenied"


def test_a_resource_file_path_may_not_leave_the_working_directory(batch, job, container):
    files = [models.ResourceFile(http_url=blob_sas_url(container, "a"), file_path="../../escape")]
    with pytest.raises(Exception, match="InvalidPropertyValue"):
        batch.create_task(
            job,
            models.BatchTaskCreateOptions(
                id="escape", command_line="/bin/true", resource_files=files
            ),
        )


def _output(pattern, container_url, path=None, condition="taskcompletion", identity=None):
    return models.OutputFile(
        file_pattern=pattern,
        destination=models.OutputFileDestination(
            container=models.OutputFileBlobContainerDestination(
                container_url=container_url, path=path, identity_reference=identity
            )
        ),
        upload_options=models.OutputFileUploadConfiguration(upload_condition=condition),
    )


def test_output_files_follow_batch_pattern_rules(batch, job, container):
    url = _container_sas_url(container, write=True, create=True)
    outputs = [
        _output("out/**/*.txt", url, "results/t1"),
        _output("../std*.txt", url, "logs"),
        _output("single.dat", url, "exact/name.dat"),
        _output("nothing-*.none", url, "never"),
        _output("single.dat", url, "only-on-failure.dat", condition="taskfailure"),
    ]
    script = (
        "mkdir -p out/sub && echo a > out/a.txt && echo b > out/sub/b.txt"
        " && echo s > single.dat && echo done"
    )
    task = _run(batch, job, "outputs", f"/bin/sh -c '{script}'", output_files=outputs)
    assert task.execution_info.result == "success", task.execution_info.failure_info
    names = sorted(blob.name for blob in container.list_blobs())
    assert names == [
        "exact/name.dat",
        "logs/stderr.txt",
        "logs/stdout.txt",
        "results/t1/a.txt",
        "results/t1/sub/b.txt",
    ]
    assert container.download_blob("logs/stdout.txt").readall() == b"done\n"
    uploaded = read_file(batch, job, "outputs", "fileuploadout.txt")
    assert "sig=" not in uploaded  # no SAS in the node's upload log


def test_output_files_with_the_pool_identity_and_on_failure(batch, job, container):
    outputs = [
        _output(
            "../stderr.txt",
            container.url,
            "failed/stderr.txt",
            condition="taskfailure",
            identity=IDENTITY,
        ),
        _output(
            "../stdout.txt", container.url, "never.txt", condition="tasksuccess", identity=IDENTITY
        ),
    ]
    task = _run(batch, job, "fails", "/bin/sh -c 'echo boom >&2; exit 4'", output_files=outputs)
    assert task.execution_info.exit_code == 4
    assert [blob.name for blob in container.list_blobs()] == ["failed/stderr.txt"]
    assert container.download_blob("failed/stderr.txt").readall() == b"boom\n"


def test_an_upload_to_a_missing_container_fails_the_task(batch, job, blobs):
    url = f"{blobs.url}/no-such-container-{uuid.uuid4().hex[:6]}"
    outputs = [_output("../stdout.txt", url, "x.txt", identity=IDENTITY)]
    task = _run(batch, job, "nowhere", "/bin/true", output_files=outputs)
    info = task.execution_info
    assert (info.exit_code, info.result) == (0, "failure")
    assert info.failure_info.code == "FileUploadContainerNotFound"
