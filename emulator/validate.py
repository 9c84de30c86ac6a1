"""Request bodies checked as the service checks them, before any state changes.

Each function takes the parsed JSON body and returns the spec to store, or raises the
error the service answers with: MissingRequiredProperty, InvalidPropertyValue,
InvalidRequestBody or RequestBodyTooLarge, naming the property.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator import errors, wire

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ALL_TASKS_COMPLETE = {"noaction", "terminatejob"}
_TASK_FAILURE = {"noaction", "performexitoptionsjobaction"}
_JOB_ACTIONS = {"none", "disable", "terminate"}
_DEPENDENCY_ACTIONS = {"satisfy", "block"}
_EXIT_OPTIONS = ("preProcessingError", "fileUploadError", "default")
MAX_DEPENDENCY_CHARACTERS = 64_000
"""What dependsOn may hold: the task ids' lengths added up (documented, with
TaskDependencyListTooLong past it), and the ranges written out as "start-end," (the
service documents no figure for TaskDependencyRangesTooLong; this is the same budget)."""
MAX_COMMAND_LINE = 8191
"""Characters in a command line: the service documents no figure; this is Windows' cmd
limit, the one Batch users meet, refused as an invalid commandLine."""


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.InvalidRequestBody()
    return body


def _required(body: dict[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
    value = body.get(name)
    if value is None:
        raise errors.missing_property(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise errors.invalid_property(name, value)
    return value


def _identifier(body: dict[str, Any], name: str = "id") -> str:
    value: str = _required(body, name)
    if not _ID.match(value):
        raise errors.invalid_property(
            name,
            value,
            "The id can contain any combination of alphanumeric characters including "
            "hyphens and underscores, and cannot contain more than 64 characters.",
        )
    return value


def _command_line(body: dict[str, Any]) -> None:
    value: str = _required(body, "commandLine")
    if len(value) > MAX_COMMAND_LINE:
        raise errors.invalid_property(
            "commandLine",
            f"{value[:64]}... ({len(value)} characters)",
            f"The command line cannot contain more than {MAX_COMMAND_LINE} characters.",
        )


def _optional_int(body: dict[str, Any], name: str, minimum: int, maximum: int) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise errors.invalid_property(name, value)


def _durations(constraints: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in constraints and constraints[name] is not None:
            wire.parse_duration(constraints[name], name)


def _constraints(body: dict[str, Any], *durations: str) -> None:
    constraints = body.get("constraints")
    if constraints is None:
        return
    if not isinstance(constraints, dict):
        raise errors.invalid_property("constraints", constraints)
    _durations(constraints, *durations)
    _optional_int(constraints, "maxTaskRetryCount", -1, 2**31 - 1)


def _resource_files(files: Any, name: str = "resourceFiles") -> None:
    if files is None:
        return
    if not isinstance(files, list):
        raise errors.invalid_property(name, files)
    for file in files:
        if not isinstance(file, dict):
            raise errors.invalid_property(name, file)
        sources = [
            k for k in ("httpUrl", "storageContainerUrl", "autoStorageContainerName") if file.get(k)
        ]
        if len(sources) != 1:
            raise errors.invalid_property(
                name,
                file,
                "Exactly one of httpUrl, storageContainerUrl and "
                "autoStorageContainerName must be specified.",
            )
        file_path = file.get("filePath")
        if sources == ["httpUrl"] and not file_path:
            raise errors.missing_property("filePath")
        if file_path and _escapes(file_path):
            raise errors.invalid_property(
                "filePath", file_path, "The path must be relative, inside the working directory."
            )


NO_CONTAINERS = (
    "The local Batch emulator runs no containers: its tasks run as processes on the host. "
    "Run the command without containers here, or use Azure Batch."
)


def _no_containers(spec: dict[str, Any], name: str, where: str = "") -> None:
    """Refuse container settings: the service would run the task in a container, the
    emulator cannot, and running it on the host instead fails in confusing ways. Only the
    image (or the runtime's type) is named, never the registry's credentials."""
    settings = spec.get(name)
    if settings is None:
        return
    shown = None
    if isinstance(settings, dict):
        shown = settings.get("imageName") or settings.get("type")
    raise errors.invalid_property(f"{where}{name}", shown or "(container settings)", NO_CONTAINERS)


def _not_run(spec: dict[str, Any], name: str, what: str, shown: str) -> None:
    """Refuse a feature the service has and the emulator does not run, rather than store
    it and silently do something else."""
    if spec.get(name) is not None:
        raise errors.invalid_property(
            name, shown, f"The local Batch emulator does not run {what}: use Azure Batch."
        )


def _escapes(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return path.startswith(("/", "\\")) or ".." in parts


def _output_files(files: Any) -> None:
    if files is None:
        return
    if not isinstance(files, list):
        raise errors.invalid_property("outputFiles", files)
    for file in files:
        if not isinstance(file, dict):
            raise errors.invalid_property("outputFiles", file)
        _required(file, "filePattern")
        destination = _required(file, "destination", dict)
        container = _required(destination, "container", dict)
        _required(container, "containerUrl")
        options = _required(file, "uploadOptions", dict)
        condition = _required(options, "uploadCondition")
        if condition.lower() not in ("tasksuccess", "taskfailure", "taskcompletion"):
            raise errors.invalid_property("uploadCondition", condition)


def pool(body: Any) -> dict[str, Any]:
    spec = _object(body)
    _identifier(spec)
    _required(spec, "vmSize")
    configuration = _required(spec, "virtualMachineConfiguration", dict)
    _required(configuration, "imageReference", dict)
    _required(configuration, "nodeAgentSKUId")
    _no_containers(configuration, "containerConfiguration", "virtualMachineConfiguration.")
    autoscale = spec.get("enableAutoScale") is True
    if autoscale:
        _required(spec, "autoScaleFormula")
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if spec.get(name) is not None:
                raise errors.invalid_property(
                    name, spec[name], "Target nodes cannot be specified with auto-scale."
                )
    _optional_int(spec, "targetDedicatedNodes", 0, 10_000)
    _optional_int(spec, "targetLowPriorityNodes", 0, 10_000)
    _optional_int(spec, "taskSlotsPerNode", 1, 256)
    autoscale_interval(spec)
    _start_task(spec.get("startTask"))
    _metadata(spec.get("metadata"))
    return spec


def _start_task(start_task: Any) -> None:
    if start_task is None:
        return
    _command_line(_object(start_task))
    _no_containers(start_task, "containerSettings", "startTask.")
    _resource_files(start_task.get("resourceFiles"), "startTask.resourceFiles")
    _optional_int(start_task, "maxTaskRetryCount", -1, 2**31 - 1)
    _flag(start_task, "waitForSuccess")


def _metadata(metadata: Any) -> None:
    """metadata: a list of {name, value} pairs of strings, each with a name."""
    for pair in _list(metadata, "metadata"):
        if not isinstance(pair, dict):
            raise errors.invalid_property("metadata", pair)
        _required(pair, "name")
        if not isinstance(pair.get("value", ""), str):
            raise errors.invalid_property("metadata", pair)


AUTOSCALE_INTERVAL_MIN = timedelta(minutes=5)
AUTOSCALE_INTERVAL_MAX = timedelta(hours=168)
AUTOSCALE_INTERVAL_DEFAULT = "PT15M"


def autoscale_interval(spec: dict[str, Any]) -> timedelta | None:
    """autoScaleEvaluationInterval, if given: 5 minutes to 168 hours, as the service takes."""
    value = spec.get("autoScaleEvaluationInterval")
    if value is None:
        return None
    interval = wire.parse_duration(value, "autoScaleEvaluationInterval")
    if not AUTOSCALE_INTERVAL_MIN <= interval <= AUTOSCALE_INTERVAL_MAX:
        raise errors.invalid_property(
            "autoScaleEvaluationInterval",
            value,
            "The evaluation interval must be between 5 minutes and 168 hours.",
        )
    return interval


def autoscale_enable(body: Any) -> dict[str, Any]:
    """enableautoscale: a formula, an evaluation interval, or both."""
    spec = _object(body)
    formula = spec.get("autoScaleFormula")
    if formula is not None and not isinstance(formula, str):
        raise errors.invalid_property("autoScaleFormula", formula)
    autoscale_interval(spec)
    return {k: spec[k] for k in ("autoScaleFormula", "autoScaleEvaluationInterval") if k in spec}


def autoscale_evaluate(body: Any) -> str:
    formula: str = _required(_object(body), "autoScaleFormula")
    return formula


_HOOKS = ("id", "poolInfo", "jobPreparationTask", "jobReleaseTask")


def job(body: Any) -> dict[str, Any]:
    spec = _object(body)
    _identifier(spec)
    _required(spec, "poolInfo", dict)
    _not_run(spec, "jobManagerTask", "job manager tasks", "(a job manager task)")
    spec.update(job_patch({k: v for k, v in spec.items() if k not in _HOOKS}))
    _job_settings(spec)
    uses = spec.get("usesTaskDependencies")
    if uses is not None and not isinstance(uses, bool):
        raise errors.invalid_property("usesTaskDependencies", uses)
    preparation = spec.get("jobPreparationTask")
    release = spec.get("jobReleaseTask")
    if preparation is not None:
        _job_preparation_task(preparation)
    if release is not None:
        if preparation is None:
            raise errors.invalid_property(
                "jobReleaseTask",
                release,
                "A Job Release Task cannot be specified without also specifying a Job "
                "Preparation Task for the Job.",
            )
        _job_release_task(release)
        if (
            str(release.get("id", "jobrelease")).lower()
            == str(_object(preparation).get("id", "jobpreparation")).lower()
        ):
            raise errors.invalid_property(
                "jobReleaseTask.id",
                release.get("id"),
                "The Job Release Task cannot have the same id as the Job Preparation Task.",
            )
    return spec


MAX_RELEASE_WALL_CLOCK = timedelta(minutes=15)
"""A release task's maxWallClockTime: its default, and the most the service accepts (a
longer one is a 400, as BatchJobReleaseTask.maxWallClockTime documents)."""


def _hook_task(spec: dict[str, Any]) -> None:
    """What a job's preparation and release tasks share with tasks."""
    if spec.get("id") is not None:
        _identifier(spec)
    _command_line(spec)
    _resource_files(spec.get("resourceFiles"))
    _environment(spec.get("environmentSettings"))
    if spec.get("userIdentity") is not None and not isinstance(spec["userIdentity"], dict):
        raise errors.invalid_property("userIdentity", spec["userIdentity"])
    _no_containers(spec, "containerSettings")


