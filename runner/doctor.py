"""``doctor``: is this stack ready to run jobs? Each check a line: ok, warn or FAIL, and
for what is not ok, the fix.

In order: the outputs load; the credential works; the Batch account answers; the pool
(its state, allocation, resize errors, autoscale formula and last run, nodes by state
with start-task failures); each container, and a probe blob written, read and deleted in
the input container; the pool identity. ``probe`` then runs a one-task job end to end,
and with an environment (``--requirements``, ``--wheels``) one whose preparation task
builds it on a node, as a submit's would: how long that took, or why it failed.
A check that cannot run because an earlier one failed is not run. The doctor looks
and never starts anything: a local stack that is down is a FAIL (see ``loader``).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from azure.batch import models
from azure.core.exceptions import AzureError, ResourceNotFoundError

from contract.outputs import OutputsError, StackOutputs
from runner import batch_job, diagnosis, preparation, stack
from runner.bundle import Environment
from runner.clients import Clients, connect, state_name
from runner.diagnosis import nodes_cause
from runner.inputs import InputError
from runner.local import LocalStackDown
from runner.role_wait import RoleWait, refused_for_access

OK, WARN, FAIL = "ok", "warn", "FAIL"
BATCH_SCOPE = "https://batch.core.windows.net//.default"
PROBE_TIMEOUT = 1800.0  # a pool that scales from 0 takes minutes for its first node
LOCAL_UP = "python -m runner local up"
BATCH_ROLE = "Azure Batch Data Contributor"  # what infra grants the runner's identity
STORAGE_ROLE = "Storage Blob Data Contributor"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{self.status:<4} {self.name}: {self.detail}{fix}"


def loader(
    stack_name: str | None, outputs: Path | None, log: Callable[[str], None] = print
) -> Callable[[], StackOutputs]:
    """The outputs the doctor checks, found as every command finds them (--stack,
    --outputs, else the local stack), but a local stack that is down is not started:
    ``run`` reports it."""
    return functools.partial(stack.resolve, stack_name, outputs, log, start=False)


def run(
    load: Callable[[], StackOutputs],
    probe: bool = False,
    clock: Callable[[], float] = time.monotonic,
    environment: Environment | None = None,
    roles: RoleWait | None = None,
) -> Iterator[Check]:
    """The checks, one at a time as they are made. ``roles``: how long a 403 from Batch or
    storage is retried while role assignments propagate (default: not at all)."""
    roles = roles or RoleWait()
    try:
        outputs = load()
    except LocalStackDown as error:
        yield Check("local stack", FAIL, str(error), f"start it: {LOCAL_UP}")
        return
    except OutputsError as error:
        yield Check("outputs", FAIL, str(error), "run 'pulumi up', or pass --outputs FILE")
        return
    yield Check("outputs", OK, f"pool {outputs.poolId} on {outputs.batchAccountEndpoint}")
    if outputs.local is not None:
        roles = RoleWait()  # the local keys have no roles to wait for: a 403 is final
    else:
        credential = _token()
        yield credential
        if credential.status == FAIL:
            return
    clients = connect(outputs)
    try:
        roles.call(lambda: clients.batch.get_pool(outputs.poolId, select=["id"]))
    except ResourceNotFoundError:
        pass  # the account answered: the pool check says the rest
    except AzureError as error:
        account = f"Batch account {outputs.batchAccountName}"
        fix = _refused_fix(error, BATCH_ROLE, account, roles, outputs.local is not None)
        yield Check("batch", FAIL, _first_line(error), fix or _credential_fix(outputs))
        return
    kind = "the local keys" if outputs.local else "Microsoft Entra ID"
    yield Check("batch", OK, f"account {outputs.batchAccountName} answers ({kind})")
    pool_ok = True
    for check in _pool(clients):
        pool_ok = pool_ok and check.status != FAIL
        yield check
    yield from _storage(clients, roles)
    if outputs.poolIdentityResourceId:
        name = outputs.poolIdentityResourceId.rsplit("/", 1)[-1]
        yield Check("identity", OK, f"tasks reach storage as the pool identity {name}")
    else:
        yield Check(
            "identity",
            WARN,
            "the pool has no managed identity: tasks get short-lived SAS URLs instead",
            "deploy the stack with its pool identity (the default)",
        )
    if probe:
        yield (
            _probe(clients, clock)
            if pool_ok
            else Check("probe", FAIL, "not run: the pool is not ready")
        )
    if probe and environment is not None and environment.needs_install:
        if not pool_ok:
            yield Check("environment", FAIL, "not run: the pool is not ready")
            return
        try:
            yield _environment_probe(clients, clock, environment)
        except (AzureError, InputError) as error:
            yield Check("environment", FAIL, _first_line(error))


def _pool(clients: Clients) -> Iterator[Check]:
    batch, pool_id = clients.batch, clients.outputs.poolId
    try:
        pool = batch.get_pool(pool_id)
    except ResourceNotFoundError:
        yield Check("pool", FAIL, f"pool {pool_id} does not exist", "run 'pulumi up' again")
        return
    state, allocation = state_name(pool.state), state_name(pool.allocation_state)
    current = (pool.current_dedicated_nodes or 0) + (pool.current_low_priority_nodes or 0)
    target = (pool.target_dedicated_nodes or 0) + (pool.target_low_priority_nodes or 0)
    detail = f"{state}, {allocation}, {current} of {target} nodes, {pool.vm_size}"
    yield Check("pool", OK if state == "active" else WARN, detail)
    for error in pool.resize_errors or []:
        yield Check(
            "pool resize",
            FAIL,
            f"{error.code}: {error.message}",
            _resize_fix(error.code or "", local=clients.outputs.local is not None),
        )
    if pool.enable_auto_scale:
        run = pool.auto_scale_run
        if run is not None and run.error is not None:
            yield Check(
                "autoscale", FAIL, f"{run.error.code}: {run.error.message}", "fix the formula"
            )
        else:
            results = (run.results or "").replace(";", "; ") if run else "not evaluated yet"
            yield Check("autoscale", OK, f"last run: {results}")
    nodes = list(batch.list_nodes(pool_id))
    counts = Counter(state_name(node.state) for node in nodes)
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    cause = nodes_cause(batch, pool, nodes) if nodes else None
    if cause is not None and cause.lasting:
        yield Check(
            "nodes", FAIL, cause.line, "see the start task's stderr; fix it, then reboot the nodes"
        )
    elif counts["starttaskfailed"] or counts["unusable"]:
        yield Check("nodes", WARN, shown, "reboot or reimage the failed nodes")
    else:
        yield Check(
            "nodes", OK, shown if nodes else "none now: the pool adds nodes when a job comes"
        )


def _storage(clients: Clients, roles: RoleWait) -> Iterator[Check]:
    names = clients.outputs.containers
    local = clients.outputs.local is not None
    for name in (names.application, names.input, names.output):
        try:
            exists = roles.call(clients.container(name).exists)
        except AzureError as error:
            account = f"storage account {clients.outputs.storageAccountName}"
            fix = _refused_fix(error, STORAGE_ROLE, account, roles, local)
            yield Check(
                f"container {name}",
                FAIL,
                _first_line(error),
                fix or _credential_fix(clients.outputs),
            )
            return
        if not exists:
            yield Check(f"container {name}", FAIL, "missing", "run 'pulumi up' again")
            return
    yield Check("containers", OK, f"{names.application}, {names.input} and {names.output}")

    def write_read_delete() -> bytes:
        next(iter(clients.container(names.application).list_blobs()), None)
        probe = clients.container(names.input).get_blob_client(f"doctor/{uuid.uuid4().hex}")
        probe.upload_blob(b"doctor")
        read = probe.download_blob().readall()
        probe.delete_blob()
        return read

    try:
        read = roles.call(write_read_delete)
    except AzureError as error:
        account = f"storage account {clients.outputs.storageAccountName}"
        fix = _refused_fix(error, STORAGE_ROLE, account, roles, local)
        yield Check("storage", FAIL, _first_line(error), fix or f"grant yourself {STORAGE_ROLE}")
        return
    ok = read == b"doctor"
    detail = f"wrote, read and deleted a probe blob in {names.input}; read {names.application}"
    yield Check("storage", OK if ok else FAIL, detail if ok else "the probe blob read back wrong")


def _probe(clients: Clients, clock: Callable[[], float]) -> Check:
    """A one-task job: the time until a node runs it, and the task's own time."""
    batch = clients.batch
    job_id = f"doctor-{uuid.uuid4().hex[:12]}"
    started = clock()
    batch.create_job(
        models.BatchJobCreateOptions(
            id=job_id, pool_info=models.BatchPoolInfo(pool_id=clients.outputs.poolId)
        )
    )
    try:
        batch.create_task(
            job_id,
            models.BatchTaskCreateOptions(id="probe", command_line="/bin/sh -c 'echo doctor'"),
        )
        while True:
            task = batch.get_task(job_id, "probe")
            if state_name(task.state) == "completed":
                break
            if clock() - started > PROBE_TIMEOUT:
                return Check("probe", FAIL, f"no node ran the task in {PROBE_TIMEOUT:.0f} s")
            time.sleep(0.5)
    finally:
        batch.begin_delete_job(job_id)
    info = task.execution_info
    if info is None or info.exit_code != 0 or info.start_time is None or info.end_time is None:
        failure = info.failure_info.message if info and info.failure_info else "no exit code"
        return Check("probe", FAIL, f"the probe task failed: {failure}")
    waited = seconds((info.start_time - task.creation_time).total_seconds())
    own = seconds((info.end_time - info.start_time).total_seconds())
    return Check("probe", OK, f"a node took the task after {waited}; it ran {own}")


