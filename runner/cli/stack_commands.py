"""The verbs on a stack rather than a job: doctor, and the local stack's up, down and
status (a program of its own, local_stack, which these hand over to)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runner.cli.common import (
    EXIT_STACK,
    EXIT_USAGE,
    Command,
    JsonOption,
    Reply,
    app,
    fail,
    local_app,
    log,
    stall,
)
from runner.safe_text import dumps


@app.command(cls=Command)
def doctor(
    stack_name: Annotated[
        str | None,
        typer.Option("--stack", metavar="NAME", help="the Pulumi stack", show_default="local"),
    ] = None,
    outputs: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="a stack outputs JSON file", show_default="none"),
    ] = None,
    probe: Annotated[
        bool, typer.Option("--probe", help="also run a one-task job and time it end to end")
    ] = False,
    requirements: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="with --probe: also build this environment on a node, and time it"
        ),
    ] = None,
    wheels: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="with --requirements: a folder of wheels to install from"),
    ] = None,
    wait_for_roles: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="retry what a 403 refused for up to this long (10m), while role "
            "assignments propagate (Azure takes up to about 10 minutes)",
            show_default="no wait",
        ),
    ] = "0",
    as_json: JsonOption = False,
) -> None:
    """Check that the stack can run jobs, each check ok, warn or FAIL with its fix."""
    from runner import bundle
    from runner import doctor as doctoring
    from runner.inputs import InputError

    reply = Reply(as_json)
    if (requirements or wheels) and not probe:
        raise reply.fail(EXIT_USAGE, "--requirements and --wheels go with --probe")
    try:
        environment = bundle.check(requirements, [], wheels)
    except InputError as error:
        raise reply.fail(EXIT_USAGE, str(error)) from None
    from runner.role_wait import RoleWait

    roles = RoleWait(stall(wait_for_roles, reply, "--wait-for-roles"), say=log)
    checks = []
    load = doctoring.loader(stack_name, outputs, log)
    for check in doctoring.run(load, probe, environment=environment, roles=roles):
        checks.append(check)
        if not as_json:
            print(check.line(), flush=True)
    document = doctoring.as_document(checks)
    if as_json:
        print(dumps(document, indent=2))
    raise typer.Exit(0 if document["ok"] else EXIT_STACK)


@local_app.command("up", cls=Command)
def local_up(
    faults: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=1,
            metavar="FRACTION",
            help="fail this fraction of Batch and storage requests (0.05)",
        ),
    ] = None,
    fault_seed: Annotated[
        int | None,
        typer.Option(metavar="N", help="the faults' seed (with --faults)", show_default="random"),
    ] = None,
    fault_kinds: Annotated[
        str | None,
        typer.Option(
            metavar="KINDS",
            help="comma-separated, of 500,503,429,reset,cut,partial (with --faults)",
            show_default="all",
        ),
    ] = None,
    core_quota: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="the account's core quota: pools get the nodes that fit",
            show_default="unlimited",
        ),
    ] = None,
    pool_quota: Annotated[
        int | None,
        typer.Option(min=0, metavar="N", help="the account's pool quota", show_default="unlimited"),
    ] = None,
    autoscale: Annotated[
        bool,
        typer.Option("--autoscale", help="the pool follows its autoscale formula (every 5s)"),
    ] = False,
) -> None:
    """Start Azurite and the emulator (if not running), provision them, write outputs.
    Without --faults, faults are off (servers that ran with them are restarted); the
    same for the quotas (default: unlimited) and --autoscale (default: fixed nodes).
    On a running stack it applies what changed and says so in one line; a changed core
    quota or --autoscale creates the pool again (its running tasks are lost)."""
    from runner import local

    if faults is None and (fault_seed is not None or fault_kinds is not None):
        raise fail(EXIT_USAGE, "--fault-seed and --fault-kinds go with --faults RATE")
    options = [] if faults is None else ["--faults", f"{faults:g}"]
    options += [] if fault_seed is None else ["--fault-seed", str(fault_seed)]
    options += [] if fault_kinds is None else ["--fault-kinds", fault_kinds]
    options += [] if core_quota is None else ["--core-quota", str(core_quota)]
    options += [] if pool_quota is None else ["--pool-quota", str(pool_quota)]
    options += ["--autoscale"] if autoscale else []
    raise typer.Exit(local.run("up", *options))


@local_app.command("down", cls=Command)
def local_down() -> None:
    """Stop Azurite and the emulator. Their data stays in .local/."""
    from runner import local

    raise typer.Exit(local.run("down"))


@local_app.command("status", cls=Command)
def local_status() -> None:
    """Show the servers, the pool's node states, and the faults, quotas and autoscale the
    stack runs with."""
    from runner import local

    raise typer.Exit(local.run("status"))