def _flag(spec: dict[str, Any], name: str) -> None:
    value = spec.get(name)
    if value is not None and not isinstance(value, bool):
        raise errors.invalid_property(name, value)


def _job_preparation_task(value: Any) -> None:
    spec = _object(value)
    _hook_task(spec)
    _constraints(spec, "maxWallClockTime", "retentionTime")
    _flag(spec, "waitForSuccess")
    _flag(spec, "rerunOnNodeRebootAfterSuccess")


def _job_release_task(value: Any) -> None:
    spec = _object(value)
    _hook_task(spec)
    _durations(spec, "retentionTime")
    limit = spec.get("maxWallClockTime")
    if limit is not None and wire.parse_duration(limit, "maxWallClockTime") > (
        MAX_RELEASE_WALL_CLOCK
    ):
        raise errors.invalid_property(
            "maxWallClockTime",
            limit,
            "The maximum wall clock time of a Job Release Task cannot exceed 15 minutes.",
        )


def _environment(settings: Any) -> None:
    """environmentSettings: a list of {name, value}, each with a name."""
    if settings is None:
        return
    if not isinstance(settings, list):
        raise errors.invalid_property("environmentSettings", settings)
    for setting in settings:
        _required(_object(setting), "name")


def job_patch(body: Any) -> dict[str, Any]:
    changes = _object(body)
    complete = changes.get("onAllTasksComplete")
    if complete is not None and str(complete).lower() not in _ALL_TASKS_COMPLETE:
        raise errors.invalid_property("onAllTasksComplete", complete)
    if complete is not None:
        changes["onAllTasksComplete"] = str(complete).lower()
    failure = changes.get("onTaskFailure")
    if failure is not None and str(failure).lower() not in _TASK_FAILURE:
        raise errors.invalid_property("onTaskFailure", failure)
    if failure is not None:
        changes["onTaskFailure"] = str(failure).lower()
    _constraints(changes, "maxWallClockTime")
    return changes


