"""The account's quotas: how many pools it may have and how many cores its nodes may use.

Off unless set (``python -m emulator --core-quota N --pool-quota N``). Creating a pool
beyond the pool quota fails with PoolQuotaReached (409). Allocating nodes, when a pool
is created, resized or scaled, takes only the nodes whose cores fit in what the account's
nodes leave of the core quota, dedicated ones first, as the service does in batch-service
mode; the pool gets the rest of its targets as ``resizeErrors``, steady:

    AccountCoreQuotaReached             a dedicated node did not fit
    AccountLowPriorityCoreQuotaReached  a Spot/low-priority node did not fit

The service has a quota for each (and one per VM series); here one quota counts the cores
of every node in the account, whatever its kind. The codes are those of
PoolResizeErrorCodes in the Batch .NET SDK reference, with its descriptions as messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emulator.records import ResizeError
from emulator.state.tables import Tables

CORE_QUOTA = ResizeError("AccountCoreQuotaReached", "The specified account has reached core quota")
LOW_PRIORITY_CORE_QUOTA = ResizeError(
    "AccountLowPriorityCoreQuotaReached",
    "The specified account has reached low priority core quota",
)

_SIZE = re.compile(r"standard_[a-z]+(\d+)", re.IGNORECASE)
_DV2 = {1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 11: 2, 12: 4, 13: 8, 14: 16, 15: 20}
"""The D and DS v2 sizes, whose number is not their vCPUs (Standard_D3_v2 has 4)."""


def vcpus(vm_size: str) -> int:
    """The cores of a node of this size: the number after the family letters
    (standard_d2s_v3 has 2, Standard_F16s_v2 16); 1 for a name it cannot read."""
    match = _SIZE.match(vm_size)
    if match is None:
        return 1
    number = int(match.group(1))
    if re.fullmatch(r"standard_ds?\d+_v2", vm_size, re.IGNORECASE):
        return _DV2.get(number, number)
    return max(number, 1)


@dataclass(frozen=True)
class Quotas:
    """None: no limit (the default)."""

    cores: int | None = None
    pools: int | None = None


@dataclass(frozen=True)
class Allocation:
    """How many new nodes of each kind a pool gets, and why not more."""

    dedicated: int
    low_priority: int
    errors: list[ResizeError]


class Allocator:
    def __init__(self, tables: Tables, quotas: Quotas) -> None:
        self.tables = tables
        self.quotas = quotas

    def pool_quota_reached(self) -> bool:
        return self.quotas.pools is not None and len(self.tables.pools) >= self.quotas.pools

    def allocate(self, vm_size: str, dedicated: int, low_priority: int) -> Allocation:
        """The new nodes (``dedicated`` and ``low_priority`` wanted) that fit the core quota."""
        if self.quotas.cores is None:
            return Allocation(dedicated, low_priority, [])
        per_node = vcpus(vm_size)
        free = self.quotas.cores - self._cores_in_use()
        fit_dedicated = min(dedicated, max(free, 0) // per_node)
        free -= fit_dedicated * per_node
        fit_low_priority = min(low_priority, max(free, 0) // per_node)
        errors = [CORE_QUOTA] if fit_dedicated < dedicated else []
        errors += [LOW_PRIORITY_CORE_QUOTA] if fit_low_priority < low_priority else []
        return Allocation(fit_dedicated, fit_low_priority, errors)

    def _cores_in_use(self) -> int:
        """Every node counts until it is gone, leaving ones too (their VMs still run)."""
        return sum(
            vcpus(node.vm_size) for nodes in self.tables.nodes.values() for node in nodes.values()
        )
