"""The storage account the jobs use: locked down, self-cleaning, with three private containers."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import storage

from infra.config import Settings


@dataclass(frozen=True)
class Storage:
    account: storage.StorageAccount
    containers: dict[str, storage.BlobContainer]  # by role: application, input, output


def account_options(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """The storage account's options: a child of the stack's component, and protected.

    Pulumi then refuses to delete the account (a ``destroy``, or a replacement that a
    changed input would cause) until ``pulumi state unprotect`` lifts the protection;
    its children inherit it unless they say otherwise.
    """
    return pulumi.ResourceOptions(parent=parent, protect=True)


def declare(
    name: str, settings: Settings, resource_group: pulumi.Input[str], parent: pulumi.Resource
) -> Storage:
    """The account, its blob service settings, its lifecycle rule and its containers.

    HTTPS only, TLS 1.2 at least, no anonymous access, and account keys refused unless
    ``allowSharedKey`` is set: every client (the runner, the pool, the Batch account)
    authenticates with Entra ID. Public network access stays on because Batch nodes of a
    pool without a virtual network reach storage over the public endpoint.

    The account and its containers are protected (:func:`account_options`): the jobs'
    data lives there, so ``pulumi destroy`` or a change that replaces them stops instead
    of deleting it (``pulumi state unprotect`` first, docs/azure.md). Its settings (blob
    service properties, lifecycle rule) hold no data and stay replaceable.
    """
    options = account_options(parent)
    account = storage.StorageAccount(
        name,
        resource_group_name=resource_group,
        location=settings.location,
        kind=storage.Kind.STORAGE_V2,
        sku=storage.SkuArgs(name=storage.SkuName.STANDARD_LRS),
        enable_https_traffic_only=True,
        minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
        allow_blob_public_access=False,
        allow_shared_key_access=settings.allow_shared_key,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        tags=settings.tags,
        opts=options,
    )
    child = pulumi.ResourceOptions(parent=account)  # protected as the account is
    setting = pulumi.ResourceOptions(parent=account, protect=False)
    retention = storage.DeleteRetentionPolicyArgs(enabled=True, days=settings.soft_delete_days)
    storage.BlobServiceProperties(
        f"{name}-blob-service",
        account_name=account.name,
        resource_group_name=resource_group,
        blob_services_name="default",
        delete_retention_policy=retention,
        container_delete_retention_policy=retention,
        opts=setting,
    )
    names = settings.spec.containers
    containers = {
        role: storage.BlobContainer(
            f"{name}-{role}",
            account_name=account.name,
            resource_group_name=resource_group,
            container_name=container,
            public_access=storage.PublicAccess.NONE,
            opts=child,
        )
        for role, container in (
            ("application", names.application),
            ("input", names.input),
            ("output", names.output),
        )
    }
    # A job's inputs and results are working data: they expire; the staged scripts in
    # the application container are kept (they are content-addressed and small).
    storage.ManagementPolicy(
        f"{name}-lifecycle",
        account_name=account.name,
        resource_group_name=resource_group,
        management_policy_name="default",  # the only name the service accepts
        policy=storage.ManagementPolicySchemaArgs(
            rules=[
                storage.ManagementPolicyRuleArgs(
                    name="expire-job-data",
                    enabled=True,
                    type=storage.RuleType.LIFECYCLE,
                    definition=storage.ManagementPolicyDefinitionArgs(
                        filters=storage.ManagementPolicyFilterArgs(
                            blob_types=["blockBlob"],
                            prefix_match=[f"{names.input}/", f"{names.output}/"],
                        ),
                        actions=storage.ManagementPolicyActionArgs(
                            base_blob=storage.ManagementPolicyBaseBlobArgs(
                                delete=storage.DateAfterModificationArgs(
                                    days_after_modification_greater_than=settings.blob_retention_days
                                )
                            )
                        ),
                    ),
                )
            ]
        ),
        opts=pulumi.ResourceOptions(
            parent=account, protect=False, depends_on=list(containers.values())
        ),
    )
    return Storage(account, containers)
