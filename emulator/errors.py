"""Batch service errors: one class per error code, with the service's status and message.

Raise one anywhere below the routes; ``render`` writes the body the real service sends:

    {"odata.metadata": ".../$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
     "code": "PoolNotFound",
     "message": {"lang": "en-US", "value": "The specified pool does not exist.\\nRequestId:…\\nTime:…"},
     "values": [{"key": "…", "value": "…"}]}

Codes and messages follow Batch's table of status and error codes; only the codes the
emulator raises are defined. Task failures (failureInfo) are not errors: see ``failures``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


class BatchServiceError(Exception):
    """An error the service answers with; subclasses fix the code, status and message."""

    status: ClassVar[int] = 500
    message: ClassVar[str] = "The server encountered an internal error. Please retry the request."

    def __init__(self, detail: str | None = None, values: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(detail or self.message)
        self.detail = detail or self.message
        self.values = list(values)

    @property
    def code(self) -> str:
        return type(self).__name__

    def render(self, metadata_base: str, request_id: str, time: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "odata.metadata": f"{metadata_base}/$metadata"
            "#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
            "code": self.code,
            "message": {
                "lang": "en-US",
                "value": f"{self.detail}\nRequestId:{request_id}\nTime:{time}",
            },
        }
        if self.values:
            body["values"] = [{"key": key, "value": value} for key, value in self.values]
        return body


def _error(code: str, status: int, message: str) -> type[BatchServiceError]:
    return type(code, (BatchServiceError,), {"status": status, "message": message})


# Common REST API errors
MissingRequiredProperty = _error(
    "MissingRequiredProperty", 400, "A required property was not specified in the request body."
)
InvalidPropertyValue = _error(
    "InvalidPropertyValue",
    400,
    "The value provided for one of the properties in the request body is invalid.",
)
MissingRequiredQueryParameter = _error(
    "MissingRequiredQueryParameter",
    400,
    "A query parameter that's mandatory for this request is not specified.",
)
InvalidQueryParameterValue = _error(
    "InvalidQueryParameterValue",
    400,
    "Value for one of the query parameters specified in the request URI is invalid.",
)
OutOfRangeQueryParameterValue = _error(
    "OutOfRangeQueryParameterValue",
    400,
    "A query parameter specified in the request URI is outside the permissible range.",
)
InvalidUri = _error(
    "InvalidUri", 400, "The requested URI does not represent any resource on the server."
)
InvalidRequestBody = _error(
    "InvalidRequestBody", 400, "The specified Request Body is not syntactically valid."
)
InvalidAuthenticationInfo = _error(
    "InvalidAuthenticationInfo",
    400,
    "Server failed to authenticate the request. The authentication information was not provided in the correct format. Verify the value of Authorization header.",
)
AuthenticationFailed = _error(
    "AuthenticationFailed",
    403,
    "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
)
UnsupportedHttpVerb = _error(
    "UnsupportedHttpVerb", 405, "The resource doesn't support specified Http Verb."
)
RequestBodyTooLarge = _error(
    "RequestBodyTooLarge",
    413,
    "The request body is too large and exceeds the maximum permissible limit.",
)
InternalError = _error(
    "InternalError", 500, "Server encountered an internal error. Please try again after some time."
)
ServerBusy = _error(
    "ServerBusy",
    503,
    "The server is currently unable to receive requests. Please retry your request.",
)
TooManyRequests = _error(
    "TooManyRequests",
    429,
    "The request rate is over the account's limit. Please retry after the time in Retry-After.",
)
ConditionNotMet = _error(  # a read's unmet If-Match passes the read operation's message
    "ConditionNotMet",
    412,
    "The condition specified in the conditional header(s) was not met for a write operation.",
)
MultipleConditionHeadersNotSupported = _error(
    "MultipleConditionHeadersNotSupported", 400, "Multiple condition headers are not supported."
)
InvalidHeaderValue = _error(
    "InvalidHeaderValue",
    400,
    "The value provided for one of the HTTP headers was not in the correct format.",
)

# Batch service errors
UnsupportedRequestVersion = _error(
    "UnsupportedRequestVersion", 400, "The specified request version is not supported."
)
PoolNotFound = _error("PoolNotFound", 404, "The specified pool does not exist.")
NodeNotFound = _error("NodeNotFound", 404, "The specified node does not exist.")
JobNotFound = _error("JobNotFound", 404, "The specified job does not exist.")
TaskNotFound = _error("TaskNotFound", 404, "The specified task does not exist.")
FileNotFound = _error("FileNotFound", 404, "The specified file does not exist.")
PoolExists = _error("PoolExists", 409, "The specified pool already exists.")
PoolQuotaReached = _error("PoolQuotaReached", 409, "Pool quota for the account has been reached.")
PoolBeingResized = _error("PoolBeingResized", 409, "The specified pool is being resized.")
NodeBeingStarted = _error("NodeBeingStarted", 409, "The specified node is being started.")
NodeBeingRebooted = _error("NodeBeingRebooted", 409, "The specified node is being rebooted.")
NodeBeingReimaged = _error("NodeBeingReimaged", 409, "The specified node is being reimaged.")
OperationNotValidOnNode = _error(
    "OperationNotValidOnNode", 409, "The specified operation is not valid on the node."
)
NodeAlreadyInTargetSchedulingState = _error(
    "NodeAlreadyInTargetSchedulingState",
    409,
    "The specified node is already in the target scheduling state.",
)
OperationNotValidOnPool = _error(
    "OperationNotValidOnPool", 409, "The specified operation is not valid on the pool."
)
AutoScalingFormulaSyntaxError = _error(
    "AutoScalingFormulaSyntaxError", 400, "The specified auto-scaling formula has a syntax error."
)
AutoScaleFormulaTooLong = _error(
    "AutoScaleFormulaTooLong",
    400,
    "An automatic scaling formula is too long. The maximum length is 8192 characters.",
)
AutoScaleTooManyRequestsToEnable = _error(
    "AutoScaleTooManyRequestsToEnable",
    409,
    "Enable AutoScale requests for the same pool must be separated by at least 30 seconds.",
)
JobScheduleExists = _error("JobScheduleExists", 409, "The specified job schedule already exists.")
JobScheduleNotFound = _error(
    "JobScheduleNotFound", 404, "The specified job schedule does not exist."
)
JobScheduleCompleted = _error(
    "JobScheduleCompleted", 409, "The specified job schedule is already in a completed state."
)
JobScheduleBeingTerminated = _error(
    "JobScheduleBeingTerminated", 409, "The specified job schedule is being terminated."
)
JobExists = _error("JobExists", 409, "The specified job already exists.")
JobCompleted = _error("JobCompleted", 409, "The specified job is already in a completed state.")
JobBeingTerminated = _error("JobBeingTerminated", 409, "The specified job is being terminated.")
JobBeingDeleted = _error(
    "JobBeingDeleted",
    409,
    "The specified job has been marked for deletion and is being garbage collected.",
)
JobPreparationTaskNotSpecified = _error(
    "JobPreparationTaskNotSpecified", 409, "The specified job does not have job preparation task."
)
TaskIdSameAsJobPreparationTask = _error(
    "TaskIdSameAsJobPreparationTask",
    409,
    "The specified task id is same as the job preparation task.",
)
TaskIdSameAsJobReleaseTask = _error(
    "TaskIdSameAsJobReleaseTask", 409, "The specified task id is same as the job release task."
)
TaskExists = _error("TaskExists", 409, "The specified task already exists.")
TaskCompleted = _error("TaskCompleted", 409, "The specified task is already in a completed state.")
TaskNotCompleted = _error(
    "TaskNotCompleted",
    409,
    "The specified task is not in a completed state, and the requested operation can be performed only on completed tasks.",
)
TaskSucceeded = _error(
    "TaskSucceeded",
    409,
    "The specified task has already completed successfully, and the requested operation cannot be performed on successful tasks.",
)

TaskDependenciesNotSpecifiedOnJob = _error(
    "TaskDependenciesNotSpecifiedOnJob",
    400,
    "A task was specified as depending on other tasks, but the job did not specify that it would use task dependencies.",
)
TaskDependencyListTooLong = _error(
    "TaskDependencyListTooLong",
    400,
    "A task was specified as depending on other tasks, but the list of dependencies was too long to be stored.",
)
TaskDependencyRangesTooLong = _error(
    "TaskDependencyRangesTooLong",
    400,
    "A task was specified as depending on multiple ranges of task ids, and the list of ranges was too long to be stored.",
)


def invalid_property(name: str, value: object, reason: str | None = None) -> BatchServiceError:
    values = [("PropertyName", name), ("PropertyValue", str(value))]
    if reason:
        values.append(("Reason", reason))
    return InvalidPropertyValue(values=values)


def missing_property(name: str) -> BatchServiceError:
    return MissingRequiredProperty(values=[("PropertyName", name)])