def seconds(value: float) -> str:
    """A duration at the precision it has (the service's clock has microseconds):
    ``0.4 ms`` and ``12 ms`` under a second, ``2.41 s`` under a minute, ``412 s`` on."""
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s" if value < 60 else f"{value:.0f} s"


def _environment_probe(
    clients: Clients, clock: Callable[[], float], environment: Environment
) -> Check:
    """A one-task job with a preparation task building ``environment``, as a submit's
    would: how long the build (or reuse) took on a node, and that a task runs in it."""
    batch = clients.batch
    job_id = f"doctor-env-{uuid.uuid4().hex[:12]}"
    application = clients.container(clients.outputs.containers.application)
    staged = preparation.stage(
        application, None, environment, None, preparation.nodes_platform(clients)
    )
    access = batch_job.node_access(clients, None, None, 0)
    prepare, release = preparation.tasks(staged, batch_job.resources(clients, access), 0)
    started = clock()
    batch.create_job(
        models.BatchJobCreateOptions(
            id=job_id,
            pool_info=models.BatchPoolInfo(pool_id=clients.outputs.poolId),
            job_preparation_task=prepare,
            job_release_task=release,
        )
    )
    try:
        command = preparation.task_command(staged, ["-c", "import sys; print(sys.prefix)"])
        batch.create_task(job_id, models.BatchTaskCreateOptions(id="probe", command_line=command))
        while state_name(batch.get_task(job_id, "probe", select=["state"]).state) != "completed":
            cause = diagnosis.diagnose(batch, clients.outputs.poolId, job_id)
            if cause is not None and cause.ends_job:
                return Check("environment", FAIL, cause.line, "fix the requirements or wheels")
            if clock() - started > PROBE_TIMEOUT:
                return Check("environment", FAIL, f"no node ran the task in {PROBE_TIMEOUT:.0f} s")
            time.sleep(0.5)
        task = batch.get_task(job_id, "probe")
        (status,) = [
            s
            for s in batch.list_job_preparation_and_release_task_status(job_id)
            if task.node_info is not None and s.node_id == task.node_info.node_id
        ]
        said = _environment_line(clients, job_id, status)
    finally:
        batch.begin_delete_job(job_id)
    info, prepared = task.execution_info, status.job_preparation_task_execution_info
    if info is None or info.exit_code != 0:
        failure = info.failure_info.message if info and info.failure_info else "no exit code"
        return Check("environment", FAIL, f"the probe task failed in the environment: {failure}")
    took = (
        (prepared.end_time - prepared.start_time).total_seconds()
        if prepared is not None and prepared.end_time and prepared.start_time
        else 0.0
    )
    return Check(
        "environment", OK, f"{said} on node {status.node_id}: the preparation took {took:.2f} s"
    )


