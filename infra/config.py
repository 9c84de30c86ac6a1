"""The stack's settings: read from Pulumi config once, defaults applied, validated at once.

Every key lives in the project's namespace (``azure-batch-runner:<key>``); docs/azure.md
lists them with their defaults. A bad value stops the program with a message naming
the key, before any resource is declared.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pulumi

from contract import spec

DEFAULT_LOCATION = "westeurope"


class ConfigError(pulumi.RunError):
    """A config value that cannot be used; the message names the key (no traceback)."""


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    location: str
    existing_resource_group: str | None  # use this group instead of creating one
    blob_retention_days: int  # input and output blobs are deleted after this many days
    soft_delete_days: int  # deleted blobs and containers stay recoverable this long
    allow_shared_key: bool  # storage and Batch accept account keys as well as Entra ID
    runner_principal_id: str | None  # gets the roles to submit jobs and use the blobs
    runner_principal_type: str | None  # User, Group or ServicePrincipal
    spec: spec.Spec

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "stack": self.stack}


KEYS = (
    "location",
    "resourceGroupName",
    "vmSize",
    "taskSlotsPerNode",
    "autoscale",
    "maxDedicatedNodes",
    "maxSpotNodes",
    "dedicatedNodes",
    "spotNodes",
    "blobRetentionDays",
    "softDeleteDays",
    "allowSharedKey",
    "runnerPrincipalId",
    "runnerPrincipalType",
)
"""Every setting the program reads (Pulumi.example.yaml shows each with its default)."""

_PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def load(config: pulumi.Config | None = None) -> Settings:
    """Settings from the current stack's config (``pulumi config set KEY VALUE``)."""
    reader = _Known(config or pulumi.Config())
    defaults = spec.Pool()

    def count(key: str, default: int, low: int, high: int) -> int:
        try:
            value = reader.get_int(key)
        except pulumi.ConfigTypeError:
            raise ConfigError(f"config '{key}' must be a whole number") from None
        value = default if value is None else value
        if not low <= value <= high:
            raise ConfigError(f"config '{key}' must be between {low} and {high}, not {value}")
        return value

    def flag(key: str, default: bool) -> bool:
        try:
            value = reader.get_bool(key)
        except pulumi.ConfigTypeError:
            raise ConfigError(f"config '{key}' must be true or false") from None
        return default if value is None else value

    autoscale = flag("autoscale", defaults.autoscale)
    vm_size = reader.get("vmSize") or defaults.vm_size
    if not re.fullmatch(r"Standard_[A-Za-z0-9_-]+", vm_size):
        raise ConfigError(f"config 'vmSize' is not a VM size like Standard_D2s_v5: {vm_size}")
    slots = count("taskSlotsPerNode", defaults.task_slots_per_node, 1, spec.MAX_TASK_SLOTS_PER_NODE)
    # Batch allows at most 4 x the size's vCPUs (and 256); spec.vcpus knows the common sizes.
    problem = spec.task_slots_problem(vm_size, slots)
    if problem is not None:
        raise ConfigError(f"config 'taskSlotsPerNode' is {slots}, but {problem}")
    pool = dataclasses.replace(
        defaults,
        vm_size=vm_size,
        autoscale=autoscale,
        max_dedicated_nodes=count("maxDedicatedNodes", defaults.max_dedicated_nodes, 0, 1000),
        max_spot_nodes=count("maxSpotNodes", defaults.max_spot_nodes, 0, 1000),
        fixed_dedicated_nodes=count("dedicatedNodes", defaults.fixed_dedicated_nodes, 0, 1000),
        fixed_spot_nodes=count("spotNodes", defaults.fixed_spot_nodes, 0, 1000),
        task_slots_per_node=slots,
    )
    if autoscale and pool.max_dedicated_nodes + pool.max_spot_nodes == 0:
        raise ConfigError("config 'maxDedicatedNodes' and 'maxSpotNodes' are both 0: no node")

    principal = reader.get("runnerPrincipalId")
    if principal is not None and not _GUID.match(principal):
        raise ConfigError("config 'runnerPrincipalId' must be an object id (a GUID)")
    principal_type = reader.get("runnerPrincipalType")
    if principal_type is not None and principal_type not in _PRINCIPAL_TYPES:
        raise ConfigError(
            f"config 'runnerPrincipalType' must be one of {', '.join(_PRINCIPAL_TYPES)}"
        )

    location = reader.get("location") or pulumi.Config("azure-native").get("location")
    return Settings(
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        location=location or DEFAULT_LOCATION,
        existing_resource_group=reader.get("resourceGroupName"),
        blob_retention_days=count("blobRetentionDays", 7, 1, 3650),
        soft_delete_days=count("softDeleteDays", 7, 1, 365),
        allow_shared_key=flag("allowSharedKey", False),
        runner_principal_id=principal,
        runner_principal_type=principal_type,
        spec=spec.Spec(pool=pool),
    )


class _Known:
    """pulumi.Config that refuses a key missing from KEYS, so the list stays complete."""

    def __init__(self, config: pulumi.Config) -> None:
        self._config = config

    def get(self, key: str) -> str | None:
        return self._config.get(self._known(key))

    def get_int(self, key: str) -> int | None:
        return self._config.get_int(self._known(key))

    def get_bool(self, key: str) -> bool | None:
        return self._config.get_bool(self._known(key))

    @staticmethod
    def _known(key: str) -> str:
        if key not in KEYS:
            raise AssertionError(f"config key '{key}' is read but not listed in KEYS")
        return key
