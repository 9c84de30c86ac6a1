"""The one place that turns stack outputs into Batch and Blob clients.

A local stack carries its development keys; an Azure stack has none, and the clients
authenticate with Microsoft Entra ID: in a GitHub workflow by its OIDC token, asked for
afresh as needed (``workflow_identity``), else through DefaultAzureCredential (``az
login`` on a laptop, a managed identity on a VM). Everything after this is the same code.

Transient failures (429 and 5xx answers, refused, reset and cut-off connections) are
retried here, by the SDKs' own retry policies with the settings below, so no other module
retries a request. Both back off exponentially; Batch's honours Retry-After.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.policies import RetryPolicy
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry

from contract.outputs import StackOutputs


class BatchRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's retry policy, which also retries a POST or PATCH whose connection failed.

    By default azure-core retries those only on a 5xx answer, since a lost connection may
    have lost the answer to a request that was carried out. Every Batch write the runner
    makes is safe to repeat: a repeated create answers JobExists or TaskExists, which the
    runner reads as done, and an update sets the same values again.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._method_whitelist = frozenset({*self._method_whitelist, "POST", "PATCH"})


def batch_retry() -> BatchRetryPolicy:
    """Up to 10 retries, 0.5 s doubling to at most 30 s: rides over a restart of the
    service (about 2 minutes of refused connections) as well as a burst of throttling."""
    return BatchRetryPolicy(
        retry_total=10, retry_connect=10, retry_read=10, retry_status=10,
        retry_backoff_factor=0.5, retry_backoff_max=30,
    )  # fmt: skip


class StorageRetry(ExponentialRetry):
    """The storage SDK's exponential retry, waiting ``initial_backoff`` before the first
    retry as its formula reads: the SDK counts that retry as 1 before it waits, so its own
    first wait is ``initial_backoff + increment_base`` (2.5 s, not 0.5)."""

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return float(super().get_backoff_time({**settings, "count": settings["count"] - 1}))


def storage_retry() -> ExponentialRetry:
    """The storage SDK's policy with waits of 0.5, 2.5, 4.5, 8.5, 16.5 and 32.5 s (give
    or take 1) instead of its default 15, 18 and 24: uploading or fetching thousands of
    small blobs should not stall 15 s on one dropped request."""
    return StorageRetry(
        initial_backoff=0.5,  # type: ignore[arg-type]  # seconds: a float is fine
        increment_base=2,
        random_jitter_range=1,
        retry_total=6,
        retry_connect=6,
        retry_read=6,
        retry_status=6,
    )


@dataclass(frozen=True)
class Clients:
    batch: BatchClient
    blobs: BlobServiceClient
    outputs: StackOutputs

    def container(self, name: str) -> ContainerClient:
        return self.blobs.get_container_client(name)


def connect(outputs: StackOutputs) -> Clients:
    if outputs.local is not None:
        batch = BatchClient(
            outputs.batchAccountEndpoint,
            AzureNamedKeyCredential(outputs.batchAccountName, outputs.local.batchAccountKey),
            retry_policy=batch_retry(),
        )
        blobs = BlobServiceClient(
            outputs.blobEndpoint,
            credential={
                "account_name": outputs.storageAccountName,
                "account_key": outputs.local.storageAccountKey,
            },
            retry_policy=storage_retry(),
        )
    else:
        from runner import workflow_identity  # GitHub OIDC in a workflow, else the default

        credential = workflow_identity.credential()
        batch = BatchClient(outputs.batchAccountEndpoint, credential, retry_policy=batch_retry())
        blobs = BlobServiceClient(
            outputs.blobEndpoint, credential=credential, retry_policy=storage_retry()
        )
    return Clients(batch=batch, blobs=blobs, outputs=outputs)


def state_name(state: Any) -> str:
    """A state the SDK gives as an enum member or, for a value it does not know, a string."""
    return str(getattr(state, "value", state))
