"""The local stack's accounts: public development keys that are valid only there.

The Batch emulator is started with this account and key (the key through its
environment, never on a command line); Azurite has its documented well-known account.
"""

BATCH_ACCOUNT = "devbatch"
BATCH_KEY = "ZGV2YmF0Y2gta2V5LWZvci10aGUtbG9jYWwtZW11bGF0b3Itb25seQ=="

STORAGE_ACCOUNT = "devstoreaccount1"
STORAGE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
"""Azurite's documented well-known development key."""

POOL_IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/batch-runner-pool"
)
"""The pool identity the emulator is told to honour, as ARM would attach it on Azure."""