def task(body: Any) -> dict[str, Any]:
    spec = _object(body)
    _identifier(spec)
    _command_line(spec)
    _constraints(spec, "maxWallClockTime", "retentionTime")
    _optional_int(spec, "requiredSlots", 1, 256)
    _no_containers(spec, "containerSettings")
    _not_run(spec, "multiInstanceSettings", "multi-instance tasks", "(multi-instance settings)")
    _resource_files(spec.get("resourceFiles"))
    _output_files(spec.get("outputFiles"))
    _environment(spec.get("environmentSettings"))
    _depends_on(spec.get("dependsOn"))
    _exit_conditions(spec.get("exitConditions"))
    return spec


def task_in_job(spec: dict[str, Any], job_spec: dict[str, Any]) -> None:
    """What a task may ask of its job: dependsOn only in a job that usesTaskDependencies
    (TaskDependenciesNotSpecifiedOnJob), a jobAction only in one whose onTaskFailure is
    performexitoptionsjobaction (the API's ExitOptions: an invalid property value); not the
    id of the job's preparation or release task (TaskIdSameAsJobPreparationTask,
    TaskIdSameAsJobReleaseTask: ids compare case-insensitively)."""
    task_id = str(spec["id"]).lower()
    for hook, error in (
        ("jobPreparationTask", errors.TaskIdSameAsJobPreparationTask),
        ("jobReleaseTask", errors.TaskIdSameAsJobReleaseTask),
    ):
        if job_spec.get(hook) and task_id == str(job_spec[hook]["id"]).lower():
            raise error()
    if spec.get("dependsOn") is not None and not job_spec.get("usesTaskDependencies"):
        raise errors.TaskDependenciesNotSpecifiedOnJob()
    if performs_exit_options(job_spec):
        return
    for options in exit_options(spec.get("exitConditions")):
        if options.get("jobAction") is not None:
            raise errors.invalid_property("jobAction", options["jobAction"])


