"""The policy pack (infra/policy): each rule on good and bad resources, its wrappers, the pack.

Resources are their input properties as the engine hands them to a policy pack: wire names
(camelCase), enums as strings. The good ones are what the program declares; each bad one
changes one thing.
"""

from __future__ import annotations

import copy
import importlib
import json
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml  # type: ignore[import-untyped]
from google.protobuf import json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime import proto, settings
from pulumi_azure_native import batch, managedidentity, resources, storage
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from contract import spec
from infra.policy import rules
from infra.policy.rules import (
    BATCH_ACCOUNT,
    BLOB_CONTAINER,
    POOL,
    RESOURCE_GROUP,
    STORAGE_ACCOUNT,
    USER_ASSIGNED_IDENTITY,
)

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "infra" / "policy"

TAGS = {"project": "azure-batch-runner", "stack": "dev"}
GROUP_ID = "/subscriptions/0000/resourceGroups/runner-rg"
POOL_IDENTITY_ID = (
    f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool-identity"
)
ACCOUNT_IDENTITY_ID = (
    f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/account-identity"
)
STORAGE_ID = f"{GROUP_ID}/providers/Microsoft.Storage/storageAccounts/runnersa1a2b3c4d"

# The formula the brief describes; the program's own comes from contract.spec.
FORMULA = """\
$pending = max(0, $PendingTasks.GetSample(1));
$slots = 2;
$TargetDedicatedNodes = min(4, ($pending + $slots - 1) / $slots);
$TargetLowPriorityNodes = min(0, max(0, ($pending + $slots - 1) / $slots - $TargetDedicatedNodes));
$NodeDeallocationOption = taskcompletion;
"""

GOOD: dict[str, dict[str, Any]] = {
    RESOURCE_GROUP: {"location": "northeurope", "tags": TAGS},
    STORAGE_ACCOUNT: {
        "resourceGroupName": "runner-rg",
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "enableHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": False,
        "allowSharedKeyAccess": False,
        "allowCrossTenantReplication": False,
        "tags": TAGS,
    },
    BLOB_CONTAINER: {
        "accountName": "runnersa1a2b3c4d",
        "resourceGroupName": "runner-rg",
        "containerName": "input",
        "publicAccess": "None",
    },
    USER_ASSIGNED_IDENTITY: {"resourceGroupName": "runner-rg", "tags": TAGS},
    BATCH_ACCOUNT: {
        "resourceGroupName": "runner-rg",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": [ACCOUNT_IDENTITY_ID]},
        "autoStorage": {
            "storageAccountId": STORAGE_ID,
            "authenticationMode": "BatchAccountManagedIdentity",
            "nodeIdentityReference": {"resourceId": POOL_IDENTITY_ID},
        },
        "allowedAuthenticationModes": ["AAD"],
        "poolAllocationMode": "BatchService",
        "tags": TAGS,
    },
    POOL: {
        "accountName": "runnerba1a2b3c4d",
        "resourceGroupName": "runner-rg",
        "poolName": "runner-pool",
        "vmSize": "Standard_D2s_v5",
        "taskSlotsPerNode": 2,
        "identity": {"type": "UserAssigned", "userAssignedIdentities": [POOL_IDENTITY_ID]},
        "scaleSettings": {
            "autoScale": {
                "formula": spec.autoscale_formula(spec.Pool()),
                "evaluationInterval": "PT5M",
            }
        },
        "tags": TAGS,
    },
}

DELETE = object()


def changed(resource_type: str, path: str, value: Any) -> dict[str, Any]:
    """The good resource of this type with the dotted ``path`` set to ``value`` (or deleted)."""
    props = copy.deepcopy(GOOD[resource_type])
    *parents, last = path.split(".")
    node = props
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return props


def formula(text: str) -> dict[str, Any]:
    return changed(POOL, "scaleSettings.autoScale.formula", text)


