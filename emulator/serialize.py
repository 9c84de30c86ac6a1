"""Records as the Batch REST API's JSON documents: the only place the wire shape is built.

Each function takes a record and returns the document the service would return for it
(camelCase, timestamps as ``wire.timestamp`` writes them). A property the client sent is
echoed from the record's ``spec``; what the service owns comes after and wins.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from emulator import wire
from emulator.failures import Failure
from emulator.records import (
    AutoScaleRun,
    Entity,
    Job,
    JobSchedule,
    Node,
    NodePreparation,
    Pool,
    PoolNodeCounts,
    PoolUsage,
    PreparationRun,
    RecentTask,
    Rejected,
    ReleaseRun,
    ResizeError,
    Run,
    StartTaskRun,
    SupportedImage,
    Task,
    TaskCounts,
    TaskRun,
)

Document = dict[str, Any]


def _state(entity: Entity) -> Document:
    document: Document = {
        "state": entity.state,
        "stateTransitionTime": wire.timestamp(entity.state_since),
    }
    if entity.previous_state is not None and entity.previous_since is not None:
        document["previousState"] = entity.previous_state
        document["previousStateTransitionTime"] = wire.timestamp(entity.previous_since)
    if entity.last_modified is not None and entity.etag is not None:
        document["lastModified"] = wire.timestamp(entity.last_modified)
        document["eTag"] = entity.etag
    return document


def failure(info: Failure) -> Document:
    document: Document = {"category": info.category, "code": info.code, "message": info.message}
    if info.details:
        document["details"] = [{"name": name, "value": value} for name, value in info.details]
    return document


def _run(run: Run) -> Document:
    document: Document = {}
    if run.start_time is not None:
        document["startTime"] = wire.timestamp(run.start_time)
    if run.end_time is not None:
        document["endTime"] = wire.timestamp(run.end_time)
    if run.exit_code is not None:
        document["exitCode"] = run.exit_code
    if run.result is not None:
        document["result"] = run.result
    if run.failure is not None:
        document["failureInfo"] = failure(run.failure)
    document["retryCount"] = run.retry_count
    return document


def start_task_info(run: StartTaskRun) -> Document:
    return {"state": run.state, **_run(run)}


def execution_info(run: TaskRun) -> Document:
    document = {**_run(run), "requeueCount": run.requeue_count}
    if run.last_retry_time is not None:
        document["lastRetryTime"] = wire.timestamp(run.last_retry_time)
    if run.last_requeue_time is not None:
        document["lastRequeueTime"] = wire.timestamp(run.last_requeue_time)
    return document


def resize_error(error: ResizeError) -> Document:
    document: Document = {"code": error.code, "message": error.message}
    if error.values:
        document["values"] = [{"name": name, "value": value} for name, value in error.values]
    return document


def pool(record: Pool) -> Document:
    document: Document = {
        **record.spec,
        "url": record.url,
        "creationTime": wire.timestamp(record.created),
        "allocationState": record.allocation_state,
        "allocationStateTransitionTime": wire.timestamp(record.allocation_since or record.created),
        "currentDedicatedNodes": record.current_dedicated,
        "currentLowPriorityNodes": record.current_low_priority,
        **_state(record),
    }
    if record.resize_errors and record.allocation_state == "steady":  # as the service shows them
        document["resizeErrors"] = [resize_error(error) for error in record.resize_errors]
    if record.spec.get("enableAutoScale") and record.autoscale_run is not None:
        document["autoScaleRun"] = autoscale_run(record.autoscale_run)
    return document


def autoscale_run(run: AutoScaleRun) -> Document:
    document: Document = {"timestamp": wire.timestamp(run.timestamp)}
    if run.results is not None:
        document["results"] = run.results
    if run.error is not None:
        document["error"] = {
            "code": run.error.code,
            "message": run.error.message,
            "values": [{"name": name, "value": value} for name, value in run.error.values],
        }
    return document


def node(record: Node) -> Document:
    document: Document = {
        "id": record.id,
        "url": record.url,
        "schedulingState": record.scheduling_state,
        "allocationTime": wire.timestamp(record.allocated),
        "lastBootTime": wire.timestamp(record.booted or record.allocated),
        "ipAddress": "127.0.0.1",
        "affinityId": f"TVM:{record.id}",
        "vmSize": record.vm_size,
        "totalTasksRun": record.total_tasks_run,
        "runningTasksCount": len(record.running),
        "runningTaskSlotsCount": record.running_slots,
        "totalTasksSucceeded": record.total_tasks_succeeded,
        "isDedicated": record.dedicated,
        "virtualMachineInfo": {"imageReference": _exact(record.image_reference)},
        "nodeAgentInfo": {
            "version": NODE_AGENT_VERSION,
            "lastUpdateTime": wire.timestamp(record.booted or record.allocated),
        },
        **_state(record),
    }
    if record.start_task_spec is not None:
        document["startTask"] = record.start_task_spec
    if record.start_task is not None:
        document["startTaskInfo"] = start_task_info(record.start_task)
    if record.recent_tasks:
        document["recentTasks"] = [recent_task(entry) for entry in record.recent_tasks]
    return document


NODE_AGENT_VERSION = "1.12.19"
"""The node agent's version as the spec's Nodes_Get_DualStackNetworking example (2025)
shows it; its lastUpdateTime is the node's last boot, as in Nodes_GetNode."""