def performs_exit_options(job_spec: dict[str, Any]) -> bool:
    """Whether the job's onTaskFailure is performexitoptionsjobaction."""
    return str(job_spec.get("onTaskFailure", "")).lower() == "performexitoptionsjobaction"


def _list(value: Any, name: str) -> list[Any]:
    """An optional list property (None: empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.invalid_property(name, value)
    return value


def _range(value: Any, name: str) -> tuple[int, int]:
    """{start, end}: integers, start not after end."""
    if not isinstance(value, dict):
        raise errors.invalid_property(name, value)
    start: int = _required(value, "start", int)
    end: int = _required(value, "end", int)
    if start > end:
        raise errors.invalid_property(
            name, f"{start}-{end}", "The start of a range cannot be greater than its end."
        )
    return start, end


def _depends_on(depends: Any) -> None:
    """taskIds (strings) and taskIdRanges ({start, end} integers), within the limits."""
    if depends is None:
        return
    if not isinstance(depends, dict):
        raise errors.invalid_property("dependsOn", depends)
    ids = _list(depends.get("taskIds"), "taskIds")
    for task_id in ids:
        if not isinstance(task_id, str):
            raise errors.invalid_property("taskIds", task_id)
    if sum(len(task_id) for task_id in ids) > MAX_DEPENDENCY_CHARACTERS:
        raise errors.TaskDependencyListTooLong()
    ranges = [
        _range(value, "taskIdRanges")
        for value in _list(depends.get("taskIdRanges"), "taskIdRanges")
    ]
    if sum(len(f"{start}-{end},") for start, end in ranges) > MAX_DEPENDENCY_CHARACTERS:
        raise errors.TaskDependencyRangesTooLong()


def _exit_options(options: Any, name: str) -> None:
    """jobAction and dependencyAction, each optional, stored lower-cased as the service
    returns them."""
    if not isinstance(options, dict):
        raise errors.invalid_property(name, options)
    for key, allowed in (("jobAction", _JOB_ACTIONS), ("dependencyAction", _DEPENDENCY_ACTIONS)):
        value = options.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or value.lower() not in allowed:
            raise errors.invalid_property(key, value)
        options[key] = value.lower()


def _exit_conditions(conditions: Any) -> None:
    if conditions is None:
        return
    if not isinstance(conditions, dict):
        raise errors.invalid_property("exitConditions", conditions)
    for mapping in _list(conditions.get("exitCodes"), "exitCodes"):
        if not isinstance(mapping, dict):
            raise errors.invalid_property("exitCodes", mapping)
        _required(mapping, "code", int)
        _exit_options(_required(mapping, "exitOptions", dict), "exitOptions")
    for mapping in _list(conditions.get("exitCodeRanges"), "exitCodeRanges"):
        _range(mapping, "exitCodeRanges")
        _exit_options(_required(mapping, "exitOptions", dict), "exitOptions")
    for name in _EXIT_OPTIONS:
        if conditions.get(name) is not None:
            _exit_options(conditions[name], name)


def exit_options(conditions: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every ExitOptions of a task's (validated) exitConditions."""
    if not conditions:
        return []
    mappings = (conditions.get("exitCodes") or []) + (conditions.get("exitCodeRanges") or [])
    return [mapping["exitOptions"] for mapping in mappings] + [
        conditions[name] for name in _EXIT_OPTIONS if conditions.get(name) is not None
    ]


