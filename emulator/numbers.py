"""Integer properties sent as JSON strings of digits, read as the numbers they are.

The service's JSON reader takes ``"targetDedicatedNodes": "1"`` for 1, and the Azure CLI
sends its numeric options that way (``az batch pool create --target-dedicated-nodes 1``,
``az batch job create --priority 5``). A request body is read through ``numbers`` before
it is validated: the integer properties of Batch's request models that hold such a
string become ints, stored and returned as numbers; any other string stays as it is, for
validation to refuse as the service does.
"""

from __future__ import annotations

import re
from typing import Any

INTEGER_PROPERTIES = frozenset(
    {
        "targetDedicatedNodes",
        "targetLowPriorityNodes",
        "taskSlotsPerNode",
        "maxTasksPerNode",
        "priority",
        "maxParallelTasks",
        "maxTaskRetryCount",
        "requiredSlots",
        "code",  # exitCodes[].code
        "start",  # exitCodeRanges[].start and .end
        "end",
    }
)
"""The int32 properties of Batch's request bodies (pools, jobs, tasks and their
constraints, exit conditions); durations and counts the service reads are these."""

_DIGITS = re.compile(r"-?[0-9]{1,10}")


def numbers(value: Any, key: str | None = None) -> Any:
    """``value`` with every integer property that holds a string of digits as an int."""
    if isinstance(value, dict):
        return {name: numbers(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [numbers(item, key) for item in value]
    if key in INTEGER_PROPERTIES and isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
        return number if -(2**31) <= number < 2**31 else value
    return value
