"""``python -m local_stack up|down|status``: the local stack as a program of its own.

The runner drives it this way (``python -m runner local ...`` and a submit with no
stack given), so neither imports the other. Progress and errors go to stderr; ``--json``
puts one document on stdout. Exit status: 0 done (status: both servers running),
3 the stack could not be started (status: a server is not running).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from local_stack import servers, stack

EXIT_STACK = 3


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _up(as_json: bool, log_requests: bool) -> int:
    try:
        outputs = stack.up(progress=_log, log_requests=log_requests)
    except (stack.LocalStackError, servers.ServiceError) as error:
        _log(f"error: {error}")
        return EXIT_STACK
    if as_json:
        print(json.dumps(outputs.to_dict(), indent=2))
        return 0
    print(f"Batch:   {outputs.batchAccountEndpoint} (account {outputs.batchAccountName})")
    print(f"Storage: {outputs.blobEndpoint}")
    print(f"Pool:    {outputs.poolId}")
    print(f"Outputs: {stack.default_paths().outputs}")
    return 0


def _down() -> int:
    stopped = stack.down()
    print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    return 0


def _status(as_json: bool) -> int:
    state = stack.status()
    running = state.azurite is not None and state.emulator is not None
    if as_json:
        outputs = stack.default_paths().outputs
        document = {**asdict(state), "outputs": str(outputs) if outputs.exists() else None}
        print(json.dumps(document, indent=2))
    else:
        for name, port in (("azurite", state.azurite), ("emulator", state.emulator)):
            print(f"{name:<9} " + (f"running on http://127.0.0.1:{port}" if port else "stopped"))
        for node_id, node_state in sorted(state.nodes.items()):
            print(f"  node {node_id}: {node_state}")
    return 0 if running else EXIT_STACK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="The local stack: Azurite and the Batch emulator, provisioned like Azure.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start what is not running, provision, write outputs")
    up.add_argument("--json", action="store_true", help="print the stack outputs as JSON")
    up.add_argument("--log-requests", action="store_true", help="the emulator logs requests")
    commands.add_parser("down", help="stop both servers (their data stays)")
    status = commands.add_parser("status", help="the servers' ports and the pool's nodes")
    status.add_argument("--json", action="store_true", help="one JSON document")
    arguments = parser.parse_args(argv)
    if arguments.command == "up":
        return _up(arguments.json, arguments.log_requests)
    if arguments.command == "down":
        return _down()
    return _status(arguments.json)


if __name__ == "__main__":
    sys.exit(main())