def fixed(dedicated: Any, low_priority: Any = None) -> dict[str, Any]:
    scale = {"targetDedicatedNodes": dedicated, "resizeTimeout": "PT15M"}
    if low_priority is not None:
        scale["targetLowPriorityNodes"] = low_priority
    return changed(POOL, "scaleSettings", {"fixedScale": scale})


# The good resources pass everything.


@pytest.mark.parametrize("resource_type", sorted(GOOD))
def test_the_good_resources_pass_every_rule(resource_type: str) -> None:
    assert rules.violations(resource_type, GOOD[resource_type]) == []


@pytest.mark.parametrize(
    "resource_type", ["azure-native:authorization:RoleAssignment", "pulumi:pulumi:Stack"]
)
def test_other_types_are_not_judged(resource_type: str) -> None:
    assert rules.violations(resource_type, {}) == []


# Variants that still comply.

PASSING: list[tuple[str, rules.Check, str, dict[str, Any]]] = [
    ("TLS 1.3", rules.check_storage_https_tls, STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "minimumTlsVersion", "TLS1_3")),
    ("container without publicAccess", rules.check_storage_no_public_blobs, BLOB_CONTAINER,
     changed(BLOB_CONTAINER, "publicAccess", DELETE)),
    ("the brief's formula", rules.check_pool_bounded_nodes, POOL, formula(FORMULA)),
    ("bound as the second argument", rules.check_pool_bounded_nodes, POOL,
     formula("$TargetDedicatedNodes = min($PendingTasks.GetSample(1), 4);")),
    ("bound through a constant", rules.check_pool_bounded_nodes, POOL,
     formula("$max = 4; $TargetDedicatedNodes = min($max, $PendingTasks.GetSample(1));")),
    ("a literal target", rules.check_pool_bounded_nodes, POOL,
     formula("$TargetDedicatedNodes = 3; $TargetLowPriorityNodes = 2;")),
    ("low priority never assigned (stays 0)", rules.check_pool_bounded_nodes, POOL,
     formula("$TargetDedicatedNodes = min(20, $PendingTasks.GetSample(1));")),
    ("capped last, after an uncapped estimate", rules.check_pool_bounded_nodes, POOL,
     formula("$TargetDedicatedNodes = $PendingTasks.GetSample(1);"
             "$TargetDedicatedNodes = min(4, $TargetDedicatedNodes);")),
    ("caps adding up to exactly maxNodes", rules.check_pool_bounded_nodes, POOL,
     formula("$TargetDedicatedNodes = min(12, $x); $TargetLowPriorityNodes = min(8, $y);")),
    ("fixed scale", rules.check_pool_bounded_nodes, POOL, fixed(1, 0)),
    ("fixed scale at maxNodes, numbers as the engine's doubles",
     rules.check_pool_bounded_nodes, POOL, fixed(15.0, 5.0)),
    ("fixed scale, dedicated only", rules.check_pool_bounded_nodes, POOL, fixed(2)),
    ("identities as the output's map", rules.check_pool_managed_identity, POOL,
     changed(POOL, "identity.userAssignedIdentities", {POOL_IDENTITY_ID: {}})),
    ("shared key allowed too (the config says so)", rules.check_batch_account_keyless,
     BATCH_ACCOUNT, changed(BATCH_ACCOUNT, "allowedAuthenticationModes", ["SharedKey", "AAD"])),
    ("no auto-storage, so no storage keys", rules.check_batch_account_keyless, BATCH_ACCOUNT,
     changed(BATCH_ACCOUNT, "autoStorage", DELETE)),
    ("extra tags", rules.check_required_tags, POOL,
     changed(POOL, "tags", {**TAGS, "owner": "data-team"})),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "resource_type", "props"),
    [pytest.param(check, kind, props, id=name) for name, check, kind, props in PASSING],
)
def test_compliant_variants_pass(
    check: rules.Check, resource_type: str, props: dict[str, Any]
) -> None:
    assert check(resource_type, props) == []


# Each bad variant is reported by its rule, with a message naming what is wrong.

