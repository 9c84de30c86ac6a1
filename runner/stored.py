"""``--blobs``: inputs that are already in storage, taken where they are.

``PREFIX`` names blobs in the stack's input container; ``CONTAINER/PREFIX`` those of
another container of the stack's storage account, when its first segment names one
(the pool identity must be able to read it). Nothing is uploaded and nothing of these is
ever deleted: the runner removes only what it uploaded. Each blob's path in its
container is its input's path, which names its results.
"""

from __future__ import annotations

from collections.abc import Sequence

from azure.core.exceptions import ResourceNotFoundError

from runner.clients import Clients
from runner.inputs import Input, InputError, Stored


def where(clients: Clients, given: str) -> tuple[str, str]:
    """(container, prefix) for a --blobs argument."""
    first, _, rest = given.strip("/").partition("/")
    names = clients.outputs.containers
    if first and first != names.input:
        try:
            clients.container(first).get_container_properties()
            return first, rest
        except ResourceNotFoundError:
            pass
    return names.input, given.strip("/")


def stored_inputs(clients: Clients, prefixes: Sequence[str]) -> list[Input]:
    found: list[Input] = []
    for given in prefixes:
        container, prefix = where(clients, given)
        start = f"{prefix}/" if prefix else None
        blobs = list(clients.container(container).list_blobs(name_starts_with=start))
        if not blobs:
            raise InputError(f"--blobs {given}: no blob under {container}/{prefix}")
        for blob in sorted(blobs, key=lambda b: b.name):
            md5 = bytes(blob.content_settings.content_md5 or b"") or blob.etag.encode()
            found.append(
                Input(
                    f"{container}/{blob.name}",
                    f"{container}/{blob.name}",
                    blob.size,
                    Stored(container, blob.name, md5),
                )
            )
    return found