def task_collection(body: Any, limit: int) -> list[Any]:
    values: list[Any] = _required(_object(body), "value", list)
    if len(values) > limit:
        raise errors.RequestBodyTooLarge(
            "The number of tasks in the collection exceeds the maximum permissible limit.",
            values=[("MaxTasksInCollection", str(limit))],
        )
    return values


# --- node loss: removenodes, resize, reboot, reimage -------------------------------------

DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
MAX_NODES_REMOVED = 100
_MIN_RESIZE_TIMEOUT = timedelta(minutes=5)


def deallocation_option(body: dict[str, Any], *names: str) -> str:
    """The first of names given (the option's wire name differs by operation), lower-cased;
    requeue, the service's default, if none is."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or value.lower() not in DEALLOCATION_OPTIONS:
            raise errors.invalid_property(name, value)
        return value.lower()
    return "requeue"


def _resize_timeout(body: dict[str, Any]) -> None:
    """The service refuses a resizeTimeout under five minutes with a 400."""
    value = body.get("resizeTimeout")
    if value is not None and wire.parse_duration(value, "resizeTimeout") < _MIN_RESIZE_TIMEOUT:
        raise errors.invalid_property(
            "resizeTimeout", value, "The resize timeout must be at least 5 minutes."
        )


def node_removal(body: Any) -> tuple[list[str], str]:
    """removenodes: the node ids (each once, in order) and the deallocation option."""
    spec = _object(body)
    nodes: list[Any] = _required(spec, "nodeList", list)
    if not nodes or not all(isinstance(node, str) for node in nodes):
        raise errors.invalid_property("nodeList", nodes)
    if len(nodes) > MAX_NODES_REMOVED:
        raise errors.invalid_property(
            "nodeList",
            f"{len(nodes)} nodes",
            f"A maximum of {MAX_NODES_REMOVED} nodes may be removed per request.",
        )
    _resize_timeout(spec)
    return list(dict.fromkeys(nodes)), deallocation_option(spec, "nodeDeallocationOption")


def pool_resize(body: Any) -> tuple[int | None, int | None, str]:
    """resize: the new dedicated and Spot targets (None: unchanged) and the option."""
    spec = _object(body)
    _optional_int(spec, "targetDedicatedNodes", 0, 10_000)
    _optional_int(spec, "targetLowPriorityNodes", 0, 10_000)
    _resize_timeout(spec)
    option = deallocation_option(spec, "nodeDeallocationOption")
    return spec.get("targetDedicatedNodes"), spec.get("targetLowPriorityNodes"), option


def node_restart(body: Any, *names: str) -> str:
    """reboot (nodeRebootOption) and reimage (nodeReimageOption): the option; no body is
    the default, requeue."""
    if body is None:
        return "requeue"
    return deallocation_option(_object(body), *names)


# --- disabling a job, or scheduling on a node --------------------------------------------

JOB_DISABLE_OPTIONS = ("requeue", "terminate", "wait")
NODE_DISABLE_OPTIONS = ("requeue", "terminate", "taskcompletion")


def _option(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """One of allowed, lower-cased (the service reads enums in any case)."""
    if not isinstance(value, str) or value.lower() not in allowed:
        raise errors.invalid_property(name, value)
    return value.lower()


def job_disable(body: Any) -> str:
    """disable: what happens to the job's running tasks (disableTasks, required)."""
    return _option("disableTasks", _required(_object(body), "disableTasks"), JOB_DISABLE_OPTIONS)


