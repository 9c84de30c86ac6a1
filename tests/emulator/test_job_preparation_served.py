"""Jobs' preparation and release tasks as real processes: their directories, output,
environment and resource files on the node, and a preparation surviving a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.storage.blob import BlobServiceClient

from local_stack import servers
from tests.emulator.conftest import (
    blob_sas_url,
    client_for,
    pool_options,
    unique,
    wait_for,
    wait_for_task,
)

pytestmark = pytest.mark.served  # real processes, storage or authentication

STOP: Any = {"terminateReason": "Stopped by test"}  # azure-batch 15 cannot send no options
PREPARED = '"$AZ_BATCH_JOB_PREP_WORKING_DIR"'  # quoted for the shell
SHOW = "/bin/sh -c 'env | sort; ls; echo to-stderr >&2; echo made > made.txt'"


def _node_file(batch: BatchClient, pool_id: str, node_id: str, path: str) -> str:
    return b"".join(batch.download_node_file(pool_id, node_id, path)).decode()


def _environment(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _resource(storage_connection: str, name: str, content: bytes) -> models.ResourceFile:
    """A blob in a new container, as a resource file read through a SAS URL."""
    container = BlobServiceClient.from_connection_string(storage_connection).create_container(
        unique("prep")
    )
    container.upload_blob(name, content)
    return models.ResourceFile(http_url=blob_sas_url(container, name), file_path=name)


def test_files_and_environment_of_the_preparation_release_and_tasks(
    batch, pool, storage_connection
):
    job_id = unique("job")
    batch.create_job(
        models.BatchJobCreateOptions(
            id=job_id,
            pool_info=models.BatchPoolInfo(pool_id=pool),
            job_preparation_task=models.BatchJobPreparationTask(
                id="prep",
                command_line=SHOW,
                environment_settings=[models.EnvironmentSetting(name="STAGE", value="prepare")],
                resource_files=[_resource(storage_connection, "given.txt", b"for prep")],
            ),
            job_release_task=models.BatchJobReleaseTask(
                id="rel",
                command_line=f"/bin/sh -c 'env | sort; cat {PREPARED}/made.txt'",
                environment_settings=[models.EnvironmentSetting(name="STAGE", value="release")],
            ),
        )
    )
    batch.create_task(
        job_id,
        models.BatchTaskCreateOptions(
            id="t",
            command_line=f"/bin/sh -c 'env | sort; cat {PREPARED}/given.txt'",
        ),
    )
    task = wait_for_task(batch, job_id, "t")
    assert task.execution_info.result == "success"
    node_id = task.node_info.node_id
    batch.begin_terminate_job(job_id, options=STOP, polling_interval=0.05).result(timeout=10)
    assert batch.get_job(job_id).state == "completed"

    prep_dir = f"workitems/{job_id}/job-1/prep"
    prepared = _node_file(batch, pool, node_id, f"{prep_dir}/stdout.txt")
    env = _environment(prepared)
    assert "given.txt" in prepared.splitlines()  # downloaded into its working directory
    assert (env["STAGE"], env["AZ_BATCH_JOB_ID"], env["AZ_BATCH_TASK_ID"]) == (
        "prepare",
        job_id,
        "prep",
    )
    root = Path(env["AZ_BATCH_NODE_ROOT_DIR"])
    assert Path(env["AZ_BATCH_TASK_DIR"]) == root / prep_dir
    assert Path(env["AZ_BATCH_TASK_WORKING_DIR"]) == root / prep_dir / "wd"
    assert (env["AZ_BATCH_POOL_ID"], env["AZ_BATCH_NODE_ID"]) == (pool, node_id)
    assert "AZ_BATCH_JOB_PREP_DIR" not in env  # not the preparation's own
    assert _node_file(batch, pool, node_id, f"{prep_dir}/stderr.txt") == "to-stderr\n"

    ran = _node_file(batch, pool, node_id, f"workitems/{job_id}/job-1/t/stdout.txt")
    env = _environment(ran)
    assert Path(env["AZ_BATCH_JOB_PREP_DIR"]) == root / prep_dir
    assert Path(env["AZ_BATCH_JOB_PREP_WORKING_DIR"]) == root / prep_dir / "wd"
    assert ran.endswith("for prep")

    released = _node_file(batch, pool, node_id, f"workitems/{job_id}/job-1/rel/stdout.txt")
    env = _environment(released)
    assert (env["STAGE"], env["AZ_BATCH_TASK_ID"]) == ("release", "rel")
    assert Path(env["AZ_BATCH_JOB_PREP_WORKING_DIR"]) == root / prep_dir / "wd"
    assert released.endswith("made\n")  # release removes nothing by itself

    (status,) = batch.list_job_preparation_and_release_task_status(job_id)
    release = status.job_release_task_execution_info
    assert (release.state, release.exit_code, release.result) == ("completed", 0, "success")
    files = batch.list_node_files(
        pool, node_id, recursive=True, filter=f"startswith(name, '{prep_dir}')"
    )
    listed = [file.name for file in files]
    assert f"{prep_dir}/wd/made.txt" in listed


def _pids(pattern: str) -> set[str]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return set(found.stdout.split())


def test_a_preparation_running_when_the_emulator_dies_runs_again(tmp_path):
    data, log, runs = tmp_path / "state", tmp_path / "emulator.log", tmp_path / "runs"
    marker = "63.219"
    prepare = (
        f"/bin/sh -c 'echo run >> {runs}; [ -e {runs}.done ] && exit 0; "
        f"touch {runs}.done; sleep {marker}'"
    )
    server = servers.start_emulator(data, log)
    try:
        batch = client_for(server.url)
        batch.create_pool(pool_options("p", target_dedicated_nodes=1))
        batch.create_job(
            models.BatchJobCreateOptions(
                id="j",
                pool_info=models.BatchPoolInfo(pool_id="p"),
                job_preparation_task=models.BatchJobPreparationTask(command_line=prepare),
            )
        )
        batch.create_task("j", models.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
        before = wait_for(lambda: _pids(f"sleep {marker}"))
        assert batch.get_task("j", "t").state == "preparing"
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
    finally:
        servers.stop(server)

    server = servers.start_emulator(data, log, port=server.port)
    try:
        batch = client_for(server.url)
        assert not before & _pids(f"sleep {marker}")  # the orphan was ended
        task = wait_for_task(batch, "j", "t")
        assert (task.execution_info.result, task.execution_info.requeue_count) == ("success", 1)
        (status,) = batch.list_job_preparation_and_release_task_status("j")
        info = status.job_preparation_task_execution_info
        assert info is not None
        assert (info.state, info.result) == ("completed", "success")
        assert runs.read_text().splitlines() == ["run", "run"]
    finally:
        servers.stop(server)
