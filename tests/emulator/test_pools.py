"""Pools and their nodes, through the SDK."""

from __future__ import annotations

import os

from azure.batch import models
from azure.core.rest import HttpRequest

from contract.spec import Image
from tests.emulator.conftest import pool_options, raises_batch_error, unique, wait_for


def test_create_get_exists_list_delete(batch):
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=2, task_slots_per_node=3))
    pool = batch.get_pool(pool_id)
    assert (pool.id, pool.state, pool.allocation_state) == (pool_id, "active", "steady")
    assert (pool.current_dedicated_nodes, pool.task_slots_per_node) == (2, 3)
    assert pool.vm_size == "standard_d2s_v3"
    assert pool.etag
    assert pool.last_modified
    assert pool.creation_time
    assert batch.pool_exists(pool_id)
    assert pool_id in [p.id for p in batch.list_pools()]
    nodes = wait_for(
        lambda: (n := list(batch.list_nodes(pool_id))) and all(x.state == "idle" for x in n) and n
    )
    assert len(nodes) == 2
    assert batch.get_node(pool_id, nodes[0].id).id == nodes[0].id
    batch.begin_delete_pool(pool_id).result()
    raises_batch_error(lambda: batch.get_pool(pool_id), 404, "PoolNotFound")


def test_duplicate_pool_is_409_pool_exists(batch):
    pool_id = unique("pool")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=0))
    raises_batch_error(lambda: batch.create_pool(pool_options(pool_id)), 409, "PoolExists")
    # Ids are case-insensitive on the service, as they are here.
    raises_batch_error(lambda: batch.create_pool(pool_options(pool_id.upper())), 409, "PoolExists")


def test_missing_pool_is_404(batch):
    raises_batch_error(lambda: batch.get_pool("no-such-pool"), 404, "PoolNotFound")
    raises_batch_error(lambda: list(batch.list_nodes("no-such-pool")), 404, "PoolNotFound")
    raises_batch_error(lambda: batch.begin_delete_pool("no-such-pool"), 404, "PoolNotFound")


def test_invalid_pool_bodies_are_rejected(batch):
    error = raises_batch_error(
        lambda: batch.create_pool(pool_options("bad id!")), 400, "InvalidPropertyValue"
    )
    assert error.error.details[0].code == "PropertyName"
    no_size = pool_options(unique("pool"))
    del no_size["vmSize"]
    raises_batch_error(lambda: batch.create_pool(no_size), 400, "MissingRequiredProperty")


def test_start_task_runs_first_and_gates_the_node(batch):
    pool_id = unique("pool")
    start = models.BatchStartTask(
        command_line="/bin/sh -c 'echo ready > $AZ_BATCH_NODE_SHARED_DIR/marker'",
        wait_for_success=True,
    )
    batch.create_pool(pool_options(pool_id, start_task=start))
    node = wait_for(lambda: (n := next(iter(batch.list_nodes(pool_id)))).state == "idle" and n)
    assert node.start_task_info.state == "completed"
    assert node.start_task_info.exit_code == 0
    assert node.start_task_info.result == "success"


def test_failed_start_task_leaves_the_node_start_task_failed(batch):
    pool_id = unique("pool")
    start = models.BatchStartTask(command_line="/bin/sh -c 'exit 3'", wait_for_success=True)
    batch.create_pool(pool_options(pool_id, start_task=start))
    node = wait_for(
        lambda: (n := next(iter(batch.list_nodes(pool_id)))).state == "starttaskfailed" and n
    )
    assert node.start_task_info.exit_code == 3
    assert node.start_task_info.result == "failure"


def test_supported_images_include_the_image_our_pool_uses_with_its_agent(batch):
    image = Image()  # infra's pool: canonical/ubuntu-24_04-lts/server, as the service lists it
    listed = {
        (i.image_reference.publisher, i.image_reference.offer, i.image_reference.sku): i
        for i in batch.list_supported_images()
    }
    found = listed[(image.publisher, image.offer, image.sku)]
    assert found.node_agent_sku_id == image.node_agent_sku_id
    assert found.os_type == "linux"
    assert found.verification_type == "verified"
    assert not any(sku.endswith("24_04-lts") for _, _, sku in listed)  # no such sku exists


def test_create_answers_with_data_service_id_location_and_etag(batch):
    pool_id = unique("pool")
    body = pool_options(pool_id, target_dedicated_nodes=0).as_dict()
    response = batch.send_request(
        HttpRequest("POST", "/pools", params={"api-version": "2025-06-01"}, json=body)
    )
    assert response.status_code == 201
    assert response.headers["DataServiceId"].endswith(f"/pools/{pool_id}")
    assert response.headers["Location"] == response.headers["DataServiceId"]
    assert response.headers["ETag"].startswith("0x")
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["request-id"]


def test_an_autoscale_pool_gets_the_local_node_count(batch):
    pool_id = unique("pool")
    formula = "$TargetDedicatedNodes = min(4, $PendingTasks.GetSample(1));"
    options = pool_options(
        pool_id, target_dedicated_nodes=None, enable_auto_scale=True, auto_scale_formula=formula
    )
    batch.create_pool(options)
    pool = batch.get_pool(pool_id)
    assert pool.enable_auto_scale is True
    assert pool.auto_scale_formula == formula
    assert pool.current_dedicated_nodes == len(list(batch.list_nodes(pool_id))) == os.cpu_count()
    both = pool_options(unique("pool"), enable_auto_scale=True, auto_scale_formula=formula)
    raises_batch_error(lambda: batch.create_pool(both), 400, "InvalidPropertyValue")
