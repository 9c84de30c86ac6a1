"""What the service runs and the emulator does not: containers, job manager tasks and
multi-instance tasks are refused when they are asked for, instead of being stored and
something else run (a container task's command line on the host, where a workflow engine's
containerised task then fails in confusing ways). The error names the property and the
image, never a registry password."""

from __future__ import annotations

import pytest
from azure.batch import models
from azure.batch.models import CreateTasksError
from azure.core.exceptions import HttpResponseError

from tests.emulator.conftest import pool_options, raises_batch_error, unique

REGISTRY = models.ContainerRegistryReference(
    registry_server="registry.example", username="me", password="registry-secret"
)


def _details(error: HttpResponseError) -> dict[str, str | None]:
    """The error's values: PropertyName, PropertyValue, Reason."""
    assert error.error is not None
    return {detail.code: detail.message for detail in error.error.details or []}


def _refused_for_containers(error: HttpResponseError, name: str, value: str) -> None:
    assert "registry-secret" not in str(error)
    details = _details(error)
    assert details["PropertyName"] == name
    assert details["PropertyValue"] == value
    assert "runs no containers" in (details["Reason"] or "")


def test_a_container_pool_is_refused_and_not_created(batch):
    pool_id = unique("containers")
    options = pool_options(pool_id, target_dedicated_nodes=0)
    assert options.virtual_machine_configuration is not None
    options.virtual_machine_configuration.container_configuration = (
        models.BatchContainerConfiguration(
            type="dockerCompatible", container_image_names=["busybox"],
            container_registries=[REGISTRY],
        )
    )  # fmt: skip
    error = raises_batch_error(lambda: batch.create_pool(options), 400, "InvalidPropertyValue")
    _refused_for_containers(
        error, "virtualMachineConfiguration.containerConfiguration", "dockerCompatible"
    )
    assert pool_id not in [p.id for p in batch.list_pools()]


def test_a_start_task_in_a_container_is_refused(batch):
    options = pool_options(unique("containers"), target_dedicated_nodes=0)
    options.start_task = models.BatchStartTask(
        command_line="/bin/true",
        container_settings=models.BatchTaskContainerSettings(image_name="busybox:1.36"),
    )
    error = raises_batch_error(lambda: batch.create_pool(options), 400, "InvalidPropertyValue")
    _refused_for_containers(error, "startTask.containerSettings", "busybox:1.36")


def test_container_tasks_are_refused_alone_and_in_a_collection(batch, job):
    settings = models.BatchTaskContainerSettings(image_name="nextflow/bash", registry=REGISTRY)
    task = models.BatchTaskCreateOptions(
        id="in-a-container", command_line="bash .command.run", container_settings=settings
    )
    error = raises_batch_error(lambda: batch.create_task(job, task), 400, "InvalidPropertyValue")
    _refused_for_containers(error, "containerSettings", "nextflow/bash")

    plain = models.BatchTaskCreateOptions(id="on-the-host", command_line="/bin/true")
    with pytest.raises(CreateTasksError) as caught:  # each task gets its own answer
        batch.create_tasks(job, [task, plain])
    [failed] = caught.value.failure_tasks
    assert (failed.task_id, failed.status) == ("in-a-container", "clienterror")
    assert failed.error.code == "InvalidPropertyValue"
    assert [t.id for t in batch.list_tasks(job)] == ["on-the-host"]


def test_a_job_preparation_task_in_a_container_is_refused(batch, pool):
    job_id = unique("job")
    preparation = models.BatchJobPreparationTask(
        command_line="/bin/true",
        container_settings=models.BatchTaskContainerSettings(image_name="busybox"),
    )
    options = models.BatchJobCreateOptions(
        id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool), job_preparation_task=preparation
    )
    error = raises_batch_error(lambda: batch.create_job(options), 400, "InvalidPropertyValue")
    _refused_for_containers(error, "containerSettings", "busybox")
    assert job_id not in [j.id for j in batch.list_jobs()]


def test_a_job_manager_task_is_refused(batch, pool):
    job_id = unique("job")
    options = models.BatchJobCreateOptions(
        id=job_id,
        pool_info=models.BatchPoolInfo(pool_id=pool),
        job_manager_task=models.BatchJobManagerTask(id="manager", command_line="/bin/true"),
    )
    error = raises_batch_error(lambda: batch.create_job(options), 400, "InvalidPropertyValue")
    details = _details(error)
    assert details["PropertyName"] == "jobManagerTask"
    assert "does not run job manager tasks" in (details["Reason"] or "")
    assert job_id not in [j.id for j in batch.list_jobs()]


def test_a_multi_instance_task_is_refused(batch, job):
    task = models.BatchTaskCreateOptions(
        id="mpi",
        command_line="mpirun -np 2 ./solver",
        multi_instance_settings=models.MultiInstanceSettings(
            coordination_command_line="/bin/true", number_of_instances=2
        ),
    )
    error = raises_batch_error(lambda: batch.create_task(job, task), 400, "InvalidPropertyValue")
    assert _details(error)["PropertyName"] == "multiInstanceSettings"
    assert list(batch.list_tasks(job)) == []