def _exact(image_reference: Document) -> Document:
    """The image a node runs: its exactVersion is the version it was asked for, as the
    spec's Nodes_Get_DualStackNetworking example shows for ``latest``."""
    if "virtualMachineImageId" in image_reference or "version" not in image_reference:
        return image_reference
    return {**image_reference, "exactVersion": image_reference["version"]}


def recent_task(entry: RecentTask) -> Document:
    """An entry of a node's recentTasks (BatchTaskInfo)."""
    return {
        "taskUrl": entry.task_url,
        "jobId": entry.job_id,
        "taskId": entry.task_id,
        "taskState": entry.state,
        "executionInfo": execution_info(entry.run),
    }


_NODE_COUNT_STATES = {
    "creating": "creating",
    "deallocated": "deallocated",
    "deallocating": "deallocating",
    "idle": "idle",
    "leavingpool": "leavingPool",
    "offline": "offline",
    "preempted": "preempted",
    "rebooting": "rebooting",
    "reimaging": "reimaging",
    "running": "running",
    "starting": "starting",
    "starttaskfailed": "startTaskFailed",
    "unknown": "unknown",
    "unusable": "unusable",
    "waitingforstarttask": "waitingForStartTask",
    "upgradingos": "upgradingOS",
}
"""A node state's name in BatchNodeCounts: every state is counted, zero or not, as in the
spec's Pools_ListPoolNodeCounts example."""


def _node_counts(by_state: dict[str, int]) -> Document:
    document = {key: by_state.get(state, 0) for state, key in _NODE_COUNT_STATES.items()}
    return {**document, "total": sum(by_state.values())}


def pool_node_counts(record: PoolNodeCounts) -> Document:
    return {
        "poolId": record.pool_id,
        "dedicated": _node_counts(record.dedicated),
        "lowPriority": _node_counts(record.low_priority),
    }


def pool_usage(record: PoolUsage) -> Document:
    """An entry of poolusagemetrics; its times are whole, as in the spec's example."""
    return {
        "poolId": record.pool_id,
        "startTime": record.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endTime": record.end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vmSize": record.vm_size,
        "totalCoreHours": record.core_hours,
    }


def supported_image(record: SupportedImage) -> Document:
    document: Document = {
        "nodeAgentSKUId": record.node_agent_sku_id,
        "imageReference": {
            "publisher": record.publisher,
            "offer": record.offer,
            "sku": record.sku,
            "version": "latest",
        },
        "verificationType": "verified" if record.verified else "unverified",
        "osType": "linux",
    }
    if record.capabilities:
        document["capabilities"] = list(record.capabilities)
    return document


