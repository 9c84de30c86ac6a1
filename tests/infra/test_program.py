"""The Pulumi program, run for real under pulumi mocks: resources, settings and outputs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from pulumi_policy import EnforcementLevel

from contract import spec
from contract.outputs import StackOutputs
from contract.rest import pool_body
from infra import config as stack_config
from infra import roles
from infra.batch_stack import BatchStack
from infra.config import DEFAULT_LOCATION, KEYS, ConfigError
from infra.policy.rules import RULES, violations

from .program import SUBSCRIPTION, Program, run

EXAMPLE = Path(__file__).resolve().parents[2] / "Pulumi.example.yaml"
TAGGED = (
    "resources:ResourceGroup",
    "storage:StorageAccount",
    "managedidentity:UserAssignedIdentity",
    "batch:BatchAccount",
    "batch:Pool",
)


@pytest.fixture(scope="module")
def default() -> Program:
    return run()


def role_id(role: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def grants(program: Program) -> dict[str, dict[str, str]]:
    return {
        r.name.removeprefix("runner-"): r.inputs
        for r in program.of_type("authorization:RoleAssignment")
    }


def test_the_storage_account_is_locked_down(default: Program):
    account = default.one("storage:StorageAccount").inputs
    assert account["kind"] == "StorageV2"
    assert account["sku"] == {"name": "Standard_LRS"}
    assert account["enableHttpsTrafficOnly"] is True
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    assert account["allowSharedKeyAccess"] is False
    assert account["defaultToOAuthAuthentication"] is True


def test_the_storage_account_and_its_containers_are_protected(default: Program):
    """The jobs' data lives in the account: ``pulumi destroy``, or a change that would
    replace the account or a container, stops until ``pulumi state unprotect``. The blob
    service settings and the lifecycle rule hold no data and stay replaceable, as does
    every other resource (the pool, the Batch account, the identities, the roles)."""
    account = default.one("storage:StorageAccount")
    containers = default.of_type("storage:BlobContainer")
    assert default.is_protected(account)
    assert len(containers) == 3
    assert all(default.is_protected(container) for container in containers)
    assert not default.is_protected(default.one("storage:BlobServiceProperties"))
    assert not default.is_protected(default.one("storage:ManagementPolicy"))
    assert default.protected == {account.name, *(c.name for c in containers)}


def test_protection_does_not_depend_on_the_settings():
    program = run({"allowSharedKey": "true", "resourceGroupName": "team-rg"})
    assert program.is_protected(program.one("storage:StorageAccount"))


def test_blobs_are_soft_deleted_and_job_data_expires(default: Program):
    service = default.one("storage:BlobServiceProperties").inputs
    assert service["blobServicesName"] == "default"
    assert service["deleteRetentionPolicy"] == {"enabled": True, "days": 7}
    assert service["containerDeleteRetentionPolicy"] == {"enabled": True, "days": 7}
    (rule,) = default.one("storage:ManagementPolicy").inputs["policy"]["rules"]
    assert rule["enabled"] is True
    assert rule["type"] == "Lifecycle"
    assert rule["definition"]["filters"] == {
        "blobTypes": ["blockBlob"],
        "prefixMatch": ["input/", "output/"],  # not the application container's scripts
    }
    assert rule["definition"]["actions"] == {
        "baseBlob": {"delete": {"daysAfterModificationGreaterThan": 7}}
    }


def test_three_private_containers(default: Program):
    containers = default.of_type("storage:BlobContainer")
    assert sorted(c.inputs["containerName"] for c in containers) == [
        "application",
        "input",
        "output",
    ]
    assert all(c.inputs["publicAccess"] == "None" for c in containers)


def test_the_pool_identity_reads_blobs_and_writes_only_the_output_container(default: Program):
    by_name = grants(default)
    pool_principal = "principal-of-runner-pool-identity"
    reads = by_name["pool-reads-blobs"]
    assert reads["principalId"] == pool_principal
    assert reads["roleDefinitionId"] == role_id("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
    assert reads["scope"].endswith(
        "/providers/Microsoft.Storage/storageAccounts/runnerstore1a2b3c4d"
    )
    writes = by_name["pool-writes-outputs"]
    assert writes["principalId"] == pool_principal
    assert writes["roleDefinitionId"] == role_id("ba92f5b4-2d11-453d-a403-e96b0029c9fe")
    assert writes["scope"].endswith(
        "/storageAccounts/runnerstore1a2b3c4d/blobServices/default/containers/output"
    )
    assert {g["principalType"] for g in by_name.values()} == {"ServicePrincipal"}
    assert len(by_name) == 3  # and the account's: nothing for a runner unless configured


def test_the_batch_account_is_keyless(default: Program):
    account = default.one("batch:BatchAccount").inputs
    identities = default.of_type("managedidentity:UserAssignedIdentity")
    ids = {
        r.name: f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{r.name}-1a2b3c4d"
        for r in identities
    }
    assert account["allowedAuthenticationModes"] == ["AAD"]
    assert account["poolAllocationMode"] == "BatchService"
    assert account["identity"]["type"] == "UserAssigned"
    (own,) = account["identity"]["userAssignedIdentities"]
    assert own.endswith(ids["runner-account-identity"])
    auto = account["autoStorage"]
    assert auto["authenticationMode"] == "BatchAccountManagedIdentity"
    assert auto["storageAccountId"].endswith("/storageAccounts/runnerstore1a2b3c4d")
    assert auto["nodeIdentityReference"]["resourceId"].endswith(ids["runner-pool-identity"])
    uses = grants(default)["account-uses-storage"]
    assert uses["principalId"] == "principal-of-runner-account-identity"
    assert uses["roleDefinitionId"] == role_id(roles.STORAGE_BLOB_DATA_CONTRIBUTOR)
    assert uses["scope"] == auto["storageAccountId"]


def test_the_pool_autoscales_from_zero_with_the_spec_image_and_identity(default: Program):
    pool = default.one("batch:Pool").inputs
    assert pool["poolName"] == "runner-pool"
    assert pool["vmSize"] == "Standard_D2s_v5"
    vm = pool["deploymentConfiguration"]["virtualMachineConfiguration"]
    assert vm["imageReference"] == {
        "publisher": "canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    }
    assert vm["nodeAgentSkuId"] == "batch.node.ubuntu 24.04"
    assert pool["identity"]["type"] == "UserAssigned"
    assert pool["identity"]["userAssignedIdentities"] == [default.outputs["poolIdentityResourceId"]]
    assert pool["taskSlotsPerNode"] == 2
    assert pool["scaleSettings"] == {
        "autoScale": {
            "formula": "$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 5);\n"
            "$pending = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : "
            "max(0, $PendingTasks.GetSample(1), "
            "max($PendingTasks.GetSample(TimeInterval_Minute * 5)));\n"
            "$needed = ceil($pending / 2);\n"
            "$TargetDedicatedNodes = min(4, $needed);\n"
            "$TargetLowPriorityNodes = 0;\n"
            "$NodeDeallocationOption = taskcompletion;",
            "evaluationInterval": "PT5M",
        }
    }
    start = pool["startTask"]
    assert start["commandLine"] == spec.START_TASK_COMMAND
    assert start["userIdentity"] == {"autoUser": {"scope": "Pool", "elevationLevel": "NonAdmin"}}
    assert start["waitForSuccess"] is True
    assert start["maxTaskRetryCount"] == 1


def test_every_resource_that_takes_tags_has_them(default: Program):
    tagged = [r for r in default.resources if r.type.removeprefix("azure-native:") in TAGGED]
    assert len(tagged) == 6  # group, account, two identities, Batch account, pool
    for resource in tagged:
        assert resource.inputs["tags"] == {"project": "azure-batch-runner", "stack": "dev"}


def test_the_outputs_are_the_runners_contract(default: Program):
    contract = [f.name for f in dataclasses.fields(StackOutputs) if f.name != "local"]
    assert list(default.outputs) == contract
    outputs = StackOutputs.from_dict(default.outputs)
    assert outputs.containers.output == "output"
    assert outputs.blobEndpoint == "https://runnerstore1a2b3c4d.blob.core.windows.net/"
    assert outputs.batchAccountEndpoint == (
        "https://runnerbatch1a2b3c4d.westeurope.batch.azure.com"
    )
    assert outputs.poolId == "runner-pool"
    assert outputs.location == "westeurope"
    assert outputs.local is None
    assert outputs.poolIdentityResourceId.startswith(  # type: ignore[union-attr]
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/"
    )


def test_the_local_stack_and_azure_render_the_same_pool(default: Program):
    azure = default.one("batch:Pool").inputs
    local = pool_body(spec.default_spec())
    assert azure["startTask"]["commandLine"] == local["startTask"]["commandLine"]
    assert azure["startTask"].get("resourceFiles", []) == local["startTask"].get(
        "resourceFiles", []
    )
    assert azure["taskSlotsPerNode"] == local["taskSlotsPerNode"]
    assert azure["vmSize"] == local["vmSize"]
    assert azure["startTask"]["userIdentity"] == {
        "autoUser": {"scope": "Pool", "elevationLevel": "NonAdmin"}
    }
    assert local["startTask"]["userIdentity"] == {
        "autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}
    }
    assert azure["scaleSettings"]["autoScale"]["formula"] == local["autoScaleFormula"]
    assert (
        azure["scaleSettings"]["autoScale"]["evaluationInterval"]
        == local["autoScaleEvaluationInterval"]
    )


def test_a_start_task_that_needs_root_runs_as_the_admin_auto_user():
    """Kept for a start task that installs system packages: both renderings follow it."""
    pool = dataclasses.replace(spec.Pool(), start_task=spec.StartTask(elevated=True))

    def declare() -> None:
        BatchStack("runner", dataclasses.replace(stack_config.load(), spec=spec.Spec(pool=pool)))

    azure = run(declare=declare).one("batch:Pool").inputs["startTask"]["userIdentity"]
    local = pool_body(spec.Spec(pool=pool))["startTask"]["userIdentity"]
    assert azure == {"autoUser": {"scope": "Pool", "elevationLevel": "Admin"}}
    assert local == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}


def test_start_task_resource_files_render_alike():
    """No config sets them yet; the component and the local stack render them the same."""
    start = spec.StartTask(resource_files=("setup.sh", "tools/"))
    pool = dataclasses.replace(spec.Pool(), start_task=start)

    def declare() -> None:
        BatchStack("runner", dataclasses.replace(stack_config.load(), spec=spec.Spec(pool=pool)))

    program = run(declare=declare)
    azure = program.one("batch:Pool").inputs["startTask"]["resourceFiles"]
    identity = program.one("batch:Pool").inputs["identity"]["userAssignedIdentities"][0]
    local = pool_body(spec.Spec(pool=pool), identity=identity)["startTask"]["resourceFiles"]
    assert (
        azure
        == local
        == [
            {
                "autoStorageContainerName": "application",
                "blobPrefix": name,
                "identityReference": {"resourceId": identity},
            }
            for name in ("setup.sh", "tools/")
        ]
    )


# --- config ----------------------------------------------------------------------------


def test_vm_size_slots_and_the_node_bound_come_from_config():
    program = run({"vmSize": "Standard_D4s_v5", "taskSlotsPerNode": "4", "maxDedicatedNodes": "10"})
    pool = program.one("batch:Pool").inputs
    assert pool["vmSize"] == "Standard_D4s_v5"
    assert pool["taskSlotsPerNode"] == 4
    formula = pool["scaleSettings"]["autoScale"]["formula"]
    assert "$needed = ceil($pending / 4);" in formula
    assert "$TargetDedicatedNodes = min(10, $needed);" in formula


def test_spot_nodes_take_the_overflow():
    formula = (
        run({"maxSpotNodes": "8"}).one("batch:Pool").inputs["scaleSettings"]["autoScale"]["formula"]
    )
    assert "$TargetLowPriorityNodes = min(8, max(0, $needed - $TargetDedicatedNodes));" in formula


def test_a_fixed_size_pool():
    program = run({"autoscale": "false", "dedicatedNodes": "2", "spotNodes": "1"})
    scale = program.one("batch:Pool").inputs["scaleSettings"]
    assert scale == {
        "fixedScale": {
            "targetDedicatedNodes": 2,
            "targetLowPriorityNodes": 1,
            "resizeTimeout": "PT15M",  # the provider's default
        }
    }


def test_shared_key_is_opt_in():
    program = run({"allowSharedKey": "true"})
    assert program.one("storage:StorageAccount").inputs["allowSharedKeyAccess"] is True
    assert program.one("batch:BatchAccount").inputs["allowedAuthenticationModes"] == [
        "AAD",
        "SharedKey",
    ]


def test_an_existing_resource_group_is_used_not_created():
    program = run({"resourceGroupName": "team-rg", "location": "swedencentral"})
    assert program.of_type("resources:ResourceGroup") == []
    assert program.outputs["resourceGroupName"] == "team-rg"
    assert program.outputs["location"] == "swedencentral"
    for kind in ("storage:StorageAccount", "batch:BatchAccount", "batch:Pool"):
        assert program.one(kind).inputs["resourceGroupName"] == "team-rg"


def test_retention_days_come_from_config():
    program = run({"blobRetentionDays": "30", "softDeleteDays": "14"})
    (rule,) = program.one("storage:ManagementPolicy").inputs["policy"]["rules"]
    delete = rule["definition"]["actions"]["baseBlob"]["delete"]
    assert delete == {"daysAfterModificationGreaterThan": 30}
    service = program.one("storage:BlobServiceProperties").inputs
    assert service["deleteRetentionPolicy"]["days"] == 14


def test_a_runner_principal_may_submit_jobs_and_use_the_blobs():
    principal = "11111111-2222-3333-4444-555555555555"
    program = run({"runnerPrincipalId": principal, "runnerPrincipalType": "User"})
    by_name = grants(program)
    submits = by_name["runner-submits-jobs"]
    assert submits["principalId"] == principal
    assert submits["principalType"] == "User"
    assert submits["roleDefinitionId"] == role_id("6aaa78f1-f7de-44ca-8722-c64a23943cae")
    assert submits["scope"].endswith("/providers/Microsoft.Batch/batchAccounts/runnerbatch1a2b3c4d")
    blobs = by_name["runner-uses-blobs"]
    assert blobs["roleDefinitionId"] == role_id("ba92f5b4-2d11-453d-a403-e96b0029c9fe")
    assert blobs["scope"].endswith(
        "/providers/Microsoft.Storage/storageAccounts/runnerstore1a2b3c4d"
    )


@pytest.mark.parametrize(
    ("vm_size", "slots"),
    [
        ("Standard_D2s_v5", 8),  # 4 x 2 vCPUs
        ("Standard_D16s_v5", 64),  # 4 x 16 vCPUs
        ("Standard_E8-4s_v5", 16),  # constrained to 4 of its 8 vCPUs: 4 x 4
        ("Standard_NC24ads_A100_v4", 256),  # vCPUs not known here: only the 256 bound
    ],
)
def test_task_slots_up_to_the_batch_limit_of_the_vm_size(vm_size: str, slots: int):
    program = run({"vmSize": vm_size, "taskSlotsPerNode": str(slots)})
    pool = program.one("batch:Pool").inputs
    assert (pool["vmSize"], pool["taskSlotsPerNode"]) == (vm_size, slots)
    assert f"$needed = ceil($pending / {slots});" in pool["scaleSettings"]["autoScale"]["formula"]


@pytest.mark.parametrize(
    ("vm_size", "slots", "message"),
    [
        (
            "Standard_D2s_v5",
            9,
            "config 'taskSlotsPerNode' is 9, but Batch allows at most 4 x the vCPUs of "
            "Standard_D2s_v5 (2 vCPUs): 8",
        ),
        (
            "Standard_D16s_v5",
            65,
            "config 'taskSlotsPerNode' is 65, but Batch allows at most 4 x the vCPUs of "
            "Standard_D16s_v5 (16 vCPUs): 64",
        ),
        (
            "Standard_E8-4s_v5",
            17,
            "config 'taskSlotsPerNode' is 17, but Batch allows at most 4 x the vCPUs of "
            "Standard_E8-4s_v5 (4 vCPUs): 16",
        ),
        (
            "Standard_NC24ads_A100_v4",
            257,
            "config 'taskSlotsPerNode' must be between 1 and 256, not 257",
        ),
    ],
)
def test_task_slots_above_the_batch_limit_are_refused(vm_size: str, slots: int, message: str):
    with pytest.raises(ConfigError) as refused:
        run({"vmSize": vm_size, "taskSlotsPerNode": str(slots)})
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"vmSize": "big"}, "vmSize"),
        ({"taskSlotsPerNode": "0"}, "taskSlotsPerNode"),
        ({"taskSlotsPerNode": "two"}, "taskSlotsPerNode"),
        ({"autoscale": "maybe"}, "autoscale"),
        ({"maxDedicatedNodes": "0"}, "maxDedicatedNodes"),
        ({"blobRetentionDays": "-1"}, "blobRetentionDays"),
        ({"runnerPrincipalId": "alice@example.com"}, "runnerPrincipalId"),
        ({"runnerPrincipalType": "Robot"}, "runnerPrincipalType"),
    ],
)
def test_bad_config_names_the_key(config: dict[str, str], key: str):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        run(config)


def test_the_example_stack_config_sets_every_setting_to_its_default(default: Program):
    """Pulumi.example.yaml documents the settings: it names every key the program reads,
    and the values it shows are the defaults (a stack made from it is the default stack)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    config = {
        key.removeprefix("azure-batch-runner:"): value
        for key, value in yaml.safe_load(text)["config"].items()
    }
    assert config.pop("azure-native:location") == DEFAULT_LOCATION
    commented = set(re.findall(r"#\s*azure-batch-runner:(\w+):", text))
    assert set(config) | commented | {"location"} == set(KEYS)

    def by_name(program: Program) -> dict[str, dict[str, object]]:
        return {f"{r.type} {r.name}": r.inputs for r in program.resources}

    assert by_name(run(config)) == by_name(default)


# --- the policy pack on the program's own resources --------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"autoscale": "false", "dedicatedNodes": "3"},
        {"maxSpotNodes": "8", "maxDedicatedNodes": "10"},
        {"resourceGroupName": "team-rg"},
        {"runnerPrincipalId": "11111111-2222-3333-4444-555555555555"},
    ],
)
def test_the_stack_passes_every_policy(config: dict[str, str]):
    program = run(config)
    assert {r.name: violations(r.type, r.inputs) for r in program.resources} == {
        r.name: [] for r in program.resources
    }


def test_shared_key_on_is_reported_by_the_advisory_rules_only():
    program = run({"allowSharedKey": "true"})
    found = {
        f"{r.name}: {v.split(':')[0]}"
        for r in program.resources
        for v in violations(r.type, r.inputs)
    }
    assert found == {
        "runnerstore: storage-shared-key-off",
        "runnerbatch: batch-account-no-shared-key",
    }
    advisory = {rule.name for rule in RULES if rule.enforcement_level == EnforcementLevel.ADVISORY}
    assert {f.split(": ")[1] for f in found} <= advisory