FAILING: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("storage-https-tls", "http allowed", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "enableHttpsTrafficOnly", False), "enableHttpsTrafficOnly"),
    ("storage-https-tls", "https-only unset", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "enableHttpsTrafficOnly", DELETE), "enableHttpsTrafficOnly"),
    ("storage-https-tls", "TLS 1.0", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "minimumTlsVersion", "TLS1_0"), "minimumTlsVersion"),
    ("storage-https-tls", "TLS 1.1", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "minimumTlsVersion", "TLS1_1"), "minimumTlsVersion"),
    ("storage-https-tls", "TLS unset (Azure's default is 1.0)", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "minimumTlsVersion", DELETE), "minimumTlsVersion"),
    ("storage-no-public-blobs", "public blobs allowed", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "allowBlobPublicAccess", True), "allowBlobPublicAccess"),
    ("storage-no-public-blobs", "public blobs not forbidden explicitly", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "allowBlobPublicAccess", DELETE), "allowBlobPublicAccess"),
    ("storage-no-public-blobs", "public blobs in a container", BLOB_CONTAINER,
     changed(BLOB_CONTAINER, "publicAccess", "Blob"), "publicAccess"),
    ("storage-no-public-blobs", "a public container", BLOB_CONTAINER,
     changed(BLOB_CONTAINER, "publicAccess", "Container"), "publicAccess"),
    ("storage-shared-key-off", "account keys allowed", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "allowSharedKeyAccess", True), "allowSharedKeyAccess"),
    ("storage-shared-key-off", "account keys not refused", STORAGE_ACCOUNT,
     changed(STORAGE_ACCOUNT, "allowSharedKeyAccess", DELETE), "allowSharedKeyAccess"),
    ("pool-bounded-nodes", "no scale settings", POOL,
     changed(POOL, "scaleSettings", DELETE), "scaleSettings"),
    ("pool-bounded-nodes", "empty scale settings", POOL,
     changed(POOL, "scaleSettings", {}), "scaleSettings"),
    ("pool-bounded-nodes", "no formula", POOL,
     changed(POOL, "scaleSettings.autoScale.formula", DELETE), "formula"),
    ("pool-bounded-nodes", "no cap at all", POOL,
     formula("$TargetDedicatedNodes = max(0, $PendingTasks.GetSample(1));"),
     "$TargetDedicatedNodes unbounded"),
    ("pool-bounded-nodes", "dedicated never assigned", POOL,
     formula("$TargetLowPriorityNodes = min(2, $PendingTasks.GetSample(1));"),
     "never assigns $TargetDedicatedNodes"),
    ("pool-bounded-nodes", "low priority alone above maxNodes", POOL,
     formula("$TargetLowPriorityNodes = min(30, $x);"), "= 30 nodes"),
    ("pool-bounded-nodes", "a cap above maxNodes", POOL,
     formula("$TargetDedicatedNodes = min(21, $PendingTasks.GetSample(1));"), "21 dedicated"),
    ("pool-bounded-nodes", "caps adding up to more than maxNodes", POOL,
     formula("$TargetDedicatedNodes = min(4, $x); $TargetLowPriorityNodes = min(17, $y);"),
     "= 21 nodes"),
    ("pool-bounded-nodes", "low priority unbounded", POOL,
     formula("$TargetDedicatedNodes = min(4, $x); $TargetLowPriorityNodes = $PendingTasks;"),
     "$TargetLowPriorityNodes unbounded"),
    ("pool-bounded-nodes", "a cap then an uncapped reassignment", POOL,
     formula("$TargetDedicatedNodes = min(4, $x); $TargetDedicatedNodes = $x * 10;"),
     "$TargetDedicatedNodes unbounded"),
    ("pool-bounded-nodes", "min() inside a sum", POOL,
     formula("$TargetDedicatedNodes = min(4, $x) + $y;"), "$TargetDedicatedNodes unbounded"),
    ("pool-bounded-nodes", "min() inside max()", POOL,
     formula("$TargetDedicatedNodes = max(1, min(4, $x));"), "$TargetDedicatedNodes unbounded"),
    ("pool-bounded-nodes", "a ternary", POOL,
     formula("$TargetDedicatedNodes = $x > 0 ? min(4, $x) : 100;"),
     "$TargetDedicatedNodes unbounded"),
    ("pool-bounded-nodes", "a constant reassigned before use", POOL,
     formula("$max = 4; $max = $PendingTasks; $TargetDedicatedNodes = min($max, $x);"),
     "$TargetDedicatedNodes unbounded"),
    ("pool-bounded-nodes", "a negative bound is no bound", POOL,
     formula("$TargetDedicatedNodes = min(-1, $x) * -1;"), "$TargetDedicatedNodes unbounded"),
    ("pool-bounded-nodes", "a formula that does not parse", POOL,
     formula("$TargetDedicatedNodes = min(4, $x;"), "does not parse: Expected ',' or ')'"),
    ("pool-bounded-nodes", "an alias does not hide a target", POOL,
     formula("$TargetDedicatedNodes = min(4, $x); $TargetLowPriority = 30;"), "= 34 nodes"),
    ("pool-bounded-nodes", "the wrong case does not hide a target", POOL,
     formula("$TargetDedicatedNodes = min(4, $x); $targetlowprioritynodes = 500;"), "= 504"),
    ("pool-bounded-nodes", "a fixed pool above maxNodes", POOL, fixed(15, 6), "= 21 nodes"),
    ("pool-bounded-nodes", "a fixed count that is not a number", POOL, fixed("4"),
     "targetDedicatedNodes"),
    ("pool-managed-identity", "no identity", POOL,
     changed(POOL, "identity", DELETE), "identity"),
    ("pool-managed-identity", "identity type None", POOL,
     changed(POOL, "identity.type", "None"), "identity.type"),
    ("pool-managed-identity", "no identities listed", POOL,
     changed(POOL, "identity.userAssignedIdentities", []), "userAssignedIdentities"),
    ("pool-managed-identity", "identities missing", POOL,
     changed(POOL, "identity.userAssignedIdentities", DELETE), "userAssignedIdentities"),
    ("batch-account-keyless", "auto-storage with keys", BATCH_ACCOUNT,
     changed(BATCH_ACCOUNT, "autoStorage.authenticationMode", "StorageKeys"),
     "authenticationMode"),
    ("batch-account-keyless", "auto-storage mode unset (StorageKeys)", BATCH_ACCOUNT,
     changed(BATCH_ACCOUNT, "autoStorage.authenticationMode", DELETE), "StorageKeys"),
    ("batch-account-keyless", "shared key only", BATCH_ACCOUNT,
     changed(BATCH_ACCOUNT, "allowedAuthenticationModes", ["SharedKey"]), "'AAD'"),
    ("batch-account-keyless", "modes unset", BATCH_ACCOUNT,
     changed(BATCH_ACCOUNT, "allowedAuthenticationModes", DELETE), "'AAD'"),
    ("batch-account-no-shared-key", "shared key allowed", BATCH_ACCOUNT,
     changed(BATCH_ACCOUNT, "allowedAuthenticationModes", ["AAD", "SharedKey"]), "SharedKey"),
    ("batch-account-no-shared-key", "modes unset (all allowed)", BATCH_ACCOUNT,
     changed(BATCH_ACCOUNT, "allowedAuthenticationModes", DELETE), "SharedKey"),
    *[
        (
            "required-tags", f"{kind.rsplit(':', 1)[1]}: {what}", kind,
            changed(kind, "tags", tags), "tags",
        )
        for kind in sorted(rules.TAGGED_TYPES)
        for what, tags in [
            ("no tags", DELETE),
            ("no stack", {"project": "azure-batch-runner"}),
            ("empty project", {"project": "", "stack": "dev"}),
            ("blank stack", {"project": "azure-batch-runner", "stack": "  "}),
            ("project not a string", {"project": None, "stack": "dev"}),
        ]
    ],
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "resource_type", "props", "fragment"),
    [pytest.param(rule, kind, p, f, id=f"{rule}: {name}") for rule, name, kind, p, f in FAILING],
)
def test_bad_variants_are_reported_by_their_rule(
    rule: str, resource_type: str, props: dict[str, Any], fragment: str
) -> None:
    check = dict(rules.ALL_CHECKS)[rule]
    found = check(resource_type, props)
    assert found, f"{rule} let it through"
    assert any(fragment in message for message in found), found
    assert any(v.startswith(f"{rule}: ") for v in rules.violations(resource_type, props))


def test_every_rule_has_a_failing_case() -> None:
    assert {rule for rule, *_ in FAILING} == {name for name, _ in rules.ALL_CHECKS}


# The formula parser on its own.


@pytest.mark.parametrize(
    ("text", "caps"),
    [
        (FORMULA, {"$TargetDedicatedNodes": 4, "$TargetLowPriorityNodes": 0}),
        (
            spec.autoscale_formula(spec.Pool()),
            {"$TargetDedicatedNodes": 4, "$TargetLowPriorityNodes": 0},
        ),
        (
            spec.autoscale_formula(spec.Pool(max_dedicated_nodes=10, max_spot_nodes=8)),
            {"$TargetDedicatedNodes": 10, "$TargetLowPriorityNodes": 8},
        ),
        ("$TargetDedicatedNodes=min( 3 ,$x)", {"$TargetDedicatedNodes": 3}),
        ("$TargetDedicatedNodes = min(8, 5, $x);", {"$TargetDedicatedNodes": 5}),
        ("$TargetDedicatedNodes = MIN(2, $x);", {"$TargetDedicatedNodes": 2}),
        ("$TargetDedicatedNodes = min(4, $x;", {"$TargetDedicatedNodes": None}),
        ("$TargetDedicatedNodes == 4;", {"$TargetDedicatedNodes": None}),
        (
            "// at most 3\n$TargetDedicated = min(3, $x); // the alias\n",
            {"$TargetDedicatedNodes": 3},
        ),
        ("$TargetDedicatedNodes = min(2, $x); $TargetDedicated = 9;", {"$TargetDedicatedNodes": 2}),
        ("$TargetDedicatedNodes = min(4.5, $x);", {"$TargetDedicatedNodes": None}),
        ("$NodeDeallocationOption = taskcompletion;", {}),
        ("", {}),
    ],
)
def test_formula_caps(text: str, caps: dict[str, int | None]) -> None:
    assert rules.formula_caps(text) == caps


