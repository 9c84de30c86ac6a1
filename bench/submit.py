"""Benchmark the emulator: task creation rate, listing time and per-task overhead.

Run by hand: ``python bench/submit.py [--tasks 10000] [--concurrency 8] [--overhead 200]``.
It starts Azurite and the emulator on free loopback ports (stopped at the end), then:

1. creates a job of N tasks with ``create_tasks(..., max_concurrency=C)`` (on a pool
   with no nodes, so nothing runs meanwhile) and reports tasks per second;
2. lists all N tasks, following ``odata.nextLink`` pages, and reports the seconds; times
   the task counts and one more task's creation in that job, and the emulator's memory;
3. runs M tasks whose command is ``/bin/true`` with one resource file and one output
   file, and reports the median and p95 of (end - creation) per task, with the pool's
   slots all free so the figure is the emulator's own overhead.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from contract import local as local_keys
from emulator.app import DEFAULT_ACCOUNT, DEFAULT_KEY
from local_stack import servers


def _pool(client: BatchClient, pool_id: str, nodes: int, slots: int) -> None:
    client.create_pool(
        models.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu-24_04-lts", sku="server"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
            target_dedicated_nodes=nodes,
            task_slots_per_node=slots,
        )
    )


def _job(client: BatchClient, job_id: str, pool_id: str) -> None:
    client.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id))
    )


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def creation_and_listing(client: BatchClient, tasks: int, concurrency: int, pid: int) -> None:
    _pool(client, "empty", nodes=0, slots=1)
    _job(client, "bulk", "empty")
    specs = [
        models.BatchTaskCreateOptions(id=f"task-{i:06d}", command_line="/bin/true")
        for i in range(tasks)
    ]
    started = time.perf_counter()
    result = client.create_tasks("bulk", specs, max_concurrency=concurrency)
    seconds = time.perf_counter() - started
    assert len(result.result_values or []) == tasks
    print(
        f"create_tasks: {tasks} tasks in {seconds:.2f} s = {tasks / seconds:,.0f} tasks/s "
        f"(max_concurrency={concurrency}; target >= 2,000)"
    )
    started = time.perf_counter()
    listed = sum(1 for _ in client.list_tasks("bulk"))
    seconds = time.perf_counter() - started
    assert listed == tasks
    print(f"list_tasks: {listed} tasks in {seconds:.2f} s, 1,000 a page (target <= 2 s)")
    started = time.perf_counter()
    for _ in range(10):
        counts = client.get_job_task_counts("bulk").task_counts
    seconds = (time.perf_counter() - started) / 10
    assert counts.active == tasks
    print(f"get_job_task_counts: {seconds * 1000:.1f} ms a call over {tasks} tasks")
    started = time.perf_counter()
    client.create_task("bulk", models.BatchTaskCreateOptions(id="one-more", command_line="x"))
    seconds = time.perf_counter() - started
    print(f"create_task into a job of {tasks}: {seconds * 1000:.1f} ms (the id check is an index)")
    now, peak = _rss_mb(pid)
    print(f"emulator memory with {tasks + 1} tasks: {now:.0f} MB resident, {peak:.0f} MB peak")


def _sas(container: str, permission: ContainerSasPermissions) -> str:
    return generate_container_sas(
        local_keys.STORAGE_ACCOUNT,
        container,
        account_key=local_keys.STORAGE_KEY,
        permission=permission,
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def overhead(client: BatchClient, blobs: BlobServiceClient, count: int) -> None:
    inputs = blobs.create_container("bench-input")
    outputs = blobs.create_container("bench-output")
    inputs.upload_blob("in.txt", b"payload")
    sas = _sas("bench-output", ContainerSasPermissions(write=True, create=True))
    read_sas = _sas("bench-input", ContainerSasPermissions(read=True, list=True))
    _pool(client, "runners", nodes=1, slots=count)
    while any(n.state != "idle" for n in client.list_nodes("runners")):
        time.sleep(0.05)
    _job(client, "overhead", "runners")
    specs = [
        models.BatchTaskCreateOptions(
            id=f"t{i:05d}",
            command_line="/bin/true",
            resource_files=[
                models.ResourceFile(http_url=f"{inputs.url}/in.txt?{read_sas}", file_path="in.txt")
            ],
            output_files=[
                models.OutputFile(
                    file_pattern="in.txt",
                    destination=models.OutputFileDestination(
                        container=models.OutputFileBlobContainerDestination(
                            container_url=f"{outputs.url}?{sas}", path=f"t{i:05d}/in.txt"
                        )
                    ),
                    upload_options=models.OutputFileUploadConfiguration(
                        upload_condition="taskcompletion"
                    ),
                )
            ],
        )
        for i in range(count)
    ]
    # One at a time: the latency a single task pays.
    alone = []
    for spec in specs[:20]:
        client.create_task("overhead", spec)
        while (task := client.get_task("overhead", spec.id)).state != "completed":
            time.sleep(0.005)
        alone.append(_duration(task))
    _report("one task at a time, 20 tasks", alone)
    # All at once: what each pays when the emulator is busy with the others.
    client.create_tasks("overhead", specs[20:])
    while client.get_job_task_counts("overhead").task_counts.completed < count:
        time.sleep(0.1)
    together = [
        _duration(t)
        for t in client.list_tasks("overhead")
        if t.id not in {s.id for s in specs[:20]}
    ]
    _report(f"{count - 20} tasks at once, all slots free", together)


def _duration(task: models.BatchTask) -> float:
    info = task.execution_info
    assert info is not None, task.id
    assert info.result == "success", info.failure_info
    assert info.end_time is not None, task.id
    assert task.creation_time is not None, task.id
    return (info.end_time - task.creation_time).total_seconds()


def _report(label: str, durations: list[float]) -> None:
    durations.sort()
    p95 = durations[int(0.95 * (len(durations) - 1))]
    print(
        f"per-task overhead (/bin/true, 1 resource file, 1 output file; creation to end), "
        f"{label}: median {statistics.median(durations) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--overhead", type=int, default=200, help="tasks for the overhead run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        azurite = servers.start_azurite(root / "azurite", root / "azurite.log")
        try:
            connection = servers.azurite_connection_string(azurite.port)
            emulator = servers.start_emulator(
                root / "emulator", root / "emulator.log", storage=connection
            )
            try:
                client = BatchClient(
                    emulator.url, AzureNamedKeyCredential(DEFAULT_ACCOUNT, DEFAULT_KEY)
                )
                creation_and_listing(client, args.tasks, args.concurrency, emulator.process.pid)
                overhead(
                    client, BlobServiceClient.from_connection_string(connection), args.overhead
                )
            finally:
                servers.stop(emulator)
        finally:
            servers.stop(azurite)


if __name__ == "__main__":
    main()