def node_disable_scheduling(body: Any) -> str:
    """disablescheduling: what happens to the node's running tasks; no body, or no
    nodeDisableSchedulingOption, is the service's default, requeue."""
    value = None if body is None else _object(body).get("nodeDisableSchedulingOption")
    if value is None:
        return "requeue"
    return _option("nodeDisableSchedulingOption", value, NODE_DISABLE_OPTIONS)


# --- updates: PATCH and PUT, checked as a create is --------------------------------------


def _job_settings(spec: dict[str, Any]) -> None:
    """What a job's create, update and replace share (the enums: ``job_patch``)."""
    _optional_int(spec, "priority", -1000, 1000)
    parallel = spec.get("maxParallelTasks")
    if parallel is not None and (
        not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < -1
        or parallel == 0
    ):  # fmt: skip
        raise errors.invalid_property(
            "maxParallelTasks", parallel, "The value must be -1 (no limit) or at least 1."
        )
    _flag(spec, "allowTaskPreemption")
    _metadata(spec.get("metadata"))
    pool_info = spec.get("poolInfo")
    if pool_info is not None:
        if not isinstance(pool_info, dict):
            raise errors.invalid_property("poolInfo", pool_info)
        _not_run(pool_info, "autoPoolSpecification", "auto pools", "(an auto pool)")
        _required(pool_info, "poolId")
    network = spec.get("networkConfiguration")
    if network is not None and not isinstance(network, dict):
        raise errors.invalid_property("networkConfiguration", network)


def _only(body: dict[str, Any], names: frozenset[str], entity: str) -> None:
    """Refuse a property the update's type does not have (read-only ones such as id and
    state among them), as the service's OData reader does: InvalidRequestBody."""
    for name in body:
        if name not in names and not name.startswith("odata."):
            raise errors.InvalidRequestBody(
                values=[
                    (
                        "ErrorMessage",
                        f"The property '{name}' does not exist on type "
                        f"'Microsoft.Azure.Batch.Protocol.Entities.{entity}'. Make sure to "
                        "only use property names that are defined by the type.",
                    )
                ]
            )


JOB_UPDATABLE = frozenset(
    {
        "priority", "allowTaskPreemption", "maxParallelTasks", "constraints", "poolInfo",
        "onAllTasksComplete", "metadata", "networkConfiguration",
    }
)  # fmt: skip
"""JobPatchParameter's and JobUpdateParameter's properties: all a job lets be changed."""


def job_update(body: Any, replace: bool) -> dict[str, Any]:
    """A job's PATCH (``replace`` False: only what is given changes) or PUT (``replace``:
    what is not given returns to its default; poolInfo is required)."""
    changes = _object(body)
    _only(changes, JOB_UPDATABLE, "JobUpdateParameter" if replace else "JobPatchParameter")
    if replace:
        _required(changes, "poolInfo", dict)
    _job_settings(changes)
    return job_patch(changes)


def task_update(body: Any) -> dict[str, Any]:
    """A task's PUT: its constraints (none given: the defaults)."""
    changes = _object(body)
    _only(changes, frozenset({"constraints"}), "TaskUpdateParameter")
    _constraints(changes, "maxWallClockTime", "retentionTime")
    return changes


COMMUNICATION_MODES = ("default", "classic", "simplified")
POOL_PATCH = frozenset(
    {
        "startTask", "metadata", "applicationPackageReferences", "certificateReferences",
        "targetNodeCommunicationMode", "displayName", "resourceTags", "vmSize",
        "enableInterNodeCommunication", "virtualMachineConfiguration", "taskSlotsPerNode",
        "taskSchedulingPolicy", "networkConfiguration", "userAccounts", "mountConfiguration",
        "upgradePolicy",
    }
)  # fmt: skip
"""PoolPatchParameter's properties, as of 2025-06-01 (which added the ones from vmSize on,
for pools without nodes)."""
POOL_REPLACE = frozenset(
    {
        "startTask", "metadata", "applicationPackageReferences", "certificateReferences",
        "targetNodeCommunicationMode",
    }
)  # fmt: skip
"""PoolUpdatePropertiesParameter's properties (updateproperties)."""
_POOL_CHANGES = frozenset({"startTask", "metadata", "targetNodeCommunicationMode", "displayName"})


