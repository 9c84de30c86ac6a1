"""Azure built-in role definition ids the stack assigns.

The ids are fixed GUIDs, the same in every tenant; they are listed in Microsoft's
"Azure built-in roles" reference (learn.microsoft.com/azure/role-based-access-control/
built-in-roles, Storage and Compute sections).
"""

from __future__ import annotations

STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
"""Read and list containers and blobs: the pool's identity, on the whole account."""

STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
"""Read, write and delete blobs (and get a user delegation key)."""

AZURE_BATCH_DATA_CONTRIBUTOR = "6aaa78f1-f7de-44ca-8722-c64a23943cae"
"""Manage pools and jobs but not the account: what the runner's principal needs."""


def definition_id(subscription_id: str, role: str) -> str:
    """The role's definition as ARM expects it in a role assignment."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )
