"""The stack's security and cost rules, as Pulumi policies over resource inputs.

Each rule is a pure function ``check_<rule>(resource_type, props, config) -> list[str]``:
the violation messages for one resource, empty when it complies or is of a type the rule
does not cover. ``props`` are the resource's input properties as the engine sends them to a
policy pack: wire names (camelCase, ``enableHttpsTrafficOnly``), nested mappings and
sequences, enums as their strings. ``config`` is the rule's policy configuration (empty for
the defaults). Tests, and the program's tests over the resources captured under pulumi mocks,
call the checks directly; ``policies()`` wraps them for ``PolicyPack``.

Under ``pulumi preview`` the policy SDK hands over read-only proxies (``Mapping`` and
``Sequence``, not ``dict`` and ``list``) that raise ``UnknownValueError`` when a value that is
not known until deployment is read; the SDK then reports that the rule could not run. So the
checks read only the values they judge, never iterate whole mappings, and count a pool's
identities without reading their (unknown) ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from batch_formula import FormulaSyntaxError, named_targets, parse, target_caps

PACK_NAME: Final = "azure-batch-runner-policy"

RESOURCE_GROUP: Final = "azure-native:resources:ResourceGroup"
STORAGE_ACCOUNT: Final = "azure-native:storage:StorageAccount"
BLOB_CONTAINER: Final = "azure-native:storage:BlobContainer"
USER_ASSIGNED_IDENTITY: Final = "azure-native:managedidentity:UserAssignedIdentity"
BATCH_ACCOUNT: Final = "azure-native:batch:BatchAccount"
POOL: Final = "azure-native:batch:Pool"

TAGGED_TYPES: Final = frozenset(
    {RESOURCE_GROUP, STORAGE_ACCOUNT, USER_ASSIGNED_IDENTITY, BATCH_ACCOUNT, POOL}
)
REQUIRED_TAGS: Final = ("project", "stack")

TLS_VERSIONS_ALLOWED: Final = frozenset({"TLS1_2", "TLS1_3"})

MAX_NODES_KEY: Final = "maxNodes"
DEFAULT_MAX_NODES: Final = 20

DEDICATED: Final = "$TargetDedicatedNodes"
LOW_PRIORITY: Final = "$TargetLowPriorityNodes"

NO_CONFIG: Final[Mapping[str, Any]] = MappingProxyType({})


class Check(Protocol):
    """The signature every ``check_<rule>`` function has."""

    def __call__(
        self, resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = ...
    ) -> list[str]: ...


def _show(value: Any) -> str:
    return "not set" if value is None else repr(value)


def _whole_number(value: Any) -> int | None:
    """A node count: an int, or an integral float (the engine's numbers are doubles)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _non_empty_collection(value: Any) -> bool:
    """A non-empty list of ids or map keyed by id; only its length is read."""
    if isinstance(value, Mapping) or (isinstance(value, Sequence) and not isinstance(value, str)):
        return len(value) > 0
    return False


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [item for item in value if isinstance(item, str)]
    return None


# storage-https-tls


def check_storage_https_tls(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = NO_CONFIG
) -> list[str]:
    """A storage account takes HTTPS only, with TLS 1.2 or later."""
    if resource_type != STORAGE_ACCOUNT:
        return []
    problems = []
    https_only = props.get("enableHttpsTrafficOnly")
    if https_only is not True:
        problems.append(f"enableHttpsTrafficOnly must be true, is {_show(https_only)}")
    tls = props.get("minimumTlsVersion")
    if not (isinstance(tls, str) and tls in TLS_VERSIONS_ALLOWED):
        problems.append(f"minimumTlsVersion must be TLS1_2 or later, is {_show(tls)}")
    return problems


# storage-no-public-blobs


def check_storage_no_public_blobs(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = NO_CONFIG
) -> list[str]:
    """No anonymous reads: the account forbids them explicitly, no container asks for them."""
    if resource_type == STORAGE_ACCOUNT:
        allowed = props.get("allowBlobPublicAccess")
        if allowed is not False:
            return [f"allowBlobPublicAccess must be explicitly false, is {_show(allowed)}"]
    elif resource_type == BLOB_CONTAINER:
        access = props.get("publicAccess")
        if access not in (None, "None"):
            return [f"publicAccess must be absent or 'None', is {access!r}"]
    return []


# storage-shared-key-off


def check_storage_shared_key_off(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = NO_CONFIG
) -> list[str]:
    """The storage account refuses account keys, Entra ID only; the config may allow them."""
    if resource_type != STORAGE_ACCOUNT:
        return []
    allowed = props.get("allowSharedKeyAccess")
    if allowed is not False:
        return [f"allowSharedKeyAccess should be false, is {_show(allowed)}"]
    return []


# pool-bounded-nodes


def max_nodes(config: Mapping[str, Any]) -> int:
    """The ``maxNodes`` policy setting, or its default; a bad value is an error, not a pass."""
    raw = config.get(MAX_NODES_KEY, DEFAULT_MAX_NODES)
    value = _whole_number(raw)
    if value is None:
        raise ValueError(f"policy config {MAX_NODES_KEY!r} must be a whole number >= 0: {raw!r}")
    return value


def formula_caps(formula: str) -> dict[str, int | None]:
    """The upper bound an autoscale formula puts on each target node count it assigns.

    ``batch_formula.target_caps`` over the formula's syntax tree: keys are
    ``$TargetDedicatedNodes`` and ``$TargetLowPriorityNodes``, present when the formula
    assigns them; the last assignment decides, its value is the cap N when it reads
    ``min(N, <anything>)`` or ``N`` (N a whole number or a variable last assigned one), and
    None, no bound, for anything else. A formula that does not parse bounds nothing: every
    target it names is None (``_check_autoscale`` reports the syntax error itself).
    """
    try:
        return target_caps(parse(formula))
    except FormulaSyntaxError:
        return dict.fromkeys(sorted(named_targets(formula)))


def _check_fixed_scale(fixed: Mapping[str, Any], limit: int) -> list[str]:
    counts, problems = [], []
    for key in ("targetDedicatedNodes", "targetLowPriorityNodes"):
        raw = fixed.get(key)
        count = 0 if raw is None else _whole_number(raw)
        if count is None:
            problems.append(f"fixedScale.{key} must be a whole number, is {raw!r}")
        else:
            counts.append(count)
    if not problems and sum(counts) > limit:
        dedicated, low_priority = counts
        problems.append(
            f"fixedScale asks for {dedicated} dedicated + {low_priority} low-priority"
            f" = {sum(counts)} nodes, more than maxNodes {limit}"
        )
    return problems


def _check_autoscale(auto: Mapping[str, Any], limit: int) -> list[str]:
    formula = auto.get("formula")
    if not isinstance(formula, str) or not formula.strip():
        return [f"autoScale.formula must be set, is {_show(formula)}"]
    caps = formula_caps(formula)
    problems = []
    try:
        parse(formula)
    except FormulaSyntaxError as error:
        problems.append(f"the autoScale formula does not parse: {error.message}")
    if DEDICATED not in caps:
        problems.append(
            f"the autoScale formula never assigns {DEDICATED}; cap it with "
            f"'{DEDICATED} = min(<n>, ...);'"
        )
    # Never assigned, the low-priority target stays at the service's default of 0.
    caps.setdefault(LOW_PRIORITY, 0)
    for target in (DEDICATED, LOW_PRIORITY):
        if target in caps and caps[target] is None:
            problems.append(
                f"the autoScale formula leaves {target} unbounded: its last assignment must"
                f" read '{target} = min(<n>, ...);' with n a whole number"
            )
    dedicated, low_priority = caps.get(DEDICATED, 0), caps[LOW_PRIORITY]
    if dedicated is not None and low_priority is not None and dedicated + low_priority > limit:
        problems.append(
            f"the autoScale formula allows {dedicated} dedicated + {low_priority} low-priority"
            f" = {dedicated + low_priority} nodes, more than maxNodes {limit}"
        )
    return problems


def check_pool_bounded_nodes(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = NO_CONFIG
) -> list[str]:
    """A pool can never hold more than ``maxNodes`` nodes, dedicated and low-priority together.

    Fixed scale: the two targets (absent counts as 0) add up to at most maxNodes. Autoscale:
    see ``formula_caps``; a formula that never assigns ``$TargetLowPriorityNodes`` leaves it
    at 0, so only ``$TargetDedicatedNodes`` must be assigned, and the caps add up to at most
    maxNodes.
    """
    if resource_type != POOL:
        return []
    limit = max_nodes(config)
    scale = props.get("scaleSettings")
    if not isinstance(scale, Mapping):
        return ["scaleSettings must be set, with fixedScale or a capped autoScale formula"]
    fixed, auto = scale.get("fixedScale"), scale.get("autoScale")
    problems = []
    if isinstance(fixed, Mapping):
        problems += _check_fixed_scale(fixed, limit)
    if isinstance(auto, Mapping):
        problems += _check_autoscale(auto, limit)
    if not isinstance(fixed, Mapping) and not isinstance(auto, Mapping):
        problems.append("scaleSettings must have fixedScale or autoScale")
    return problems


# pool-managed-identity


def check_pool_managed_identity(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = NO_CONFIG
) -> list[str]:
    """The pool's nodes reach storage with a user-assigned identity, not with keys."""
    if resource_type != POOL:
        return []
    identity = props.get("identity")
    if not isinstance(identity, Mapping):
        return ["identity must be set: type UserAssigned with at least one identity"]
    problems = []
    kind = identity.get("type")
    if kind != "UserAssigned":
        problems.append(f"identity.type must be 'UserAssigned', is {_show(kind)}")
    # A list of resource ids going in (a map keyed by id coming out): count, don't read them.
    if not _non_empty_collection(identity.get("userAssignedIdentities")):
        problems.append("identity.userAssignedIdentities must name at least one identity")
    return problems


# batch-account-keyless


def check_batch_account_keyless(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = NO_CONFIG
) -> list[str]:
    """The account reaches auto-storage with its identity and accepts Entra ID (AAD) tokens.

    An account without auto-storage holds no storage keys, so only its modes are checked.
    """
    if resource_type != BATCH_ACCOUNT:
        return []
    problems = []
    auto_storage = props.get("autoStorage")
    if isinstance(auto_storage, Mapping):
        mode = auto_storage.get("authenticationMode")
        if mode != "BatchAccountManagedIdentity":
            problems.append(
                "autoStorage.authenticationMode must be 'BatchAccountManagedIdentity', is"
                f" {_show(mode)} (not set means StorageKeys)"
            )
    modes = _strings(props.get("allowedAuthenticationModes"))
    if modes is None or "AAD" not in modes:
        problems.append(f"allowedAuthenticationModes must include 'AAD', is {_show(modes)}")
    return problems


# batch-account-no-shared-key


def check_batch_account_no_shared_key(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = NO_CONFIG
) -> list[str]:
    """The account refuses shared keys; the stack's config may allow them, hence advisory."""
    if resource_type != BATCH_ACCOUNT:
        return []
    modes = _strings(props.get("allowedAuthenticationModes"))
    if modes is None:
        return ["allowedAuthenticationModes is not set, so the account accepts SharedKey"]
    if "SharedKey" in modes:
        return [f"allowedAuthenticationModes includes 'SharedKey': {modes!r}"]
    return []


# required-tags


def check_required_tags(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] = NO_CONFIG
) -> list[str]:
    """Every taggable resource of the stack says which project and stack it belongs to."""
    if resource_type not in TAGGED_TYPES:
        return []
    tags = props.get("tags")
    if not isinstance(tags, Mapping):
        return [f"tags must be set, with non-empty {' and '.join(REQUIRED_TAGS)}"]
    missing = [
        key
        for key in REQUIRED_TAGS
        if not (isinstance(value := tags.get(key), str) and value.strip())
    ]
    if missing:
        return [f"tags must have non-empty {' and '.join(missing)}"]
    return []


# The pack


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Check
    enforcement_level: EnforcementLevel
    config_properties: Mapping[str, Mapping[str, Any]] | None = None


MANDATORY: Final = EnforcementLevel.MANDATORY
ADVISORY: Final = EnforcementLevel.ADVISORY

RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "storage-https-tls",
        "Storage accounts accept HTTPS only, with TLS 1.2 or later.",
        check_storage_https_tls,
        MANDATORY,
    ),
    Rule(
        "storage-no-public-blobs",
        "Storage accounts forbid anonymous blob access; no container asks for it.",
        check_storage_no_public_blobs,
        MANDATORY,
    ),
    Rule(
        "storage-shared-key-off",
        "Storage accounts refuse account keys (the stack's allowSharedKey config may allow them).",
        check_storage_shared_key_off,
        ADVISORY,
    ),
    Rule(
        "pool-bounded-nodes",
        "Batch pools have an upper bound on their nodes, at most maxNodes in all.",
        check_pool_bounded_nodes,
        MANDATORY,
        {MAX_NODES_KEY: {"type": "integer", "minimum": 0, "default": DEFAULT_MAX_NODES}},
    ),
    Rule(
        "pool-managed-identity",
        "Batch pools run with a user-assigned managed identity.",
        check_pool_managed_identity,
        MANDATORY,
    ),
    Rule(
        "batch-account-keyless",
        "Batch accounts reach auto-storage with their managed identity and accept Entra ID.",
        check_batch_account_keyless,
        MANDATORY,
    ),
    Rule(
        "batch-account-no-shared-key",
        "Batch accounts refuse shared keys (the stack's allowSharedKey config may allow them).",
        check_batch_account_no_shared_key,
        ADVISORY,
    ),
    Rule(
        "required-tags",
        f"Taggable resources carry non-empty {' and '.join(REQUIRED_TAGS)} tags.",
        check_required_tags,
        MANDATORY,
    ),
)

ALL_CHECKS: Final[tuple[tuple[str, Check], ...]] = tuple((r.name, r.check) for r in RULES)


def violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Every rule's violations for one resource, with default config, as 'rule: message'."""
    return [
        f"{name}: {message}"
        for name, check in ALL_CHECKS
        for message in check(resource_type, props, NO_CONFIG)
    ]


def validation(check: Check) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """The policy SDK's validate callback for a check: each message is one violation."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props, args.get_config()):
            report_violation(message, None)

    return validate


def policies() -> list[Policy]:
    """A fresh ``ResourceValidationPolicy`` for every rule, in ``RULES`` order."""
    return [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=validation(rule.check),
            enforcement_level=rule.enforcement_level,
            config_schema=(
                None
                if rule.config_properties is None
                else PolicyConfigSchema(
                    properties={k: dict(v) for k, v in rule.config_properties.items()}
                )
            ),
        )
        for rule in RULES
    ]