def pool_update(body: Any, replace: bool) -> dict[str, Any]:
    """A pool's PATCH (``replace`` False) or updateproperties (``replace``: metadata and
    applicationPackageReferences required; a start task not
    given is removed). Application packages and certificates are not installed here, so
    only empty lists of them are taken; the other 2025-06-01 properties are refused."""
    changes = _object(body)
    _only(changes, POOL_REPLACE if replace else POOL_PATCH, (
        "PoolUpdatePropertiesParameter" if replace else "PoolPatchParameter"
    ))  # fmt: skip
    if replace:
        for name in ("metadata", "applicationPackageReferences"):  # and certificateReferences
            _required(changes, name, list)  # before 2025-06-01, which retired certificates
    for name, what in (
        ("applicationPackageReferences", "application packages"),
        ("certificateReferences", "certificates"),
    ):
        if _list(changes.get(name), name):
            raise errors.invalid_property(
                name, f"{len(changes[name])} references",
                f"The local Batch emulator does not install {what}: use Azure Batch.",
            )  # fmt: skip
    for name in sorted(set(changes) - _POOL_CHANGES - {
        "applicationPackageReferences", "certificateReferences"
    }):  # fmt: skip
        raise errors.invalid_property(
            name, "(a change)",
            f"The local Batch emulator does not change a pool's {name}: create a new pool.",
        )  # fmt: skip
    _start_task(changes.get("startTask"))
    _metadata(changes.get("metadata"))
    mode = changes.get("targetNodeCommunicationMode")
    if mode is not None:
        changes["targetNodeCommunicationMode"] = _option(
            "targetNodeCommunicationMode", mode, COMMUNICATION_MODES
        )
    display = changes.get("displayName")
    if display is not None and (not isinstance(display, str) or len(display) > 1024):
        raise errors.invalid_property("displayName", display)
    return changes


# --- job schedules -----------------------------------------------------------------------

MIN_SCHEDULE_INTERVAL = timedelta(minutes=1)
"""The least recurrenceInterval and startWindow the service takes (less: a 400)."""


def _moment(value: Any, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise errors.invalid_property(name, value) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def schedule(value: Any) -> dict[str, Any]:
    """A job schedule's schedule: its times, and its intervals of at least a minute."""
    spec = _object(value)
    for name in ("doNotRunUntil", "doNotRunAfter"):
        if spec.get(name) is not None:
            _moment(spec[name], name)
    for name in ("startWindow", "recurrenceInterval"):
        if spec.get(name) is not None and wire.parse_duration(spec[name], name) < (
            MIN_SCHEDULE_INTERVAL
        ):
            raise errors.invalid_property(name, spec[name], "The minimum value is 1 minute.")
    return spec


def schedule_times(spec: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """doNotRunUntil and doNotRunAfter of a validated schedule."""
    until, after = spec.get("doNotRunUntil"), spec.get("doNotRunAfter")
    return (
        None if until is None else _moment(until, "doNotRunUntil"),
        None if after is None else _moment(after, "doNotRunAfter"),
    )


def job_specification(value: Any) -> dict[str, Any]:
    """The jobs a schedule creates: a job's body without its id."""
    spec = _object(value)
    if "id" in spec:  # the schedule names its jobs
        _only({"id": spec["id"]}, frozenset(), "JobSpecification")
    checked = job({**spec, "id": "scheduled"})
    del checked["id"]
    return checked


def job_schedule(body: Any, operation: str) -> dict[str, Any]:
    """A schedule's create (with its id), replace (PUT) or update (PATCH: schedule and
    jobSpecification optional, checked alike)."""
    spec = _object(body)
    names = {"schedule", "jobSpecification", "metadata"}
    if operation == "create":
        _identifier(spec)
        _only(spec, frozenset(names | {"id", "displayName"}), "JobScheduleAddParameter")
    else:
        entity = (
            "JobScheduleUpdateParameter" if operation == "replace" else "JobSchedulePatchParameter"
        )
        _only(spec, frozenset(names), entity)
    whole = operation != "update"
    if whole or "schedule" in spec:
        spec["schedule"] = schedule(_required(spec, "schedule", dict))
    if whole or "jobSpecification" in spec:
        spec["jobSpecification"] = job_specification(_required(spec, "jobSpecification", dict))
    _metadata(spec.get("metadata"))
    return spec
