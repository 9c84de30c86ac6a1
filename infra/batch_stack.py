"""The Batch stack as one component: storage, identities, roles, the Batch account and its pool.

Nothing in it holds a key. The pool's nodes reach storage with a user-assigned managed
identity that may read every container and write only the output container; the Batch
account reaches its auto-storage account with an identity of its own; people and
pipelines use Entra ID, through the roles ``runnerPrincipalId`` is given.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_azure_native import authorization, batch, managedidentity, resources

from contract import spec
from infra import roles
from infra import storage as storage_module
from infra.config import Settings


class BatchStack(pulumi.ComponentResource):
    resource_group_name: pulumi.Output[str]
    storage: storage_module.Storage
    pool_identity: managedidentity.UserAssignedIdentity
    account: batch.BatchAccount
    pool: batch.Pool

    def __init__(
        self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("azure-batch-runner:index:BatchStack", name, None, opts)
        self._prefix = name
        self._settings = settings
        self._subscription_id = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).subscription_id
        child = pulumi.ResourceOptions(parent=self)

        if settings.existing_resource_group:
            # Looked up rather than assumed, so a misspelt name fails at preview.
            self.resource_group_name = resources.get_resource_group_output(
                resource_group_name=settings.existing_resource_group,
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).name
        else:
            self.resource_group_name = resources.ResourceGroup(
                f"{name}-rg", location=settings.location, tags=settings.tags, opts=child
            ).name
        group = self.resource_group_name

        # Storage account names are global, 3-24 lowercase letters and digits: the
        # provider appends a random suffix to this logical name.
        self.storage = storage_module.declare(f"{name}store", settings, group, self)
        account_id = self.storage.account.id

        self.pool_identity = managedidentity.UserAssignedIdentity(
            f"{name}-pool-identity",
            resource_group_name=group,
            location=settings.location,
            tags=settings.tags,
            opts=child,
        )
        account_identity = managedidentity.UserAssignedIdentity(
            f"{name}-account-identity",
            resource_group_name=group,
            location=settings.location,
            tags=settings.tags,
            opts=child,
        )
        pool_principal = self.pool_identity.principal_id
        pool_grants = [
            self._grant(
                "pool-reads-blobs", pool_principal, roles.STORAGE_BLOB_DATA_READER, account_id
            ),
            self._grant(
                "pool-writes-outputs",
                pool_principal,
                roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
                self.storage.containers["output"].id,
            ),
        ]
        # Auto-storage with the account's identity (not keys) needs this role; the
        # account is created after it, as the service checks access when linking.
        account_grant = self._grant(
            "account-uses-storage",
            account_identity.principal_id,
            roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
            account_id,
        )

        modes = [batch.AuthenticationMode.AAD]
        if settings.allow_shared_key:
            modes.append(batch.AuthenticationMode.SHARED_KEY)
        # Batch account names are global, 3-24 lowercase letters and digits, as above.
        self.account = batch.BatchAccount(
            f"{name}batch",
            resource_group_name=group,
            location=settings.location,
            identity=batch.BatchAccountIdentityArgs(
                type=batch.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[account_identity.id],
            ),
            auto_storage=batch.AutoStorageBasePropertiesArgs(
                storage_account_id=account_id,
                authentication_mode=batch.AutoStorageAuthenticationMode.BATCH_ACCOUNT_MANAGED_IDENTITY,
                node_identity_reference=batch.ComputeNodeIdentityReferenceArgs(
                    resource_id=self.pool_identity.id
                ),
            ),
            allowed_authentication_modes=modes,
            pool_allocation_mode=batch.PoolAllocationMode.BATCH_SERVICE,
            public_network_access=batch.PublicNetworkAccessType.ENABLED,
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account_grant]),
        )
        self.pool = self._pool(settings.spec.pool, pool_grants)

        if settings.runner_principal_id:
            runner = settings.runner_principal_id
            kind = settings.runner_principal_type
            self._grant(
                "runner-submits-jobs",
                runner,
                roles.AZURE_BATCH_DATA_CONTRIBUTOR,
                self.account.id,
                kind,
            )
            self._grant(
                "runner-uses-blobs", runner, roles.STORAGE_BLOB_DATA_CONTRIBUTOR, account_id, kind
            )

        self.register_outputs(self.outputs())

    def _grant(
        self,
        name: str,
        principal_id: pulumi.Input[str],
        role: str,
        scope: pulumi.Input[str],
        principal_type: str | None = "ServicePrincipal",
    ) -> authorization.RoleAssignment:
        """A role assignment; its name (a GUID) is generated by the provider.

        Managed identities are ServicePrincipal: saying so lets the assignment succeed
        before the new identity has replicated through Entra ID.
        """
        return authorization.RoleAssignment(
            f"{self._prefix}-{name}",
            principal_id=principal_id,
            principal_type=principal_type,
            role_definition_id=self._subscription_id.apply(
                lambda subscription: roles.definition_id(subscription, role)
            ),
            scope=scope,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _pool(self, pool: spec.Pool, grants: list[authorization.RoleAssignment]) -> batch.Pool:
        """The spec's pool, rendered for the Batch management API (as contract.rest renders it
        for the emulator)."""
        start = pool.start_task
        if pool.autoscale:
            scale = batch.ScaleSettingsArgs(
                auto_scale=batch.AutoScaleSettingsArgs(
                    formula=spec.autoscale_formula(pool),
                    evaluation_interval=spec.AUTOSCALE_EVALUATION_INTERVAL,
                )
            )
        else:
            scale = batch.ScaleSettingsArgs(
                fixed_scale=batch.FixedScaleSettingsArgs(
                    target_dedicated_nodes=pool.fixed_dedicated_nodes,
                    target_low_priority_nodes=pool.fixed_spot_nodes,
                )
            )
        identity = batch.ComputeNodeIdentityReferenceArgs(resource_id=self.pool_identity.id)
        return batch.Pool(
            f"{self._prefix}-pool",
            account_name=self.account.name,
            resource_group_name=self.resource_group_name,
            pool_name=pool.id,
            vm_size=pool.vm_size,
            deployment_configuration=batch.DeploymentConfigurationArgs(
                virtual_machine_configuration=batch.VirtualMachineConfigurationArgs(
                    image_reference=batch.ImageReferenceArgs(
                        publisher=pool.image.publisher,
                        offer=pool.image.offer,
                        sku=pool.image.sku,
                        version=pool.image.version,
                    ),
                    node_agent_sku_id=pool.image.node_agent_sku_id,
                )
            ),
            identity=batch.BatchPoolIdentityArgs(
                type=batch.PoolIdentityType.USER_ASSIGNED,
                user_assigned_identities=[self.pool_identity.id],
            ),
            task_slots_per_node=pool.task_slots_per_node,
            scale_settings=scale,
            start_task=batch.StartTaskArgs(
                command_line=start.command_line,
                # The pool-scoped auto-user, NonAdmin unless the spec's start task needs root.
                user_identity=batch.UserIdentityArgs(
                    auto_user=batch.AutoUserSpecificationArgs(
                        scope=batch.AutoUserScope.POOL,
                        elevation_level=batch.ElevationLevel.ADMIN
                        if start.elevated
                        else batch.ElevationLevel.NON_ADMIN,
                    )
                ),
                wait_for_success=start.wait_for_success,
                max_task_retry_count=start.max_task_retry_count,
                resource_files=[
                    batch.ResourceFileArgs(
                        auto_storage_container_name=self._settings.spec.containers.application,
                        blob_prefix=name,
                        identity_reference=identity,
                    )
                    for name in start.resource_files
                ]
                or None,
            ),
            target_node_communication_mode=batch.NodeCommunicationMode.SIMPLIFIED,
            tags=self._settings.tags,
            # The nodes read their resource files with the identity from their first task.
            opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
        )

    def outputs(self) -> dict[str, Any]:
        """The stack outputs, keyed as contract.outputs.StackOutputs reads them."""
        containers = self.storage.containers
        return {
            "location": self._settings.location,
            "resourceGroupName": self.resource_group_name,
            "storageAccountName": self.storage.account.name,
            "blobEndpoint": self.storage.account.primary_endpoints.blob,
            "containers": {role: container.name for role, container in containers.items()},
            "batchAccountName": self.account.name,
            "batchAccountEndpoint": pulumi.Output.concat("https://", self.account.account_endpoint),
            "poolId": self.pool.name,
            "poolIdentityResourceId": self.pool_identity.id,
        }
