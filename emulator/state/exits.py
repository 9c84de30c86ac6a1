"""Exit conditions: what a completed task's exitConditions tell the service to do.

The service matches a completion in this order (the API's ExitConditions): the exit code
in exitCodes, then in exitCodeRanges (either wins over a file upload error that follows);
a file upload error (fileUploadError); a failure to start, such as a resource file that
cannot be downloaded (preProcessingError); and default for any other non-zero exit code,
for those two errors when their own property is absent, and for a task that was ended
(terminated, or past its maxWallClockTime). Exit code 0 only matches when listed. What
the matched ExitOptions leaves out is the service's default: jobAction none and
dependencyAction satisfy for exit code 0, terminate and block for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator import failures
from emulator.failures import Failure

Spec = dict[str, Any]

_UPLOAD = {
    failure.code
    for failure in (
        failures.FILE_UPLOAD_CONTAINER_NOT_FOUND,
        failures.FILE_UPLOAD_ACCESS_DENIED,
        failures.FILE_UPLOAD_MISC_ERROR,
    )
}
_ENDED = failures.TASK_ENDED_BY_REQUEST.code


@dataclass(frozen=True)
class ExitAction:
    """The jobAction and dependencyAction that apply to a completion."""

    job_action: str  # none, disable or terminate
    dependency_action: str  # satisfy or block


SUCCESS = ExitAction("none", "satisfy")
FAILURE = ExitAction("terminate", "block")


def action(conditions: Spec | None, exit_code: int | None, failure: Failure | None) -> ExitAction:
    """What applies to a task that completed with exit_code (None: the process never
    exited on its own account) and failure (None: it exited as it chose)."""
    conditions = conditions or {}
    uploading = failure is not None and failure.code in _UPLOAD
    if exit_code is not None and (failure is None or uploading):
        mapped = _by_code(conditions, exit_code)
        if mapped is not None:
            return _complete(mapped, SUCCESS if exit_code == 0 else FAILURE)
    if failure is None and exit_code == 0:
        return SUCCESS
    options: Spec | None = None
    if uploading:
        options = conditions.get("fileUploadError")
    elif failure is not None and exit_code is None and failure.code != _ENDED:
        options = conditions.get("preProcessingError")
    return _complete(options or conditions.get("default") or {}, FAILURE)


def _by_code(conditions: Spec, exit_code: int) -> Spec | None:
    for mapping in conditions.get("exitCodes") or []:
        if mapping["code"] == exit_code:
            options: Spec = mapping["exitOptions"]
            return options
    for mapping in conditions.get("exitCodeRanges") or []:
        if mapping["start"] <= exit_code <= mapping["end"]:
            options = mapping["exitOptions"]
            return options
    return None


def _complete(options: Spec, defaults: ExitAction) -> ExitAction:
    return ExitAction(
        options.get("jobAction") or defaults.job_action,
        options.get("dependencyAction") or defaults.dependency_action,
    )