# maxNodes, the pool rule's config.


def test_max_nodes_defaults_to_20() -> None:
    assert rules.max_nodes({}) == rules.DEFAULT_MAX_NODES == 20


@pytest.mark.parametrize(
    ("config", "props", "passes"),
    [
        ({"maxNodes": 10}, fixed(10, 0), True),
        ({"maxNodes": 10}, fixed(8, 3), False),
        ({"maxNodes": 10.0}, fixed(11), False),  # config numbers arrive as doubles
        ({"maxNodes": 3}, GOOD[POOL], False),  # the program's formula caps at 4
        ({"maxNodes": 4}, GOOD[POOL], True),
        ({"maxNodes": 0}, fixed(0, 0), True),
        ({"maxNodes": 50}, fixed(30, 20), True),
    ],
)
def test_max_nodes_is_configurable(
    config: dict[str, Any], props: dict[str, Any], passes: bool
) -> None:
    assert (rules.check_pool_bounded_nodes(POOL, props, config) == []) is passes


@pytest.mark.parametrize("bad", [-1, 2.5, "20", True, None])
def test_a_bad_max_nodes_is_an_error_not_a_pass(bad: Any) -> None:
    with pytest.raises(ValueError, match="maxNodes"):
        rules.check_pool_bounded_nodes(POOL, GOOD[POOL], {"maxNodes": bad})


# The policies: the SDK's objects around the checks.


def engine_props(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """Props as the SDK hands them over: deserialized from a Struct, behind its proxies."""
    struct = struct_pb2.Struct()
    struct.update(props)
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(struct)))