def job(record: Job) -> Document:
    info: Document = {"startTime": wire.timestamp(record.created), "poolId": record.pool_id}
    if record.end_time is not None:
        info["endTime"] = wire.timestamp(record.end_time)
    if record.terminate_reason is not None:
        info["terminateReason"] = record.terminate_reason
    return {
        **record.spec,
        "url": record.url,
        "creationTime": wire.timestamp(record.created),
        "executionInfo": info,
        **_state(record),
    }


def job_schedule(record: JobSchedule) -> Document:
    info: Document = {}
    if record.next_run is not None:
        info["nextRunTime"] = wire.timestamp(record.next_run)
    if record.recent_job is not None:
        url = record.url.rsplit("/jobschedules/", 1)[0] + f"/jobs/{record.recent_job}"
        info["recentJob"] = {"id": record.recent_job, "url": url}
    if record.end_time is not None:
        info["endTime"] = wire.timestamp(record.end_time)
    return {
        **record.spec,
        "url": record.url,
        "creationTime": wire.timestamp(record.created),
        "executionInfo": info,
        **_state(record),
    }


def task(record: Task) -> Document:
    document: Document = {
        **record.spec,
        "url": record.url,
        "creationTime": wire.timestamp(record.created),
        "executionInfo": execution_info(record.run),
        **_state(record),
    }
    if record.node is not None:
        node_info = record.node
        document["nodeInfo"] = {
            "affinityId": f"TVM:{node_info.node_id}",
            "nodeUrl": node_info.node_url,
            "poolId": node_info.pool_id,
            "nodeId": node_info.node_id,
            "taskRootDirectory": record.directory,
            "taskRootDirectoryUrl": f"{node_info.node_url}/files/{record.directory}",
        }
    return document


def preparation_status(record: NodePreparation, job: Job) -> Document:
    """An entry of a job's jobpreparationandreleasetaskstatus list: each task's info only
    once it has run on the node (the release's only once the job ended)."""
    document: Document = {
        "poolId": record.pool_id,
        "nodeId": record.node_id,
        "nodeUrl": record.node_url,
    }
    if record.preparation is not None:
        directory = f"workitems/{job.id}/job-1/{job.spec['jobPreparationTask']['id']}"
        document["jobPreparationTaskExecutionInfo"] = _hook_run(
            record.preparation, record.node_url, directory
        )
    if record.release is not None and job.spec.get("jobReleaseTask"):
        directory = f"workitems/{job.id}/job-1/{job.spec['jobReleaseTask']['id']}"
        document["jobReleaseTaskExecutionInfo"] = _hook_run(
            record.release, record.node_url, directory
        )
    return document


def _hook_run(run: PreparationRun | ReleaseRun, node_url: str, directory: str) -> Document:
    document: Document = {
        "state": run.state,
        **_run(run),
        "taskRootDirectory": directory,
        "taskRootDirectoryUrl": f"{node_url}/files/{directory}",
    }
    if isinstance(run, PreparationRun):
        if run.last_retry_time is not None:
            document["lastRetryTime"] = wire.timestamp(run.last_retry_time)
    else:
        del document["retryCount"]  # a release is not retried: BatchJobReleaseTaskExecutionInfo
    return document


def task_counts(record: TaskCounts) -> Document:
    return {"taskCounts": record.counts, "taskSlotCounts": record.slots}


def add_task_result(result: Task | Rejected) -> Document:
    """One entry of an addtaskcollection answer."""
    if isinstance(result, Rejected):
        error: Document = {
            "code": result.code,
            "message": {"lang": "en-US", "value": result.message},
        }
        if result.values:
            error["values"] = [{"key": key, "value": value} for key, value in result.values]
        return {"status": "clienterror", "taskId": result.task_id, "error": error}
    assert result.last_modified is not None
    return {
        "status": "success",
        "taskId": result.id,
        "eTag": result.etag,
        "lastModified": wire.timestamp(result.last_modified),
        "location": result.url,
    }
