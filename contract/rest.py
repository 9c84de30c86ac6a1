"""The pool spec rendered for the Batch REST API (the local stack's emulator), as
``infra/`` renders the same spec for the Batch management API."""

from __future__ import annotations

from typing import Any

from contract import spec as contract_spec
from contract.local import POOL_IDENTITY


def pool_body(spec: contract_spec.Spec, identity: str = POOL_IDENTITY) -> dict[str, Any]:
    """The spec's pool as the Batch REST API's create-pool body, its resource files read
    with ``identity``."""
    pool = spec.pool
    start = pool.start_task
    body: dict[str, Any] = {
        "id": pool.id,
        "vmSize": pool.vm_size,
        "virtualMachineConfiguration": {
            "imageReference": {
                "publisher": pool.image.publisher,
                "offer": pool.image.offer,
                "sku": pool.image.sku,
                "version": pool.image.version,
            },
            "nodeAgentSKUId": pool.image.node_agent_sku_id,
        },
        "taskSlotsPerNode": pool.task_slots_per_node,
        "startTask": {
            "commandLine": start.command_line,
            "userIdentity": {
                "autoUser": {
                    "scope": "pool",
                    "elevationLevel": "admin" if start.elevated else "nonadmin",
                }
            },
            "waitForSuccess": start.wait_for_success,
            "maxTaskRetryCount": start.max_task_retry_count,
        },
    }
    if start.resource_files:
        body["startTask"]["resourceFiles"] = [
            {
                "autoStorageContainerName": spec.containers.application,
                "blobPrefix": name,
                "identityReference": {"resourceId": identity},
            }
            for name in start.resource_files
        ]
    if pool.autoscale:
        body["enableAutoScale"] = True
        body["autoScaleFormula"] = contract_spec.autoscale_formula(pool)
        body["autoScaleEvaluationInterval"] = contract_spec.AUTOSCALE_EVALUATION_INTERVAL
    else:
        body["targetDedicatedNodes"] = pool.fixed_dedicated_nodes
        body["targetLowPriorityNodes"] = pool.fixed_spot_nodes
    return body
