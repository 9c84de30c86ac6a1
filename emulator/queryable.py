"""What the OData query options may name, per list operation: one table, read by ``odata``.

For each collection (the name after ``$metadata#`` in its documents) a ``Listing`` holds:

- ``filterable``: the properties ``$filter`` may test, each with its type and the operators
  the service allows on it. Source: the REST reference's "OData filters in Azure Batch"
  (learn.microsoft.com/rest/api/batchservice/odata-filters-in-batch), one table per list
  operation. Its current edition allows ``eq, ne`` on ``state`` where the 2018 edition had
  ``eq`` alone (nodes, certificates, job schedules, the jobs of a schedule): the emulator
  allows ``ne`` on every such enum, which the runner's ``state ne 'completed'`` relies on.
- ``selectable``: the top-level properties of the entity type, the only names ``$select``
  takes. Source: the 2025-06-01 data-plane specification's models, as azure-batch 15.1
  (built from it) names them.
- ``order``: the document paths a listing is ordered by. The REST reference promises no
  order; the emulator lists by id (ordinal), so that a page ends at a key, not an offset
  (see ``odata.page``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Kind(enum.Enum):
    """A filterable property's type: which literals it compares with."""

    STRING = "String"  # 'text'; compared case-insensitively, as the reference's rules say
    ENUM = "Enum"  # 'value' of a fixed set (state...); also case-insensitive
    INT = "Int"  # 3, -1
    DATETIME = "DateTime"  # DateTime'2026-01-01T00:00:00Z' (W3C-DTF or RFC 1123)
    BOOL = "Boolean"  # true, false


EQUALITY = frozenset({"eq", "ne"})
ORDERED = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
PREFIX = frozenset({"startswith"})


@dataclass(frozen=True)
class Filterable:
    kind: Kind
    operators: frozenset[str]
    default: bool | None = None  # the value of a property a document leaves out


@dataclass(frozen=True)
class Listing:
    filterable: Mapping[str, Filterable]
    selectable: frozenset[str]
    order: tuple[str, ...] = ("id",)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _fields(*pairs: tuple[str, Kind, frozenset[str]]) -> dict[str, Filterable]:
    return {path: Filterable(kind, operators) for path, kind, operators in pairs}


_ID = ("id", Kind.STRING, PREFIX | ORDERED)
_STATE = ("state", Kind.ENUM, EQUALITY)


def _times(*paths: str) -> list[tuple[str, Kind, frozenset[str]]]:
    return [(path, Kind.DATETIME, ORDERED) for path in paths]


