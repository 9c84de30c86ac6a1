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


def declare(
    name: str, settings: Settings, resource_group: pulumi.Input[str], parent: pulumi.Resource
) -> Storage:
    """The account, its blob service settings, its lifecycle rule and its containers.

    HTTPS only, TLS 1.2 at least, no anonymous access, and account keys refused unless
    ``allowSharedKey`` is set: every client (the runner, the pool, the Batch account)
    authenticates with Entra ID. Public network access stays on because Batch nodes of a
    pool without a virtual network reach storage over the public endpoint.
    """
    options = pulumi.ResourceOptions(parent=parent)
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
    child = pulumi.ResourceOptions(parent=account)
    retention = storage.DeleteRetentionPolicyArgs(enabled=True, days=settings.soft_delete_days)
    storage.BlobServiceProperties(
        f"{name}-blob-service",
        account_name=account.name,
        resource_group_name=resource_group,
        blob_services_name="default",
        delete_retention_policy=retention,
        container_delete_retention_policy=retention,
        opts=child,
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
        opts=pulumi.ResourceOptions(parent=account, depends_on=list(containers.values())),
    )
    return Storage(account, containers)