def validation_args(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None
) -> ResourceValidationArgs:
    options = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )
    urn = f"urn:pulumi:dev::azure-batch-runner::{resource_type}::it"
    return ResourceValidationArgs(resource_type, props, urn, "it", options, None, config)


def run_policy(
    name: str, resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None
) -> list[tuple[str, str | None]]:
    (policy,) = [p for p in rules.policies() if p.name == name]
    assert isinstance(policy, ResourceValidationPolicy)
    reported: list[tuple[str, str | None]] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    result = policy.validate(
        validation_args(resource_type, engine_props(props), config), report_violation
    )
    assert result is None  # synchronous
    return reported


def test_one_policy_per_rule_in_order() -> None:
    made = rules.policies()
    assert [p.name for p in made] == [name for name, _ in rules.ALL_CHECKS]
    assert len({p.name for p in made}) == len(made)
    assert all(isinstance(p, ResourceValidationPolicy) and p.has_validation() for p in made)
    assert all(p.description for p in made)


def test_only_what_config_may_change_is_advisory() -> None:
    levels = {p.name: p.enforcement_level for p in rules.policies()}
    advisory = {name for name, level in levels.items() if level is EnforcementLevel.ADVISORY}
    assert advisory == {"storage-shared-key-off", "batch-account-no-shared-key"}
    assert all(
        level is EnforcementLevel.MANDATORY
        for name, level in levels.items()
        if name not in advisory
    )


def test_max_nodes_is_in_the_config_schema() -> None:
    (pool,) = [p for p in rules.policies() if p.name == "pool-bounded-nodes"]
    assert pool.config_schema is not None
    assert pool.config_schema.properties == {
        "maxNodes": {"type": "integer", "minimum": 0, "default": 20}
    }


@pytest.mark.parametrize(
    ("name", "resource_type", "bad"),
    [
        ("storage-https-tls", STORAGE_ACCOUNT,
         changed(STORAGE_ACCOUNT, "minimumTlsVersion", "TLS1_0")),
        ("storage-no-public-blobs", BLOB_CONTAINER,
         changed(BLOB_CONTAINER, "publicAccess", "Blob")),
        ("storage-shared-key-off", STORAGE_ACCOUNT,
         changed(STORAGE_ACCOUNT, "allowSharedKeyAccess", True)),
        ("pool-bounded-nodes", POOL, fixed(30)),
        ("pool-managed-identity", POOL, changed(POOL, "identity.userAssignedIdentities", [])),
        ("batch-account-keyless", BATCH_ACCOUNT,
         changed(BATCH_ACCOUNT, "autoStorage.authenticationMode", "StorageKeys")),
        ("batch-account-no-shared-key", BATCH_ACCOUNT,
         changed(BATCH_ACCOUNT, "allowedAuthenticationModes", ["AAD", "SharedKey"])),
        ("required-tags", USER_ASSIGNED_IDENTITY,
         changed(USER_ASSIGNED_IDENTITY, "tags", DELETE)),
    ],
)  # fmt: skip
def test_each_policy_reports_its_check_through_the_sdk(
    name: str, resource_type: str, bad: dict[str, Any]
) -> None:
    assert run_policy(name, resource_type, GOOD[resource_type], None) == []
    check = dict(rules.ALL_CHECKS)[name]
    expected = [(message, None) for message in check(resource_type, bad)]
    assert run_policy(name, resource_type, bad, None) == expected != []


def test_the_policy_reads_max_nodes_from_its_config() -> None:
    assert run_policy("pool-bounded-nodes", POOL, fixed(6), None) == []
    assert run_policy("pool-bounded-nodes", POOL, fixed(6), {"maxNodes": 5}) == [
        ("fixedScale asks for 6 dedicated + 0 low-priority = 6 nodes, more than maxNodes 5", None)
    ]


