"""The command line: parsing and exit statuses only; the work is in the other modules.

Exit statuses: 0 success, 2 usage or bad input, 3 stack, auth or service error,
130 interrupted. Results go to stdout, progress and errors to stderr.
"""

from __future__ import annotations

import sys

import typer

from runner import local, services

EXIT_STACK = 3

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
local_app = typer.Typer(
    no_args_is_help=True, help="The local stack: Azurite and the Batch emulator."
)
app.add_typer(local_app, name="local")


def _progress(line: str) -> None:
    print(f"local: {line}", file=sys.stderr, flush=True)


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(EXIT_STACK)


@local_app.command("up")
def local_up() -> None:
    """Start Azurite and the emulator (if not running), provision them, write outputs."""
    try:
        outputs = local.up(progress=_progress)
    except (local.LocalStackError, services.ServiceError) as error:
        raise _fail(str(error)) from None
    print(f"Batch:   {outputs.batchAccountEndpoint} (account {outputs.batchAccountName})")
    print(f"Storage: {outputs.blobEndpoint}")
    print(f"Pool:    {outputs.poolId}")
    print(f"Outputs: {local.default_paths().outputs}")


@local_app.command("down")
def local_down() -> None:
    """Stop Azurite and the emulator. Their data stays in .local/."""
    stopped = local.down()
    print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")


@local_app.command("status")
def local_status() -> None:
    """Show the endpoints and the pool's node states."""
    state = local.status()
    for name, port in (("azurite", state.azurite), ("emulator", state.emulator)):
        print(f"{name:<9} " + (f"running on http://127.0.0.1:{port}" if port else "stopped"))
    for node_id, node_state in sorted(state.nodes.items()):
        print(f"  node {node_id}: {node_state}")
    if state.azurite is None or state.emulator is None:
        raise typer.Exit(EXIT_STACK)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
