"""How a run ends: the outcome an executor reports and the failures Batch names.

Every failure a task or start task can report is in the table below, with its category
and the service's message, as ``errors`` holds the HTTP errors. Wherever a run fails
(the executor, resource files, output files, the state machine), it picks an entry:

    failures.BLOB_NOT_FOUND()                         the table's message
    failures.BLOB_ACCESS_DENIED("The identity …")     the same code, a message of its own
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

USER, SERVER = "usererror", "servererror"
"""The two failure categories the service reports."""


@dataclass(frozen=True)
class Failure:
    """failureInfo as the service reports it. The table's entries are Failures with the
    service's usual message; calling one gives the same failure with a message of its own."""

    category: str
    code: str
    message: str
    details: tuple[tuple[str, str], ...] = ()

    def __call__(self, message: str | None = None) -> Failure:
        return replace(self, message=message or self.message)


# The process
FAILURE_EXIT_CODE = Failure(
    USER,
    "FailureExitCode",
    "The task process exited with an unexpected exit code",
    (("AdditionalErrorCode", "FailureExitCode"),),
)
COMMAND_PROGRAM_NOT_FOUND = Failure(
    USER, "CommandProgramNotFound", "The specified command program is not found."
)
COMMAND_LAUNCH_FAILED = Failure(USER, "CommandLaunchFailed", "The command line is empty.")
TASK_ENDED_BY_REQUEST = Failure(USER, "TaskEnded", "Task Was Ended by User Request")
TASK_ENDED_WALL_CLOCK = Failure(  # the documented code for a task the service ended
    USER, "TaskEnded", "The task exceeded its maximum wall clock time and was ended."
)
TASK_ENDED_NODE_LOST = Failure(  # nodeDeallocationOption terminate: TaskEnded again
    USER, "TaskEnded", "The task was terminated because its compute node was removed from the pool."
)

# Resource files
BLOB_NOT_FOUND = Failure(USER, "BlobNotFound", "One of the specified Azure Blob(s) is not found.")
BLOB_ACCESS_DENIED = Failure(
    USER, "BlobAccessDenied", "Access for one of the specified Azure Blob(s) is denied."
)
BLOB_DOWNLOAD_MISC_ERROR = Failure(
    SERVER, "BlobDownloadMiscError", "Error downloading a resource file."
)
RESOURCE_FILE_CREATE_FAILED = Failure(
    SERVER, "ResourceFileCreateFailed", "Failure creating a resource file."
)

# Output files
FILE_UPLOAD_CONTAINER_NOT_FOUND = Failure(
    USER,
    "FileUploadContainerNotFound",
    "The Azure Storage Container for uploading Output Files was not found.",
)
FILE_UPLOAD_ACCESS_DENIED = Failure(
    USER,
    "FileUploadAccessDenied",
    "Access to the Azure Storage Container for uploading Output Files was denied.",
)
FILE_UPLOAD_MISC_ERROR = Failure(
    SERVER, "FileUploadMiscError", "An error occurred while uploading Output Files."
)


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the executor (or the scheduler, for files) reports it."""

    exit_code: int | None
    failure: Failure | None = None
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.failure is None and self.exit_code == 0

    def failure_info(self) -> Failure:
        """What a failed run reports: its own failure, or a plain non-zero exit code."""
        return self.failure or FAILURE_EXIT_CODE()