def test_a_pool_identity_unknown_during_preview_still_counts() -> None:
    """The identity's id is unknown until it exists; the list of one id is known."""
    props = changed(POOL, "identity.userAssignedIdentities", [UNKNOWN_STRING_VALUE])
    assert run_policy("pool-managed-identity", POOL, props, None) == []


def test_an_unknown_formula_is_left_to_the_sdk() -> None:
    """It reports the rule as not run during preview, rather than as passed."""
    props = formula(UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        run_policy("pool-bounded-nodes", POOL, props, None)


def test_the_analyzer_applies_the_pack_as_the_cli_would() -> None:
    """The SDK's analyzer service, called in-process: config, enforcement levels, messages.

    Uses the SDK's private servicer class, the one ``PolicyPack`` serves over gRPC.
    """
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    servicer = _PolicyAnalyzerServicer(
        rules.PACK_NAME, "0.0.1", rules.policies(), EnforcementLevel.MANDATORY
    )
    info = servicer.GetAnalyzerInfo(None, None)
    assert [p.name for p in info.policies] == [name for name, _ in rules.ALL_CHECKS]

    config = proto.PolicyConfig(enforcementLevel=proto.MANDATORY)
    config.properties.update({"maxNodes": 10})
    servicer.Configure(
        proto.ConfigureAnalyzerRequest(policyConfig={"pool-bounded-nodes": config}), None
    )

    def analyze(resource_type: str, props: dict[str, Any]) -> list[tuple[str, int]]:
        struct = struct_pb2.Struct()
        struct.update(props)
        request = proto.AnalyzeRequest(
            type=resource_type, properties=struct, urn=f"urn:x::{resource_type}::it", name="it"
        )
        response = servicer.Analyze(request, None)
        return [(d.policyName, d.enforcementLevel) for d in response.diagnostics]

    for resource_type, props in GOOD.items():
        assert analyze(resource_type, props) == []
    assert analyze(POOL, fixed(11)) == [("pool-bounded-nodes", proto.MANDATORY)]
    keys = changed(STORAGE_ACCOUNT, "allowSharedKeyAccess", True)
    assert analyze(STORAGE_ACCOUNT, keys) == [("storage-shared-key-off", proto.ADVISORY)]
    unknown = analyze(POOL, formula(UNKNOWN_STRING_VALUE))
    assert unknown == [("pool-bounded-nodes", proto.ADVISORY)]  # "can't run during preview"


# The typed SDK arguments the program uses serialize to the wire names the rules read.


class _Capture(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.inputs: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        self.inputs.append((args.typ, inputs))
        state = {**inputs, "name": args.name}
        if "identity" in inputs:  # a list of ids going in, a map keyed by id coming out
            ids = inputs["identity"].get("userAssignedIdentities", [])
            state["identity"] = {
                **inputs["identity"],
                "userAssignedIdentities": {key: {} for key in ids},
            }
        return f"{GROUP_ID}/{args.name}", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        raise NotImplementedError(args.token)  # the resources here invoke nothing


def declared(build: Callable[[], None]) -> list[tuple[str, dict[str, Any]]]:
    """The resources ``build`` declares, as (type, inputs) under pulumi mocks."""
    capture = _Capture()
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(capture, project="azure-batch-runner", stack="dev", preview=False)
    pulumi.runtime.test(build)()
    return capture.inputs


def declare_stack(*, bad: bool = False) -> None:
    """The program's resources, with its typed args; ``bad`` breaks one rule per resource."""
    group = resources.ResourceGroup("rg", tags=TAGS)
    account = storage.StorageAccount(
        "sa",
        resource_group_name=group.name,
        kind=storage.Kind.STORAGE_V2,
        sku=storage.SkuArgs(name=storage.SkuName.STANDARD_LRS),
        enable_https_traffic_only=True,
        minimum_tls_version=(
            storage.MinimumTlsVersion.TLS1_0 if bad else storage.MinimumTlsVersion.TLS1_2
        ),
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        tags=TAGS,
    )
    storage.BlobContainer(
        "input",
        account_name=account.name,
        resource_group_name=group.name,
        container_name="input",
        public_access=storage.PublicAccess.BLOB if bad else storage.PublicAccess.NONE,
    )
    identity = managedidentity.UserAssignedIdentity(
        "pool-identity", resource_group_name=group.name, tags={} if bad else TAGS
    )
    modes = [batch.AuthenticationMode.AAD]
    batch_account = batch.BatchAccount(
        "ba",
        resource_group_name=group.name,
        auto_storage=batch.AutoStorageBasePropertiesArgs(
            storage_account_id=account.id,
            authentication_mode=(
                batch.AutoStorageAuthenticationMode.STORAGE_KEYS
                if bad
                else batch.AutoStorageAuthenticationMode.BATCH_ACCOUNT_MANAGED_IDENTITY
            ),
        ),
        allowed_authentication_modes=modes,
        tags=TAGS,
    )
    batch.Pool(
        "pool",
        account_name=batch_account.name,
        resource_group_name=group.name,
        pool_name="runner-pool",
        vm_size="Standard_D2s_v5",
        identity=batch.BatchPoolIdentityArgs(
            type=batch.PoolIdentityType.NONE if bad else batch.PoolIdentityType.USER_ASSIGNED,
            user_assigned_identities=[identity.id],
        ),
        scale_settings=batch.ScaleSettingsArgs(
            fixed_scale=batch.FixedScaleSettingsArgs(target_dedicated_nodes=30 if bad else 2)
        ),
        tags=TAGS,
    )


def test_the_typed_resources_comply() -> None:
    stack = declared(declare_stack)
    assert sorted(kind for kind, _ in stack) == sorted(GOOD)
    for kind, inputs in stack:
        assert rules.violations(kind, inputs) == [], kind


def test_the_typed_resources_broken_are_caught() -> None:
    found = {
        kind: {v.split(":", 1)[0] for v in rules.violations(kind, inputs)}
        for kind, inputs in declared(lambda: declare_stack(bad=True))
    }
    assert found == {
        RESOURCE_GROUP: set(),
        STORAGE_ACCOUNT: {"storage-https-tls"},
        BLOB_CONTAINER: {"storage-no-public-blobs"},
        USER_ASSIGNED_IDENTITY: {"required-tags"},
        BATCH_ACCOUNT: {"batch-account-keyless"},
        POOL: {"pool-managed-identity", "pool-bounded-nodes"},
    }


# The pack itself.


def test_main_builds_the_pack_from_every_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = importlib.import_module("infra.policy.__main__")  # not as __main__: no server
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(entry, "PolicyPack", lambda **kwargs: made.append(kwargs))
    entry.main()
    (pack,) = made
    assert pack["name"] == "azure-batch-runner-policy"
    assert pack["enforcement_level"] is EnforcementLevel.MANDATORY
    assert [p.name for p in pack["policies"]] == [name for name, _ in rules.ALL_CHECKS]


def test_the_pack_loads_as_the_cli_runs_it() -> None:
    """runpy.run_path on the directory, from the directory, as pulumi does (no server)."""
    script = (
        "import json, runpy, pulumi_policy\n"
        "made = []\n"
        "pulumi_policy.PolicyPack = lambda **kw: made.append(kw)\n"
        "runpy.run_path('.', run_name='__main__')\n"
        "print(json.dumps([[p.name for p in kw['policies']] for kw in made]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=PACK,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[name for name, _ in rules.ALL_CHECKS]]


def test_the_pack_project_files() -> None:
    project = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["description"]
    virtualenv = PACK / project["runtime"]["options"]["virtualenv"]
    assert virtualenv.resolve() == (ROOT / ".venv").resolve()

    pins = dict(line.split(">=", 1) for line in (PACK / "requirements.txt").read_text().split())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared_ranges = pyproject["dependencies"] + pyproject["optional-dependencies"]["dev"]
    for package, bound in pins.items():
        assert f"{package}>={bound}" in declared_ranges, package
    assert set(pins) == {"pulumi", "pulumi-policy"}