def _environment_line(
    clients: Clients, job_id: str, status: models.BatchJobPreparationAndReleaseTaskStatus
) -> str:
    """What the preparation said of the environment (built or reused), from its stdout."""
    info = status.job_preparation_task_execution_info
    path = f"{diagnosis.preparation_folder(job_id, info)}/stdout.txt"
    try:
        stdout = b"".join(
            clients.batch.download_node_file(clients.outputs.poolId, status.node_id or "", path)
        )
    except AzureError:
        return "environment ready"
    lines = stdout.decode(errors="replace").splitlines()
    return next((x for x in reversed(lines) if x.startswith("environment")), "environment ready")


def _token() -> Check:
    """Whether the runner's credential gets a token for Batch: GitHub OIDC in a workflow,
    else DefaultAzureCredential (az login, an identity)."""
    from runner import workflow_identity

    try:
        workflow_identity.credential().get_token(BATCH_SCOPE)
    except workflow_identity.WorkflowIdentityError as error:
        return Check("credential", FAIL, str(error), "see docs/gitops.md, step 5")
    except AzureError as error:
        return Check("credential", FAIL, _first_line(error), "sign in with 'az login'")
    how = " (GitHub OIDC)" if workflow_identity.wanted() else ""
    return Check("credential", OK, f"Microsoft Entra ID gave a token for Batch{how}")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _credential_fix(outputs: StackOutputs) -> str:
    if outputs.local:
        return "the local keys were refused: run 'python -m runner local up' again"
    return "sign in with 'az login' (or check the pipeline's OIDC) and your role assignments"


def _refused_fix(error: AzureError, role: str, scope: str, roles: RoleWait, local: bool) -> str:
    """For a 403, the role the runner's identity lacks, and how long it was waited for;
    for any other failure, or the local stack's keys refused, nothing (the caller's fix)."""
    if not refused_for_access(error) or local:
        return ""
    waited = (
        f"still refused after waiting {roles.limit:.0f} s: "
        if roles.limit > 0
        else "a new role assignment takes up to 10 minutes (--wait-for-roles 10m); else "
    )
    return f"{waited}grant the runner's identity {role} on the {scope}"


def _resize_fix(code: str, local: bool = False) -> str:
    if "Quota" in code and local:
        return f"a quota increase, on the local stack: {LOCAL_UP} (without --core-quota)"
    if "Quota" in code:
        return "request a quota increase for the VM family (Azure portal: Batch account, Quotas)"
    return "see the Batch documentation for this code"


def as_document(checks: list[Check]) -> dict[str, object]:
    return {
        "ok": all(check.status != FAIL for check in checks),
        "checks": [asdict(c) for c in checks],
    }