LISTINGS: dict[str, Listing] = {
    "pools": Listing(
        _fields(
            _ID,
            _STATE,
            *_times("stateTransitionTime", "allocationStateTransitionTime"),
            ("allocationState", Kind.ENUM, EQUALITY),
            *_times("creationTime", "lastModified"),
            ("vmSize", Kind.STRING, EQUALITY),
        )
        | {  # false unless the pool was created with them (the API's defaults)
            "enableAutoScale": Filterable(Kind.BOOL, EQUALITY, default=False),
            "enableInterNodeCommunication": Filterable(Kind.BOOL, EQUALITY, default=False),
        },
        _names(
            "id displayName url eTag lastModified creationTime state stateTransitionTime "
            "allocationState allocationStateTransitionTime vmSize "
            "virtualMachineConfiguration resizeTimeout resizeErrors currentDedicatedNodes "
            "currentLowPriorityNodes targetDedicatedNodes targetLowPriorityNodes "
            "enableAutoScale autoScaleFormula autoScaleEvaluationInterval autoScaleRun "
            "enableInterNodeCommunication networkConfiguration startTask "
            "applicationPackageReferences taskSlotsPerNode taskSchedulingPolicy "
            "userAccounts metadata stats mountConfiguration identity upgradePolicy"
        ),
    ),
    # The reference lists no id for nodes: a node's id is not filterable.
    "nodes": Listing(
        _fields(
            _STATE,
            *_times("stateTransitionTime", "lastBootTime", "allocationTime"),
            ("startTaskInfo/state", Kind.ENUM, frozenset({"eq"})),
            ("startTaskInfo/result", Kind.ENUM, EQUALITY),
            ("startTaskInfo/exitCode", Kind.INT, ORDERED),
            *_times("startTaskInfo/startTime", "startTaskInfo/endTime"),
        ),
        _names(
            "id url state schedulingState stateTransitionTime lastBootTime allocationTime "
            "ipAddress ipv6Address affinityId vmSize totalTasksRun runningTasksCount "
            "runningTaskSlotsCount totalTasksSucceeded recentTasks startTask startTaskInfo "
            "errors isDedicated endpointConfiguration nodeAgentInfo virtualMachineInfo"
        ),
    ),
    "jobs": Listing(
        _fields(
            _ID,
            _STATE,
            *_times("stateTransitionTime", "creationTime", "lastModified"),
            *_times("executionInfo/startTime", "executionInfo/endTime"),
            ("executionInfo/poolId", Kind.STRING, PREFIX | ORDERED),
        ),
        _names(
            "id displayName usesTaskDependencies url eTag lastModified creationTime state "
            "stateTransitionTime previousState previousStateTransitionTime priority "
            "allowTaskPreemption maxParallelTasks constraints jobManagerTask "
            "jobPreparationTask jobReleaseTask commonEnvironmentSettings poolInfo "
            "onAllTasksComplete onTaskFailure networkConfiguration metadata executionInfo "
            "stats"
        ),
    ),
    "jobschedules": Listing(
        _fields(
            _ID,
            _STATE,
            *_times("stateTransitionTime", "creationTime", "lastModified"),
            *_times("executionInfo/endTime", "schedule/doNotRunUntil", "schedule/doNotRunAfter"),
        ),
        _names(
            "id displayName url eTag lastModified creationTime state stateTransitionTime "
            "previousState previousStateTransitionTime schedule jobSpecification "
            "executionInfo metadata stats"
        ),
    ),
    # The reference's task table names "lastModifiedTime"; a task's property is
    # lastModified, as on every other entity, so that is the name the emulator takes.
    "tasks": Listing(
        _fields(
            _ID,
            _STATE,
            *_times("stateTransitionTime", "creationTime", "lastModified"),
            *_times("executionInfo/startTime", "executionInfo/endTime"),
            ("executionInfo/exitCode", Kind.INT, ORDERED),
            ("executionInfo/result", Kind.ENUM, EQUALITY),
        ),
        _names(
            "id displayName url eTag lastModified creationTime exitConditions state "
            "stateTransitionTime previousState previousStateTransitionTime commandLine "
            "containerSettings resourceFiles outputFiles environmentSettings affinityInfo "
            "constraints requiredSlots userIdentity executionInfo nodeInfo "
            "multiInstanceSettings stats dependsOn applicationPackageReferences"
        ),
    ),
    # A job's preparation and release task status, one entry per node: the reference's
    # "List job preparation and release status" table (state: eq only); ordered by node,
    # as the spec's example pages by the node id.
    "jobpreparationandreleasestatuslist": Listing(
        _fields(
            ("poolId", Kind.STRING, EQUALITY),
            ("nodeId", Kind.STRING, EQUALITY),
            *[
                field
                for hook in ("jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo")
                for field in (
                    (f"{hook}/state", Kind.ENUM, frozenset({"eq"})),
                    *_times(f"{hook}/startTime", f"{hook}/endTime"),
                    (f"{hook}/exitCode", Kind.INT, ORDERED),
                    (f"{hook}/result", Kind.ENUM, EQUALITY),
                )
            ],
        ),
        _names("poolId nodeId nodeUrl jobPreparationTaskExecutionInfo jobReleaseTaskExecutionInfo"),
        order=("nodeId",),
    ),
    # A task's files and a node's files: the same table.
    "files": Listing(
        _fields(("name", Kind.STRING, PREFIX)),
        frozenset({"name", "url", "isDirectory", "properties"}),
        order=("name",),
    ),
    "supportedimages": Listing(
        _fields(
            ("osType", Kind.ENUM, EQUALITY),
            ("verificationType", Kind.ENUM, EQUALITY),
            ("nodeAgentSKUId", Kind.STRING, EQUALITY),
        ),
        _names(
            "nodeAgentSKUId imageReference osType capabilities batchSupportEndOfLife "
            "verificationType"
        ),
        order=(
            "nodeAgentSKUId",
            "imageReference/publisher",
            "imageReference/offer",
            "imageReference/sku",
            "imageReference/version",
        ),
    ),
    "poolnodecounts": Listing(
        _fields(("poolId", Kind.STRING, frozenset({"eq"}))),
        frozenset({"poolId", "dedicated", "lowPriority"}),
        order=("poolId",),
    ),
    "poolusagemetrics": Listing(
        _fields(("poolId", Kind.STRING, PREFIX | (ORDERED - {"ne"}))),
        frozenset({"poolId", "startTime", "endTime", "vmSize", "totalCoreHours"}),
        order=("poolId", "startTime"),
    ),
}


def listing(collection: str) -> Listing:
    """The table of a collection; a list route naming another is a bug, not a client error."""
    try:
        return LISTINGS[collection]
    except KeyError:
        raise KeyError(f"no listing for {collection!r}: add it to queryable.LISTINGS") from None
