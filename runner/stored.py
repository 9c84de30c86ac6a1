"""``--blobs``: inputs that are already in storage, taken where they are.

``CONTAINER/PREFIX`` names the blobs under PREFIX of a container of the stack's storage
account, when its first segment names one (the pool identity must be able to read it):
the input container's too, so a job's inputs are named as its table names them
(``input/keep1/a.txt``). Otherwise ``PREFIX`` names blobs of the stack's input
container (``keep1``), and so does ``CONTAINER/PREFIX`` when that container has nothing
under PREFIX. Nothing is uploaded and nothing of these is ever deleted: the runner
removes only what it uploaded. Each input is known by ``<container>/<blob path>``, which
names its results, its row of the table, and the ``"input"`` of its result documents.
"""

from __future__ import annotations

from collections.abc import Sequence

from azure.core.exceptions import ResourceNotFoundError

from runner.clients import Clients
from runner.inputs import Input, InputError, Stored


def where(clients: Clients, given: str) -> list[tuple[str, str]]:
    """The (container, prefix) pairs a --blobs argument may mean, the likelier first:
    its first segment as a container of the account (if it is one; for the input
    container, with a prefix), then the whole as a prefix of the input container."""
    whole = given.strip("/")
    first, _, rest = whole.partition("/")
    names = clients.outputs.containers
    meanings = [(names.input, whole)]
    if first == names.input:
        if rest:  # never the whole input container: every job stages its inputs there
            meanings.insert(0, (first, rest))
    elif first:
        try:
            clients.container(first).get_container_properties()
            meanings.insert(0, (first, rest))
        except ResourceNotFoundError:
            pass
    return meanings


def stored_inputs(clients: Clients, prefixes: Sequence[str]) -> list[Input]:
    found: list[Input] = []
    for given in prefixes:
        tried = []
        for container, prefix in where(clients, given):
            start = f"{prefix}/" if prefix else None
            blobs = list(clients.container(container).list_blobs(name_starts_with=start))
            if blobs:
                break
            tried.append(f"{container}/{prefix}".rstrip("/"))
        else:
            raise InputError(f"--blobs {given}: no blob under {' or '.join(tried)}")
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
