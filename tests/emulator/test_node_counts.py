"""Account-wide pool listings that answered InvalidUri before: node counts and usage metrics.

Shapes as the 2025-06-01 specification's Pools_ListPoolNodeCounts and
Pools_ListPoolUsageMetrics examples have them; driven through azure-batch 15.x
(``list_pool_node_counts``, ``list_pool_usage_metrics``) and, for the raw JSON,
``send_request``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.batch import BatchClient, models
from azure.core.rest import HttpRequest

from tests.emulator.conftest import (
    client_for,
    pool_options,
    raises_batch_error,
    unique,
    wait_for,
)
from tests.emulator.fakes import FakeClock
from tests.emulator.inprocess import serve

API = {"api-version": "2025-06-01"}

NODE_COUNT_KEYS = {
    "creating",
    "deallocated",
    "deallocating",
    "idle",
    "leavingPool",
    "offline",
    "preempted",
    "rebooting",
    "reimaging",
    "running",
    "starting",
    "startTaskFailed",
    "unknown",
    "unusable",
    "waitingForStartTask",
    "upgradingOS",
    "total",
}
"""BatchNodeCounts: every state, zero or not, and the total (Pools_ListPoolNodeCounts)."""


def test_node_counts_count_each_pools_nodes_by_state_and_kind(batch: BatchClient) -> None:
    pool_id = unique("pool")
    waits = models.BatchStartTask(command_line="sleep 1000", wait_for_success=True)
    batch.create_pool(
        pool_options(
            pool_id, target_dedicated_nodes=2, target_low_priority_nodes=1, start_task=waits
        )
    )
    try:
        wait_for(
            lambda: [n.state for n in batch.list_nodes(pool_id)] == ["waitingforstarttask"] * 3
        )
        (counts,) = batch.list_pool_node_counts(filter=f"poolId eq '{pool_id}'")
        assert counts.pool_id == pool_id
        assert counts.dedicated is not None
        assert counts.low_priority is not None
        assert counts.dedicated.waiting_for_start_task == counts.dedicated.total == 2
        assert counts.low_priority.waiting_for_start_task == counts.low_priority.total == 1
        assert counts.dedicated.idle == counts.dedicated.running == 0

        body = batch.send_request(HttpRequest("GET", "/nodecounts", params=API)).json()
        (raw,) = [entry for entry in body["value"] if entry["poolId"] == pool_id]
        assert set(raw) == {"poolId", "dedicated", "lowPriority"}
        assert set(raw["dedicated"]) == set(raw["lowPriority"]) == NODE_COUNT_KEYS
    finally:
        batch.begin_delete_pool(pool_id, polling_interval=0.05).result()


START = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)


def _at(hour: int, minute: int) -> datetime:
    return datetime(2026, 1, 1, hour, minute, tzinfo=UTC)


def test_usage_metrics_are_core_hours_per_half_hour_interval(tmp_path: Path) -> None:
    """Two 2-core nodes from 00:10, one more in another pool from 01:20; now 02:10."""
    clock = FakeClock(START)
    with serve(tmp_path, clock=clock) as emulator:
        batch = client_for(emulator.url)
        batch.create_pool(pool_options("metered", target_dedicated_nodes=2))  # standard_d2s_v3
        clock.advance(timedelta(hours=1, minutes=10))
        batch.create_pool(pool_options("later", target_dedicated_nodes=1))
        clock.advance(timedelta(minutes=50))

        # Without times: the last interval that has ended, every pool that existed in it.
        last = {m.pool_id: m for m in batch.list_pool_usage_metrics()}
        assert set(last) == {"metered", "later"}
        assert (last["metered"].start_time, last["metered"].end_time) == (_at(1, 30), _at(2, 0))
        assert last["metered"].vm_size == "standard_d2s_v3"
        assert last["metered"].total_core_hours == pytest.approx(2.0)  # 2 nodes x 2 cores x 0.5 h
        assert last["later"].total_core_hours == pytest.approx(1.0)

        metered = batch.list_pool_usage_metrics(
            start_time=_at(0, 0), end_time=_at(2, 0), filter="poolId eq 'metered'"
        )
        by_start = {m.start_time: m.total_core_hours for m in metered}
        assert by_start == {
            _at(0, 0): pytest.approx(2 * 2 * 20 / 60, abs=1e-3),  # allocated at 00:10
            _at(0, 30): pytest.approx(2.0),
            _at(1, 0): pytest.approx(2.0),
            _at(1, 30): pytest.approx(2.0),
        }
        later = batch.list_pool_usage_metrics(start_time=_at(0, 0), filter="poolId eq 'later'")
        assert {m.start_time: m.total_core_hours for m in later} == {
            _at(1, 0): pytest.approx(2 * 10 / 60, abs=1e-3),  # created at 01:20
            _at(1, 30): pytest.approx(1.0),
        }

        params = {**API, "startTime": "2026-01-01T01:00:00Z", "endtime": "2026-01-01T02:00:00Z"}
        body = batch.send_request(HttpRequest("GET", "/poolusagemetrics", params=params)).json()
        assert len(body["value"]) == 4  # two intervals, two pools
        for entry in body["value"]:
            assert set(entry) == {"poolId", "startTime", "endTime", "vmSize", "totalCoreHours"}
            assert entry["startTime"] in ("2026-01-01T01:00:00Z", "2026-01-01T01:30:00Z")

        bad = HttpRequest("GET", "/poolusagemetrics", params={**API, "startTime": "yesterday"})
        raises_batch_error(lambda: batch.send_request(bad), 400, "InvalidQueryParameterValue")
