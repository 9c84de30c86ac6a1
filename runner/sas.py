"""Shared access signatures, only for a stack whose pool has no managed identity.

With a pool identity (what infra/ deploys) no SAS is ever made. Without one, a node needs
signed URLs, and each grants the least it can:

- a resource file (the script, a task's input) gets a SAS on that one blob, read only
  (``sr=b``, ``sp=r``): a task can read its own input and the script, nothing else;
- output files get a SAS on the output container, write only (``sr=c``, ``sp=w``): what
  Batch asks of an output container URL. Write covers a new blob, a retried task
  overwriting its own results, and uploads in blocks; without read, list or delete a node
  can neither see nor remove other results. (Storage accounts without a hierarchical
  namespace have no directory-scoped SAS, so it cannot be narrowed to the job's prefix.)

Every SAS of a job starts ``CLOCK_SKEW`` in the past (a node's clock may run behind) and
expires after ``lifetime``; it is HTTPS-only when the endpoint is HTTPS.

How it is signed follows how the runner authenticates to storage, not which stack it is:

- with Microsoft Entra ID (a token credential, the Azure stack) it is a user-delegation SAS:
  ``get_user_delegation_key`` for the job's lifetime, then each SAS signed with that key.
  The signed-in identity needs ``generateUserDelegationKey`` (Storage Blob Delegator, or
  Storage Blob Data Contributor) and the SAS never grants more than that identity has;
- with the account key (the local stack) it is a service SAS signed with that key, because
  Azurite answers Get User Delegation Key only to OAuth callers (HTTPS with ``--oauth``),
  and refuses it when the request is signed with the account key.

A SAS is a secret: it lives only in the task's resource file and output file URLs, where
Batch needs it, never on a command line, in a log line or in an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)

READ = "r"
"""A resource file's blob: read, nothing more."""
WRITE = "w"
"""The output container: write (create or replace blobs and their blocks), nothing more."""
LIST = "l"
"""With READ, for merge tasks: the output container's blobs below a prefix."""

DEFAULT_WAIT = timedelta(hours=4)
"""How long a job may take when the runner is told no --timeout."""
MARGIN = timedelta(minutes=15)
"""Added to the job's bound: a task finishing at the deadline still uploads its results."""
CLOCK_SKEW = timedelta(minutes=15)
"""How far before now a SAS starts, for nodes whose clocks run behind."""
LONGEST = timedelta(days=7)
"""The longest a user-delegation key (so its SAS) may last; kept for every stack alike."""


class SasError(RuntimeError):
    """No SAS can be made as asked; the message names why and holds no secret."""


def lifetime(wait: timedelta | None, task_timeout: timedelta | None, attempts: int) -> timedelta:
    """How long a job's SAS must last: as long as the runner waits for the job, plus MARGIN.

    That is ``wait`` (the runner's --timeout) or DEFAULT_WAIT, but at least the time one
    task may take over all its ``attempts`` (``task_timeout`` each), so that the last
    attempt of a task can still read its input and upload its results. A task still
    queued or running after that finds its SAS expired and fails (BlobAccessDenied or
    FileUploadAccessDenied) rather than the SAS outliving the job: give a longer --timeout,
    or the pool an identity. Beyond LONGEST it is refused.
    """
    needed = wait or DEFAULT_WAIT
    if task_timeout is not None:
        needed = max(needed, task_timeout * max(attempts, 1))
    needed += MARGIN
    if needed > LONGEST:
        raise SasError(
            f"a SAS cannot last {needed} (at most {LONGEST}); ask for a shorter --timeout "
            "or --task-timeout, or give the pool a managed identity"
        )
    return needed


@dataclass(frozen=True)
class Signer:
    """Signs the SAS URLs of one job, all with the same start and expiry."""

    account_name: str
    start: datetime
    expiry: datetime
    https_only: bool
    account_key: str | None = field(default=None, repr=False)
    delegation_key: UserDelegationKey | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return "user-delegation" if self.delegation_key is not None else "service"

    def read_blob(self, blob: BlobClient) -> str:
        """The blob's URL with a SAS that reads that blob only."""
        token = generate_blob_sas(
            self.account_name,
            blob.container_name,
            blob.blob_name,
            account_key=self.account_key,
            user_delegation_key=self.delegation_key,
            permission=BlobSasPermissions.from_string(READ),
            start=self.start,
            expiry=self.expiry,
            protocol="https" if self.https_only else None,
        )
        return f"{blob.url}?{token}"

    def read_container(self, container: ContainerClient) -> str:
        """The container's URL with a SAS that lists and reads its blobs (a merge task
        reads the results of the tasks below it by prefix), and nothing else."""
        return self._container_url(container, READ + LIST)

    def write_container(self, container: ContainerClient) -> str:
        """The container's URL with a SAS that writes blobs into it, and nothing else."""
        return self._container_url(container, WRITE)

    def _container_url(self, container: ContainerClient, permission: str) -> str:
        token = generate_container_sas(
            self.account_name,
            container.container_name,
            account_key=self.account_key,
            user_delegation_key=self.delegation_key,
            permission=ContainerSasPermissions.from_string(permission),
            start=self.start,
            expiry=self.expiry,
            protocol="https" if self.https_only else None,
        )
        return f"{container.url}?{token}"


def signer(blobs: BlobServiceClient, valid_for: timedelta, now: datetime | None = None) -> Signer:
    """A Signer for SAS valid from about now for ``valid_for`` (see ``lifetime``).

    Signed with the account key if ``blobs`` authenticates with one, else with a
    user-delegation key that ``blobs`` (an Entra ID identity) obtains for that period.
    """
    now = now or datetime.now(UTC)
    start, expiry = now - CLOCK_SKEW, now + valid_for
    https_only = blobs.url.lower().startswith("https://")
    account_key = getattr(blobs.credential, "account_key", None)
    if isinstance(account_key, str):
        return Signer(blobs.account_name or "", start, expiry, https_only, account_key=account_key)
    try:
        key = blobs.get_user_delegation_key(start, expiry)
    except HttpResponseError as error:
        code = getattr(error, "error_code", None) or error.status_code
        raise SasError(
            f"cannot get a user-delegation key ({code}); "
            "the signed-in identity needs Storage Blob Delegator on the storage account, "
            "or give the pool a managed identity"
        ) from None
    return Signer(blobs.account_name or "", start, expiry, https_only, delegation_key=key)
