"""The stack outputs: the contract between the infrastructure and the runner.

The Pulumi program exports these keys and the local stack writes the same ones to
``.local/outputs.json``, so the runner reads either kind of stack the same way. A stack
that only the local stack has also carries its keys under ``local``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class OutputsError(ValueError):
    """Stack outputs that are missing or malformed; the message names the key."""


@dataclass(frozen=True)
class ContainerNames:
    application: str
    input: str
    output: str


@dataclass(frozen=True)
class LocalKeys:
    """Only on the local stack: the emulators' well-known development keys."""

    batchAccountKey: str
    storageAccountKey: str


@dataclass(frozen=True)
class StackOutputs:
    location: str
    resourceGroupName: str
    storageAccountName: str
    blobEndpoint: str
    containers: ContainerNames
    batchAccountName: str
    batchAccountEndpoint: str
    poolId: str
    poolIdentityResourceId: str | None
    local: LocalKeys | None = None

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        if self.local is None:
            del document["local"]
        return document

    @classmethod
    def from_dict(cls, document: Any, source: str = "stack outputs") -> StackOutputs:
        if not isinstance(document, dict):
            raise OutputsError(f"{source}: expected a JSON object of stack outputs")

        def text(mapping: dict[str, Any], key: str, where: str = "", optional: bool = False) -> Any:
            value = mapping.get(key)
            if value is None and optional:
                return None
            if not isinstance(value, str) or not value:
                state = "is missing" if value is None else "must be a non-empty string"
                raise OutputsError(
                    f"{source}: output '{where}{key}' {state}; run 'pulumi up' (or "
                    "'python -m runner local up') to produce complete outputs"
                )
            return value

        # Checked in the contract's order, so the first problem is the one reported.
        location = text(document, "location")
        resource_group = text(document, "resourceGroupName")
        storage_account = text(document, "storageAccountName")
        blob_endpoint = text(document, "blobEndpoint")
        containers = document.get("containers")
        if not isinstance(containers, dict):
            raise OutputsError(
                f"{source}: output 'containers' must be an object with application, input, output"
            )
        local = document.get("local")
        return cls(
            location=location,
            resourceGroupName=resource_group,
            storageAccountName=storage_account,
            blobEndpoint=blob_endpoint,
            containers=ContainerNames(
                **{
                    k: text(containers, k, "containers.")
                    for k in ("application", "input", "output")
                }
            ),
            batchAccountName=text(document, "batchAccountName"),
            batchAccountEndpoint=text(document, "batchAccountEndpoint"),
            poolId=text(document, "poolId"),
            poolIdentityResourceId=text(document, "poolIdentityResourceId", optional=True),
            local=LocalKeys(
                batchAccountKey=text(local, "batchAccountKey", "local."),
                storageAccountKey=text(local, "storageAccountKey", "local."),
            )
            if isinstance(local, dict)
            else None,
        )

    @classmethod
    def read(cls, path: Path) -> StackOutputs:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OutputsError(f"{path}: no such file") from None
        except (OSError, ValueError) as error:
            raise OutputsError(f"{path}: not readable JSON ({error})") from None
        return cls.from_dict(document, str(path))
