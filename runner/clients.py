"""The one place that turns stack outputs into Batch and Blob clients.

A local stack carries its development keys; an Azure stack has none, and the clients
authenticate with Microsoft Entra ID through DefaultAzureCredential (``az login`` on a
laptop, OIDC in CI, a managed identity on a VM). Everything after this is the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient, ContainerClient

from contract.outputs import StackOutputs


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
        )
        blobs = BlobServiceClient(
            outputs.blobEndpoint,
            credential={
                "account_name": outputs.storageAccountName,
                "account_key": outputs.local.storageAccountKey,
            },
        )
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        batch = BatchClient(outputs.batchAccountEndpoint, credential)
        blobs = BlobServiceClient(outputs.blobEndpoint, credential=credential)
    return Clients(batch=batch, blobs=blobs, outputs=outputs)


def state_name(state: Any) -> str:
    """A state the SDK gives as an enum member or, for a value it does not know, a string."""
    return str(getattr(state, "value", state))
