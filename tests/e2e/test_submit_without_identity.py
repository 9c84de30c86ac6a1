"""`submit` on a stack whose pool has no managed identity: nodes get least-privilege SAS URLs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from runner import sas
from tests.e2e.conftest import batch_client, runner
from tests.e2e.test_submit import DATA
from tests.task.reference import reference_top


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_a_stack_without_a_pool_identity_gets_least_privilege_sas(
    stack, stack_outputs, job_ids, tmp_path
):
    job_id = job_ids("e2e-sas")
    document = json.loads(stack.read_text())
    document["poolIdentityResourceId"] = None
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(document))

    before = datetime.now(UTC)
    result = runner(
        "submit",
        *map(str, DATA),
        "--outputs",
        str(outputs),
        "--json",
        "--job-id",
        job_id,
        "--timeout",
        "30m",
        cwd=tmp_path,
    )
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    assert "no pool identity; nodes get service SAS URLs" in result.stderr

    # The same results as with the identity.
    report = json.loads(result.stdout)
    assert report["succeeded"] is True
    for task, path in zip(report["tasks"], DATA, strict=True):
        assert (task["state"], task["exit_code"]) == ("completed", 0)
        assert [tuple(pair) for pair in task["top"]] == reference_top(path.read_bytes(), 3)
        results = tmp_path / "results" / job_id / Path(task["input"]).name
        assert (results / f"{path.stem}_OUTPUT.txt").is_file()
        assert (results / f"{path.stem}_OUTPUT.json").is_file()

    batch = batch_client(stack_outputs)
    tasks = list(batch.list_tasks(job_id))
    assert len(tasks) == len(DATA)
    # The SAS lasts as long as the runner waits (--timeout 30m) plus the margin.
    lifetime = timedelta(minutes=30) + sas.MARGIN
    preparation = batch.get_job(job_id).job_preparation_task
    assert preparation is not None
    staged = preparation.resource_files or []
    application = f"/{stack_outputs.containers.application}/"
    assert all(application in urlsplit(resource.http_url).path for resource in staged)
    signatures = set()
    for task in tasks:
        assert "sig=" not in task.command_line
        (data,) = task.resource_files  # the program comes with the preparation task
        assert urlsplit(data.http_url).path.endswith(
            f"/{stack_outputs.containers.input}/{job_id}/{data.file_path}"
        )
        queries = []
        for resource in (data, *staged):  # each reads its one blob, nothing more
            assert resource.identity_reference is None
            query = _query(resource.http_url)
            assert (query["sp"], query["sr"]) == ("r", "b")
            queries.append(query)
        for output in task.output_files:  # writes into the output container, nothing more
            container = output.destination.container
            assert container.identity_reference is None
            assert urlsplit(container.container_url).path.endswith(
                f"/{stack_outputs.containers.output}"
            )
            query = _query(container.container_url)
            assert (query["sp"], query["sr"]) == ("w", "c")
            queries.append(query)
        for query in queries:
            expiry = _time(query["se"])
            assert before + lifetime - timedelta(seconds=1) <= expiry <= after + lifetime
            assert _time(query["st"]) <= before
            signatures.add(query["sig"])

    # No key or SAS in what the runner printed (an Azure stack has no keys to print).
    local = stack_outputs.local
    keys = (local.batchAccountKey, local.storageAccountKey) if local is not None else ()
    printed = result.stdout + result.stderr
    for secret in (*keys, "sig=", *signatures):
        assert secret not in printed
