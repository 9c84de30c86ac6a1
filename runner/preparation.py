"""A job's preparation and release tasks, and the command lines of its tasks.

Every job the runner creates has a job preparation task: on each node, once, before the
node's first task of the job, Batch downloads the program bundle (runner/bundle.py), the
wheels and uv, and runs task/prepare.py, which unpacks the program and builds or reuses
the job's environment in the node's shared folder. The job's tasks wait for it
(waitForSuccess) and then run the unpacked program with that environment's Python, so a
task downloads only its inputs. When the job ends, its release task removes the bundle
from each node; environments stay for the next job that needs the same one.

Task command lines reach the preparation's folder through ``AZ_BATCH_JOB_PREP_WORKING_DIR``
and so run under ``/bin/sh -c`` (Batch runs a command line without a shell); everything
that comes from a user (file names, arguments) is quoted.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from azure.batch import models
from azure.storage.blob import ContainerClient

from runner import bundle, staging, uv_binary
from runner.bundle import PROGRAM_DIR, Environment
from runner.clients import Clients

PREPARE = Path(__file__).resolve().parent.parent / "task" / "prepare.py"
PREP_DIR = "AZ_BATCH_JOB_PREP_WORKING_DIR"
PREPARE_TIMEOUT = timedelta(minutes=30)
"""How long one run of the preparation may take: a large install, not a hung one."""
PREPARATION_ID = "jobpreparation"  # the service's default ids, named for the node paths
RELEASE_ID = "jobrelease"


ResourceMaker = Callable[[str, str, str | None], models.ResourceFile]
"""(blob name in the application container, path on the node, file mode) -> a resource
file the node can read: with the pool's identity, or a SAS URL (runner/batch_job.py)."""


@dataclass(frozen=True)
class Staged:
    """What the preparation task downloads, by blob name in the application container,
    and the file names the tasks run."""

    prepare: str
    bundle: str
    wheels: tuple[tuple[str, str], ...] = ()  # (blob, file name)
    uv: str | None = None
    script: str = ""  # the program's file name in program/
    wrapper: str | None = None  # each.py's, when inputs are packed
    folders: tuple[str, ...] = ()
    """The folders a task of one input creates before its program runs: those its
    arguments name (``{output_dir}``, ``{merge_dir}``), as each.py does for each input of
    a packed task, so a script may write into them as it finds them."""


def nodes_platform(clients: Clients) -> uv_binary.Platform:
    """The platform the stack's nodes run on: this machine's on the local stack, else
    the pool's (Linux, on its VM size's architecture)."""
    if clients.outputs.local is not None:
        return uv_binary.this_machine()
    pool = clients.batch.get_pool(
        clients.outputs.poolId, select=["vmSize", "virtualMachineConfiguration"]
    )
    configuration = pool.virtual_machine_configuration
    agent = configuration.node_agent_sku_id if configuration is not None else ""
    return uv_binary.of_pool(pool.vm_size or "", agent or "")


def stage(
    application: ContainerClient,
    script: Path | None,
    environment: Environment,
    wrapper: Path | None = None,
    platform: uv_binary.Platform | None = None,
    folders: Sequence[str] = (),
) -> Staged:
    """Upload what is missing (everything goes by content hash, so only what changed is
    sent); ``platform`` is the nodes' when the environment needs an install; ``folders``:
    what a task of one input creates before it runs the program (``Staged.folders``)."""
    built = bundle.build(script, environment, wrapper)
    staging.upload_bytes_once(application, built.blob, built.data)
    for wheel in environment.wheels:
        staging.upload_file_once(application, wheel.blob, wheel.path)
    uv = None
    if environment.needs_install:
        packed, digest = uv_binary.compressed(platform or uv_binary.this_machine())
        uv = f"tools/uv/{digest}/uv.gz"
        staging.upload_file_once(application, uv, packed)
    return Staged(
        prepare=staging.upload_script(application, PREPARE),
        bundle=built.blob,
        wheels=tuple((wheel.blob, f"wheels/{wheel.name}") for wheel in environment.wheels),
        uv=uv,
        script=script.name if script else "",
        wrapper=wrapper.name if wrapper else None,
        folders=tuple(folders),
    )


JobTasks = tuple[models.BatchJobPreparationTask, models.BatchJobReleaseTask]


def tasks(staged: Staged, resource: ResourceMaker, retries: int) -> JobTasks:
    """The job's preparation task (``resource`` turns a blob name and a node path into a
    resource file the node can read) and its release task."""
    files = [
        resource(staged.prepare, PREPARE.name, "0755"),
        resource(staged.bundle, "bundle.tar.gz", None),
        *(resource(blob, path, None) for blob, path in staged.wheels),
    ]
    if staged.uv is not None:
        files.append(resource(staged.uv, "uv.gz", None))
    preparation = models.BatchJobPreparationTask(
        id=PREPARATION_ID,
        command_line=f"python3 {PREPARE.name} prepare",
        resource_files=files,
        wait_for_success=True,
        # Files survive a reboot, so a prepared node stays prepared.
        rerun_on_node_reboot_after_success=False,
        constraints=models.BatchTaskConstraints(
            max_task_retry_count=retries, max_wall_clock_time=PREPARE_TIMEOUT
        ),
    )
    release = models.BatchJobReleaseTask(
        id=RELEASE_ID,
        command_line=shlex.join(
            ["/bin/sh", "-c", f'exec python3 "${PREP_DIR}/{PREPARE.name}" release']
        ),
    )
    return preparation, release


def task_command(staged: Staged, arguments: Sequence[str], in_process: bool = False) -> str:
    """The command line of a task running the staged program on ``arguments`` (already
    expanded), through each.py when inputs are packed (which creates each input's
    folders), else after creating the folders its arguments name (``staged.folders``)."""
    program = f'"${PREP_DIR}/{PROGRAM_DIR}/"'
    script = program + shlex.quote(staged.script)
    if staged.wrapper is not None:
        inside = " --in-process" if in_process else ""
        run = f"python {program}{shlex.quote(staged.wrapper)}{inside} {script}"
    elif staged.script.endswith(".py"):
        run = f"python {script}"
    elif staged.script:
        run = script
    else:  # no script: the environment's python, on the arguments alone
        run = "python"
    tail = f" {shlex.join(arguments)}" if arguments else ""
    folders = staged.folders if staged.wrapper is None else ()
    made = f"mkdir -p -- {shlex.join(folders)} && " if folders else ""
    inner = f'{made}PATH="${PREP_DIR}/env/bin:$PATH" exec {run}{tail}'
    return shlex.join(["/bin/sh", "-c", inner])
