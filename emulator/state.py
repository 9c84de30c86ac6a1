"""Pools, nodes, jobs and tasks, and every state transition between them.

No HTTP and no processes here: the routes call the operations (named after the Batch
API's), the scheduler asks ``assign``/``pending_start_tasks`` what to run and reports back
through ``task_started``/``task_finished``/``start_task_finished``. Killing a process is
delegated to the ``kill`` callback the composition root provides. Entities are the JSON
documents the API returns (camelCase); keys starting with '_' are internal and never sent.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulator import errors, validate, wire
from emulator.store import Document, Store

Clock = Callable[[], datetime]
TaskKey = tuple[str, str]  # (job id, task id)
COLLECTION_LIMIT = 100


@dataclass(frozen=True)
class Assignment:
    """A task placed on a node slot, for the scheduler to run."""

    job_id: str
    task_id: str
    pool_id: str
    node_id: str


@dataclass(frozen=True)
class Outcome:
    """How a process ended, as the executor reports it."""

    exit_code: int | None
    failure: tuple[str, str, str] | None = None  # (category, code, message)
    started: datetime | None = None
    ended: datetime | None = None


def _failure_info(outcome: Outcome) -> Document:
    """failureInfo as the service reports it; a plain non-zero exit is FailureExitCode."""
    if outcome.failure is None:
        return {
            "category": "usererror",
            "code": "FailureExitCode",
            "message": "The task process exited with an unexpected exit code",
            "details": [{"name": "AdditionalErrorCode", "value": "FailureExitCode"}],
        }
    category, code, message = outcome.failure
    return {"category": category, "code": code, "message": message}


def public(document: Document) -> Document:
    """The document as the API returns it: internal '_' keys removed."""
    return {key: value for key, value in document.items() if not key.startswith("_")}


class BatchState:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        account_url: str,
        autoscale_nodes: int | None = None,
        kill: Callable[[str, str, str], None] = lambda kind, a, b: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.account_url = account_url.rstrip("/")
        self.autoscale_nodes = autoscale_nodes or os.cpu_count() or 1
        self.kill = kill  # kill("task", job_id, task_id) or kill("start", pool_id, node_id)
        self.on_change: Callable[[], None] = lambda: None
        self._sequence = itertools.count()
        self.pools: dict[str, Document] = dict(store.load("pool"))
        self.nodes: dict[str, dict[str, Document]] = {pool_id: {} for pool_id in self.pools}
        for _, node in store.load("node"):
            self.nodes.setdefault(node["_pool"], {})[node["id"]] = node
        self.jobs: dict[str, Document] = dict(store.load("job"))
        self.tasks: dict[str, dict[str, Document]] = {job_id: {} for job_id in self.jobs}
        self._active: dict[str, dict[str, None]] = {}  # job -> active task ids, in order
        for _, task in store.load("task"):
            self.tasks.setdefault(task["_job"], {})[task["id"]] = task
            self._index(task)

    # --- helpers ------------------------------------------------------------------------

    def _touch(self, document: Document, now: datetime | None = None) -> None:
        now = now or self.clock()
        document["lastModified"] = wire.timestamp(now)
        document["eTag"] = wire.etag(now, next(self._sequence))

    def _transition(self, document: Document, state: str, now: datetime) -> None:
        if document.get("state") != state:
            if "state" in document:
                document["previousState"] = document["state"]
                document["previousStateTransitionTime"] = document["stateTransitionTime"]
            document["state"] = state
            document["stateTransitionTime"] = wire.timestamp(now)
        if "_job" in document:  # a task: keep the index of active tasks the scheduler reads
            self._index(document)

    def _index(self, task: Document) -> None:
        active = self._active.setdefault(task["_job"], {})
        if task["state"] == "active":
            active[task["id"]] = None
        else:
            active.pop(task["id"], None)

    def _save(self, kind: str, key: str, document: Document) -> None:
        self.store.put(kind, key, document)

    def _save_task(self, task: Document) -> None:
        self.store.put("task", f"{task['_job']}/{task['id']}", task)

    def _save_node(self, node: Document) -> None:
        self.store.put("node", f"{node['_pool']}/{node['id']}", node)

    # --- pools --------------------------------------------------------------------------

    def create_pool(self, body: Any) -> Document:
        spec = validate.pool(body)
        pool_id = spec["id"]
        if pool_id.lower() in (existing.lower() for existing in self.pools):
            raise errors.PoolExists()
        now = self.clock()
        pool: Document = {
            "taskSlotsPerNode": 1,
            "taskSchedulingPolicy": {"nodeFillType": "spread"},
            "resizeTimeout": "PT15M",
            "enableAutoScale": False,
            "enableInterNodeCommunication": False,
            **spec,
            "url": f"{self.account_url}/pools/{pool_id}",
            "creationTime": wire.timestamp(now),
            "allocationState": "steady",
            "allocationStateTransitionTime": wire.timestamp(now),
        }
        self._transition(pool, "active", now)
        if pool["enableAutoScale"]:
            dedicated, spot = self.autoscale_nodes, 0
        else:
            dedicated = pool.setdefault("targetDedicatedNodes", 0)
            spot = pool.setdefault("targetLowPriorityNodes", 0)
        pool["currentDedicatedNodes"] = dedicated
        pool["currentLowPriorityNodes"] = spot
        self._touch(pool, now)
        nodes = {}
        for index in range(dedicated + spot):
            node = self._new_node(pool, index, dedicated=index < dedicated, now=now)
            nodes[node["id"]] = node
        with self.store.transaction():
            self.pools[pool_id] = pool
            self.nodes[pool_id] = nodes
            self._save("pool", pool_id, pool)
            for node in nodes.values():
                self._save_node(node)
        self.on_change()
        return pool

    def _new_node(self, pool: Document, index: int, dedicated: bool, now: datetime) -> Document:
        node_id = f"tvmps_{uuid.uuid4().hex[:20]}{index:04d}_{'d' if dedicated else 'p'}"
        node: Document = {
            "id": node_id,
            "url": f"{pool['url']}/nodes/{node_id}",
            "schedulingState": "enabled",
            "allocationTime": wire.timestamp(now),
            "lastBootTime": wire.timestamp(now),
            "ipAddress": "127.0.0.1",
            "affinityId": f"TVM:{node_id}",
            "vmSize": pool["vmSize"],
            "totalTasksRun": 0,
            "runningTasksCount": 0,
            "runningTaskSlotsCount": 0,
            "totalTasksSucceeded": 0,
            "isDedicated": dedicated,
            "virtualMachineInfo": {
                "imageReference": pool["virtualMachineConfiguration"]["imageReference"]
            },
            "_pool": pool["id"],
            "_running": [],
        }
        self._transition(node, "starting", now)
        return node

    def get_pool(self, pool_id: str) -> Document:
        pool = self.pools.get(pool_id)
        if pool is None:
            raise errors.PoolNotFound()
        return pool

    def list_pools(self) -> list[Document]:
        return list(self.pools.values())

    def delete_pool(self, pool_id: str) -> None:
        pool = self.get_pool(pool_id)
        now = self.clock()
        self._transition(pool, "deleting", now)
        self._touch(pool, now)
        for node in self.nodes.get(pool_id, {}).values():
            for job_id, task_id in node["_running"]:
                self.kill("task", job_id, task_id)
            if node["state"] in ("waitingforstarttask", "starting"):
                self.kill("start", pool_id, node["id"])
        with self.store.transaction():
            # Running tasks go back to the queue of their job, as on a lost node.
            for node in self.nodes.get(pool_id, {}).values():
                for job_id, task_id in list(node["_running"]):
                    task = self.tasks.get(job_id, {}).get(task_id)
                    if task is not None:
                        self._requeue(task, now)
                self.store.delete("node", f"{pool_id}/{node['id']}")
            self.store.delete("pool", pool_id)
        del self.pools[pool_id]
        self.nodes.pop(pool_id, None)
        self.on_change()

    def list_nodes(self, pool_id: str) -> list[Document]:
        self.get_pool(pool_id)
        return list(self.nodes.get(pool_id, {}).values())

    def get_node(self, pool_id: str, node_id: str) -> Document:
        self.get_pool(pool_id)
        node = self.nodes.get(pool_id, {}).get(node_id)
        if node is None:
            raise errors.NodeNotFound()
        return node

    # --- jobs ---------------------------------------------------------------------------

    def create_job(self, body: Any) -> Document:
        spec = validate.job(body)
        job_id = spec["id"]
        if job_id.lower() in (existing.lower() for existing in self.jobs):
            raise errors.JobExists()
        now = self.clock()
        job: Document = {
            "usesTaskDependencies": False,
            "priority": 0,
            "allowTaskPreemption": False,
            "maxParallelTasks": -1,
            "onAllTasksComplete": "noaction",
            "onTaskFailure": "noaction",
            **spec,
            "url": f"{self.account_url}/jobs/{job_id}",
            "creationTime": wire.timestamp(now),
            "executionInfo": {
                "startTime": wire.timestamp(now),
                "poolId": spec["poolInfo"].get("poolId"),
            },
        }
        job["constraints"] = {
            "maxWallClockTime": wire.format_duration(wire.UNBOUNDED),
            "maxTaskRetryCount": 0,
            **spec.get("constraints", {}),
        }
        self._transition(job, "active", now)
        self._touch(job, now)
        with self.store.transaction():
            self.jobs[job_id] = job
            self.tasks[job_id] = {}
            self._save("job", job_id, job)
            self._complete_job_if_done(job, now)
        return job

    def get_job(self, job_id: str) -> Document:
        job = self.jobs.get(job_id)
        if job is None:
            raise errors.JobNotFound()
        return job

    def list_jobs(self) -> list[Document]:
        return list(self.jobs.values())

    def update_job(self, job_id: str, body: Any) -> Document:
        """PATCH: replace only the properties given."""
        job = self.get_job(job_id)
        changes = validate.job_patch(body)
        if job["state"] == "completed":
            raise errors.JobCompleted()
        now = self.clock()
        job.update({k: v for k, v in changes.items() if k != "constraints"})
        if "constraints" in changes:
            job["constraints"] = {**job["constraints"], **changes["constraints"]}
        self._touch(job, now)
        with self.store.transaction():
            self._save("job", job_id, job)
            self._complete_job_if_done(job, now)
        return job

    def terminate_job(self, job_id: str, reason: str | None = None) -> None:
        job = self.get_job(job_id)
        if job["state"] == "completed":
            raise errors.JobCompleted()
        if job["state"] == "deleting":
            raise errors.JobBeingDeleted()
        with self.store.transaction():
            self._terminate_job(job, reason or "UserTerminate", self.clock())

    def _terminate_job(self, job: Document, reason: str, now: datetime) -> None:
        self._transition(job, "completed", now)
        job["executionInfo"]["endTime"] = wire.timestamp(now)
        job["executionInfo"]["terminateReason"] = reason
        self._touch(job, now)
        self._save("job", job["id"], job)
        for task in self.tasks.get(job["id"], {}).values():
            if task["state"] in ("preparing", "running"):
                self._end_task_by_request(task, now)

    def delete_job(self, job_id: str) -> None:
        job = self.get_job(job_id)
        now = self.clock()
        self._transition(job, "deleting", now)
        with self.store.transaction():
            for task in self.tasks.get(job_id, {}).values():
                if task["state"] in ("preparing", "running"):
                    self._release_slot(task)
                    self.kill("task", job_id, task["id"])
            self.store.delete_prefix("task", f"{job_id}/")
            self.store.delete("job", job_id)
        del self.jobs[job_id]
        self.tasks.pop(job_id, None)
        self._active.pop(job_id, None)
        self.on_change()

    def task_counts(self, job_id: str) -> Document:
        self.get_job(job_id)
        counts = dict.fromkeys(("active", "running", "completed", "succeeded", "failed"), 0)
        slots = dict(counts)
        for task in self.tasks[job_id].values():
            state = "running" if task["state"] == "preparing" else task["state"]
            required = task.get("requiredSlots", 1)
            counts[state] += 1
            slots[state] += required
            if state == "completed":
                outcome = (
                    "succeeded" if task["executionInfo"].get("result") == "success" else "failed"
                )
                counts[outcome] += 1
                slots[outcome] += required
        return {"taskCounts": counts, "taskSlotCounts": slots}

    def _complete_job_if_done(self, job: Document, now: datetime) -> None:
        if job["state"] != "active" or job.get("onAllTasksComplete") != "terminatejob":
            return
        if all(task["state"] == "completed" for task in self.tasks[job["id"]].values()):
            self._terminate_job(job, "AllTasksComplete", now)

    # --- tasks --------------------------------------------------------------------------

    def _active_job(self, job_id: str) -> Document:
        job = self.get_job(job_id)
        if job["state"] == "completed":
            raise errors.JobCompleted()
        if job["state"] == "deleting":
            raise errors.JobBeingDeleted()
        if job["state"] == "terminating":
            raise errors.JobBeingTerminated()
        return job

    def _new_task(self, job: Document, spec: Document, now: datetime) -> Document:
        constraints = {
            "maxWallClockTime": wire.format_duration(wire.UNBOUNDED),
            "retentionTime": "P7D",
            "maxTaskRetryCount": job["constraints"].get("maxTaskRetryCount", 0),
            **spec.get("constraints", {}),
        }
        task: Document = {
            "requiredSlots": 1,
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
            **spec,
            "constraints": constraints,
            "url": f"{job['url']}/tasks/{spec['id']}",
            "creationTime": wire.timestamp(now),
            "executionInfo": {"retryCount": 0, "requeueCount": 0},
            "_job": job["id"],
        }
        self._transition(task, "active", now)
        self._touch(task, now)
        return task

    def add_task(self, job_id: str, body: Any) -> Document:
        job = self._active_job(job_id)
        spec = validate.task(body)
        if spec["id"].lower() in (existing.lower() for existing in self.tasks[job_id]):
            raise errors.TaskExists()
        task = self._new_task(job, spec, self.clock())
        with self.store.transaction():
            self.tasks[job_id][task["id"]] = task
            self._save_task(task)
        self.on_change()
        return task

    def add_task_collection(self, job_id: str, body: Any) -> list[Document]:
        """Add up to 100 tasks; each gets its own result, as the service reports them."""
        job = self._active_job(job_id)
        values = validate.task_collection(body, COLLECTION_LIMIT)
        now = self.clock()
        existing = {task_id.lower() for task_id in self.tasks[job_id]}
        results: list[Document] = []
        with self.store.transaction():
            for value in values:
                try:
                    spec = validate.task(value)
                    if spec["id"].lower() in existing:
                        raise errors.TaskExists()
                except errors.BatchServiceError as error:
                    results.append(self._client_error(value, error, now))
                    continue
                task = self._new_task(job, spec, now)
                existing.add(task["id"].lower())
                self.tasks[job_id][task["id"]] = task
                self._save_task(task)
                results.append(
                    {
                        "status": "success",
                        "taskId": task["id"],
                        "eTag": task["eTag"],
                        "lastModified": task["lastModified"],
                        "location": task["url"],
                    }
                )
        self.on_change()
        return results

    @staticmethod
    def _client_error(value: Any, error: errors.BatchServiceError, now: datetime) -> Document:
        task_id = value.get("id") if isinstance(value, dict) else None
        result: Document = {
            "status": "clienterror",
            "taskId": task_id if isinstance(task_id, str) else "",
            "error": {
                "code": error.code,
                "message": {"lang": "en-US", "value": error.detail},
            },
        }
        if error.values:
            result["error"]["values"] = [{"key": k, "value": v} for k, v in error.values]
        return result

    def get_task(self, job_id: str, task_id: str) -> Document:
        self.get_job(job_id)
        task = self.tasks[job_id].get(task_id)
        if task is None:
            raise errors.TaskNotFound()
        return task

    def list_tasks(self, job_id: str) -> list[Document]:
        self.get_job(job_id)
        return list(self.tasks[job_id].values())

    def terminate_task(self, job_id: str, task_id: str) -> None:
        task = self.get_task(job_id, task_id)
        if task["state"] == "completed":
            raise errors.TaskCompleted()
        now = self.clock()
        with self.store.transaction():
            self._end_task_by_request(task, now)
            self._complete_job_if_done(self.jobs[job_id], now)
        self.on_change()

    def delete_task(self, job_id: str, task_id: str) -> None:
        task = self.get_task(job_id, task_id)
        if task["state"] in ("preparing", "running"):
            self._release_slot(task)
            self.kill("task", job_id, task_id)
        with self.store.transaction():
            self.store.delete("task", f"{job_id}/{task_id}")
            del self.tasks[job_id][task_id]
            self._active.get(job_id, {}).pop(task_id, None)
            self._complete_job_if_done(self.jobs[job_id], self.clock())
        self.on_change()

    def reactivate_task(self, job_id: str, task_id: str) -> None:
        task = self.get_task(job_id, task_id)
        job = self._active_job(job_id)
        if task["state"] != "completed":
            raise errors.TaskNotCompleted()
        if task["executionInfo"].get("result") == "success":
            raise errors.TaskSucceeded()
        now = self.clock()
        self._transition(task, "active", now)
        task["executionInfo"] = {"retryCount": 0, "requeueCount": 0}
        self._touch(task, now)
        with self.store.transaction():
            self._save_task(task)
            self._save("job", job_id, job)
        self.on_change()

    def _end_task_by_request(self, task: Document, now: datetime) -> None:
        if task["state"] in ("preparing", "running"):
            self._release_slot(task)
            self.kill("task", task["_job"], task["id"])
        info = task["executionInfo"]
        info.setdefault("startTime", wire.timestamp(now))
        info["endTime"] = wire.timestamp(now)
        info["result"] = "failure"
        info["failureInfo"] = {
            "category": "usererror",
            "code": "TaskEnded",
            "message": "Task Was Ended by User Request",
        }
        self._transition(task, "completed", now)
        self._touch(task, now)
        self._save_task(task)

    # --- scheduling ---------------------------------------------------------------------

    def pending_start_tasks(self) -> list[tuple[Document, Document]]:
        """Nodes that are starting: (pool, node) pairs whose start task should run now."""
        pending = []
        for pool_id, nodes in self.nodes.items():
            pool = self.pools[pool_id]
            for node in nodes.values():
                if node["state"] == "starting" and not node.get("_starting"):
                    pending.append((pool, node))
        return pending

    def start_task_started(self, pool_id: str, node_id: str) -> None:
        node = self.nodes[pool_id][node_id]
        pool = self.pools[pool_id]
        now = self.clock()
        node["_starting"] = True
        start_task = pool.get("startTask")
        if start_task and start_task.get("waitForSuccess", True):
            self._transition(node, "waitingforstarttask", now)
        else:
            self._transition(node, "idle", now)
        if start_task:
            node["startTaskInfo"] = {
                "state": "running",
                "startTime": wire.timestamp(now),
                "retryCount": 0,
            }
        self._save_node(node)
        self.on_change()

    def start_task_finished(self, pool_id: str, node_id: str, outcome: Outcome) -> None:
        node = self.nodes.get(pool_id, {}).get(node_id)
        if node is None:
            return
        now = self.clock()
        info = node.get("startTaskInfo")
        if info is not None:
            info["state"] = "completed"
            info["endTime"] = wire.timestamp(outcome.ended or now)
            if outcome.exit_code is not None:
                info["exitCode"] = outcome.exit_code
            succeeded = outcome.failure is None and outcome.exit_code == 0
            info["result"] = "success" if succeeded else "failure"
            if not succeeded:
                info["failureInfo"] = _failure_info(outcome)
            waits = self.pools[pool_id]["startTask"].get("waitForSuccess", True)
            if not succeeded and waits:
                self._transition(node, "starttaskfailed", now)
            elif node["state"] == "waitingforstarttask":
                self._transition(node, "idle", now)
        self._save_node(node)
        self.on_change()

    def assign(self) -> list[Assignment]:
        """Place active tasks of active jobs on free node slots (spread across nodes)."""
        assignments: list[Assignment] = []
        now = self.clock()
        with self.store.transaction():
            for job in self.jobs.values():
                if job["state"] != "active":
                    continue
                pool_id = job["poolInfo"].get("poolId")
                pool = self.pools.get(pool_id or "")
                if pool is None or pool["state"] != "active":
                    continue
                slots_per_node = pool["taskSlotsPerNode"]
                nodes = [
                    n
                    for n in self.nodes[pool["id"]].values()
                    if n["state"] in ("idle", "running") and n["schedulingState"] == "enabled"
                ]
                if not nodes:
                    continue
                for task_id in list(self._active.get(job["id"], ())):
                    task = self.tasks[job["id"]][task_id]
                    required = task.get("requiredSlots", 1)
                    free = [
                        n for n in nodes if slots_per_node - n["runningTaskSlotsCount"] >= required
                    ]
                    if not free:
                        break
                    node = min(free, key=lambda n: n["runningTaskSlotsCount"])
                    self._place(task, pool, node, now)
                    assignments.append(Assignment(job["id"], task["id"], pool["id"], node["id"]))
        return assignments

    def _place(self, task: Document, pool: Document, node: Document, now: datetime) -> None:
        node["runningTasksCount"] += 1
        node["runningTaskSlotsCount"] += task.get("requiredSlots", 1)
        node["_running"].append([task["_job"], task["id"]])
        self._transition(node, "running", now)
        directory = f"workitems/{task['_job']}/job-1/{task['id']}"
        task["nodeInfo"] = {
            "affinityId": node["affinityId"],
            "nodeUrl": node["url"],
            "poolId": pool["id"],
            "nodeId": node["id"],
            "taskRootDirectory": directory,
            "taskRootDirectoryUrl": f"{node['url']}/files/{directory}",
        }
        self._transition(task, "preparing", now)
        self._touch(task, now)
        self._save_task(task)
        self._save_node(node)

    def _release_slot(self, task: Document) -> None:
        info = task.get("nodeInfo") or {}
        node = self.nodes.get(info.get("poolId", ""), {}).get(info.get("nodeId", ""))
        if node is None:
            return
        entry = [task["_job"], task["id"]]
        if entry in node["_running"]:
            node["_running"].remove(entry)
            node["runningTasksCount"] -= 1
            node["runningTaskSlotsCount"] -= task.get("requiredSlots", 1)
        if not node["_running"] and node["state"] == "running":
            self._transition(node, "idle", self.clock())
        self._save_node(node)

    def _requeue(self, task: Document, now: datetime) -> None:
        """Back to active without using a retry, as when a node is lost."""
        self._release_slot(task)
        info = task["executionInfo"]
        info["requeueCount"] = info.get("requeueCount", 0) + 1
        info["lastRequeueTime"] = wire.timestamp(now)
        for key in ("startTime", "endTime", "exitCode", "result", "failureInfo"):
            info.pop(key, None)
        task.pop("nodeInfo", None)
        self._transition(task, "active", now)
        self._touch(task, now)
        self._save_task(task)

    def task_started(self, job_id: str, task_id: str, started: datetime) -> bool:
        """The process is about to start; False if the task was ended or deleted meanwhile."""
        task = self.tasks.get(job_id, {}).get(task_id)
        if task is None or task["state"] != "preparing":
            return False
        task["executionInfo"]["startTime"] = wire.timestamp(started)
        self._transition(task, "running", started)
        self._touch(task, started)
        self._save_task(task)
        return True

    def task_process(self, job_id: str, task_id: str, group: int) -> None:
        """Remember the task's process group, to end it if the emulator dies meanwhile."""
        task = self.tasks.get(job_id, {}).get(task_id)
        if task is not None:
            task["_group"] = group
            self._save_task(task)

    def task_finished(self, job_id: str, task_id: str, outcome: Outcome) -> None:
        task = self.tasks.get(job_id, {}).get(task_id)
        if task is None or task["state"] not in ("preparing", "running"):
            return  # ended, deleted or requeued while it ran
        now = self.clock()
        node = self.nodes.get(task["nodeInfo"]["poolId"], {}).get(task["nodeInfo"]["nodeId"])
        info = task["executionInfo"]
        succeeded = outcome.failure is None and outcome.exit_code == 0
        with self.store.transaction():
            self._release_slot(task)
            if node is not None:
                node["totalTasksRun"] += 1
                node["totalTasksSucceeded"] += 1 if succeeded else 0
                self._save_node(node)
            retries = task["constraints"].get("maxTaskRetryCount", 0)
            can_retry = retries == -1 or info.get("retryCount", 0) < retries
            if not succeeded and can_retry and outcome.failure is None:
                info["retryCount"] = info.get("retryCount", 0) + 1
                info["lastRetryTime"] = wire.timestamp(now)
                if outcome.exit_code is not None:
                    info["exitCode"] = outcome.exit_code
                self._transition(task, "active", now)
            else:
                info["startTime"] = info.get("startTime") or wire.timestamp(outcome.started or now)
                info["endTime"] = wire.timestamp(outcome.ended or now)
                if outcome.exit_code is not None:
                    info["exitCode"] = outcome.exit_code
                info["result"] = "success" if succeeded else "failure"
                if not succeeded:
                    info["failureInfo"] = _failure_info(outcome)
                self._transition(task, "completed", now)
            self._touch(task, now)
            self._save_task(task)
            self._complete_job_if_done(self.jobs[job_id], now)
        self.on_change()

    def recover(self) -> list[tuple[int, dict[str, str]]]:
        """After a restart: requeue what was running, as Batch does for a lost node.

        Returns the process groups the previous run left, each with the environment that
        identifies it, for the executor to kill.
        """
        now = self.clock()
        orphans: list[tuple[int, dict[str, str]]] = []
        with self.store.transaction():
            for job_tasks in self.tasks.values():
                for task in job_tasks.values():
                    if task["state"] in ("preparing", "running"):
                        if "_group" in task:
                            identity = {
                                "AZ_BATCH_JOB_ID": task["_job"],
                                "AZ_BATCH_TASK_ID": task["id"],
                            }
                            orphans.append((task.pop("_group"), identity))
                        self._requeue(task, now)
            for nodes in self.nodes.values():
                for node in nodes.values():
                    node["_running"] = []
                    node["runningTasksCount"] = node["runningTaskSlotsCount"] = 0
                    if node["state"] in ("starting", "waitingforstarttask"):
                        node.pop("_starting", None)
                        self._transition(node, "starting", now)
                    elif node["state"] == "running":
                        self._transition(node, "idle", now)
                    self._save_node(node)
            for pool in self.pools.values():
                if pool["state"] == "deleting":
                    self.store.delete("pool", pool["id"])
        self.pools = {k: v for k, v in self.pools.items() if v["state"] != "deleting"}
        return orphans
