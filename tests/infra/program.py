"""Runs the real Pulumi program (infra/__main__.py) in-process under pulumi mocks.

The mocks answer as Azure would: each resource echoes its inputs plus the values the
provider computes (ids, names, endpoints, principal ids), so the program's outputs and
cross-resource references resolve. Nothing of ours is replaced.
"""

from __future__ import annotations

import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.mocks import MockMonitor

MAIN = Path(__file__).resolve().parents[2] / "infra" / "__main__.py"
PROJECT = "azure-batch-runner"
STACK = "dev"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
TENANT = "00000000-0000-0000-0000-0000000000aa"

_PROVIDERS = {
    "azure-native:resources:ResourceGroup": "",
    "azure-native:storage:StorageAccount": "Microsoft.Storage/storageAccounts",
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities"
    ),
    "azure-native:batch:BatchAccount": "Microsoft.Batch/batchAccounts",
}


@dataclass(frozen=True)
class Resource:
    type: str
    name: str  # the logical name
    inputs: dict[str, Any]  # wire names (camelCase), as the engine and policies see them


@dataclass
class Program:
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # The logical names of the resources registered as protected, as the engine reads
    # the registration (the mocks' MockResourceArgs carry no resource options).
    protected: set[str] = field(default_factory=set)

    def is_protected(self, resource: Resource) -> bool:
        return resource.name in self.protected

    def of_type(self, token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == f"azure-native:{token}"]

    def one(self, token: str) -> Resource:
        (found,) = self.of_type(token)
        return found

    def named(self, suffix: str) -> Resource:
        (found,) = [r for r in self.resources if r.name.endswith(suffix)]
        return found


class AzureMocks(pulumi.runtime.Mocks):
    def __init__(self, program: Program) -> None:
        self.program = program

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        self.program.resources.append(Resource(args.typ, args.name, inputs))
        state = dict(inputs)
        identity = inputs.get("identity")
        if isinstance(identity, dict) and "userAssignedIdentities" in identity:
            # A list of ids going in, a map of id -> details coming out.
            state["identity"] = identity | {
                "userAssignedIdentities": {
                    i: {"principalId": "p", "clientId": "c"}
                    for i in identity["userAssignedIdentities"]
                }
            }
        group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{inputs.get('resourceGroupName')}"
        kind = args.typ
        if kind == "azure-native:resources:ResourceGroup":
            name = inputs.get("resourceGroupName") or f"{args.name}1a2b3c4d"
            return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}", {**state, "name": name}
        if kind == "azure-native:storage:StorageAccount":
            name = f"{args.name}1a2b3c4d"
            state |= {
                "name": name,
                "primaryEndpoints": {"blob": f"https://{name}.blob.core.windows.net/"},
            }
        elif kind == "azure-native:storage:BlobContainer":
            name = inputs["containerName"]
            state["name"] = name
            account = f"{group}/providers/Microsoft.Storage/storageAccounts/{inputs['accountName']}"
            return f"{account}/blobServices/default/containers/{name}", state
        elif kind == "azure-native:managedidentity:UserAssignedIdentity":
            name = f"{args.name}-1a2b3c4d"
            state |= {"name": name, "principalId": f"principal-of-{args.name}", "clientId": "c"}
        elif kind == "azure-native:batch:BatchAccount":
            name = f"{args.name}1a2b3c4d"
            endpoint = f"{name}.{inputs.get('location')}.batch.azure.com"
            state |= {"name": name, "accountEndpoint": endpoint}
        elif kind == "azure-native:batch:Pool":
            name = inputs["poolName"]
            state["name"] = name
            account = f"{group}/providers/Microsoft.Batch/batchAccounts/{inputs['accountName']}"
            return f"{account}/pools/{name}", state
        else:
            name = f"{args.name}-id"
            state["name"] = name
        provider = _PROVIDERS.get(kind, kind.split(":", 1)[1].replace(":", "/"))
        return f"{group}/providers/{provider}/{name}", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "subscriptionId": SUBSCRIPTION,
                "tenantId": TENANT,
                "clientId": "client",
                "objectId": "object",
            }
        if args.token == "azure-native:resources:getResourceGroup":
            name = args.args["resourceGroupName"]
            return {
                "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}",
                "name": name,
                "location": "northeurope",
            }
        raise NotImplementedError(args.token)


class RecordingMonitor(MockMonitor):
    """The SDK's mock engine, which also notes which registrations ask for ``protect``:
    the option the engine enforces on ``destroy`` and replacements."""

    def __init__(self, mocks: AzureMocks) -> None:
        super().__init__(mocks)
        self.program = mocks.program

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method's name
        if request.HasField("protect") and request.protect:
            self.program.protected.add(request.name)
        return super().RegisterResource(request)


def run(config: dict[str, str] | None = None, declare: Callable[[], None] | None = None) -> Program:
    """The program's resources and resolved stack outputs for a stack with this config.

    ``declare``, if given, runs instead of infra/__main__.py (to build the component with
    settings no config produces)."""
    program = Program()
    settings.ROOT.set(None)
    mocks = AzureMocks(program)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=STACK, preview=False, monitor=RecordingMonitor(mocks)
    )
    pulumi.runtime.set_all_config({f"{PROJECT}:{k}": v for k, v in (config or {}).items()})

    @pulumi.runtime.test
    def main() -> pulumi.Output[None]:
        if declare is None:
            runpy.run_path(str(MAIN), run_name="__main__")
        else:
            declare()
        root = settings.get_root_resource()
        exported = root.outputs  # type: ignore[union-attr]
        return pulumi.Output.from_input(exported).apply(program.outputs.update)

    main()
    return program
