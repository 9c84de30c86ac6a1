"""``python -m local_stack up|down|status``: the local stack as a program of its own.

The runner drives it this way (``python -m runner local ...`` and a submit with no
stack given), so neither imports the other. Progress and errors go to stderr; ``--json``
puts one document on stdout. Exit status: 0 done (status: the servers running),
3 the stack could not be started (status: a server is not running). ``up --faults RATE``
starts it with that fraction of requests failing (see ``stack``); ``up`` without it, with
none. ``up --core-quota N --pool-quota N`` gives the emulated account those quotas.
``up --autoscale`` makes the pool follow its autoscale formula, evaluated every few seconds
(see ``stack``); without it, the pool keeps fixed local nodes. An option ``up`` is not
given is back to its default on a running stack too, and ``up`` says what it changed.
``down --under DIR`` stops every stack in DIR and below it (``make clean``): it imports
only the standard library, so it runs with any ``python3``, without the venv.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from local_stack import home, servers

EXIT_STACK = 3


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _up(
    as_json: bool,
    log_requests: bool,
    faults: float,
    seed: int | None,
    kinds: str,
    core_quota: int | None = None,
    pool_quota: int | None = None,
    autoscale: bool = False,
) -> int:
    from local_stack import stack  # the Azure SDKs: not for down

    chosen = [kind.strip() for kind in kinds.split(",") if kind.strip()]
    try:
        outputs = stack.up(
            progress=_log,
            log_requests=log_requests,
            faults=faults,
            fault_seed=seed,
            fault_kinds=chosen,
            core_quota=core_quota,
            pool_quota=pool_quota,
            autoscale=autoscale,
        )
    except (stack.LocalStackError, servers.ServiceError) as error:
        _log(f"error: {error}")
        return EXIT_STACK
    if as_json:
        print(json.dumps(outputs.to_dict(), indent=2))
        return 0
    print(f"Batch:   {outputs.batchAccountEndpoint} (account {outputs.batchAccountName})")
    print(f"Storage: {outputs.blobEndpoint}")
    print(
        f"Pool:    {outputs.poolId}"
        + (f" (autoscale, evaluated every {home.AUTOSCALE_INTERVAL})" if autoscale else "")
    )
    print(f"Outputs: {home.default_paths().outputs}")
    setting = stack.fault_setting()
    if setting:
        print(f"Faults:  {_faults(setting)}")
    if core_quota is not None or pool_quota is not None:
        print(f"Quotas:  {_quotas({'core': core_quota, 'pool': pool_quota})}")
    return 0


def _faults(faults: dict[str, Any]) -> str:
    kinds = tuple(faults.get("kinds") or ())
    setting = servers.Faults(faults["rate"], faults["seed"], Path(faults["log"]), kinds)
    return home.describe_faults(setting, log=True)


def _quotas(quotas: dict[str, int | None]) -> str:
    """``cores 0, pools unlimited``; ``unlimited`` for neither."""
    if all(value is None for value in quotas.values()):
        return "unlimited"
    return ", ".join(
        f"{name}s {'unlimited' if value is None else value}" for name, value in quotas.items()
    )


def _autoscale(interval: str | None) -> str:
    if interval is None:
        return "off (the pool keeps fixed nodes)"
    return f"on (the pool follows its formula, evaluated every {interval})"


def _down(under: Path | None = None) -> int:
    if under is None:
        stopped = home.down()
        print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
        return 0
    found = home.down_under(under)
    for local, names in found.items():
        print(f"{local}: " + ("stopped " + ", ".join(names) if names else "nothing was running"))
    if not found:
        print(f"no local stack under {under}")
    return 0


def _status(as_json: bool) -> int:
    from local_stack import stack  # the Azure SDKs: not for down

    state = stack.status()
    if as_json:
        outputs = home.default_paths().outputs
        document = {**asdict(state), "outputs": str(outputs) if outputs.exists() else None}
        print(json.dumps(document, indent=2))
    else:
        shown = [("azurite", state.azurite), ("emulator", state.emulator)]
        if state.faults or state.fault_proxy:
            shown.insert(1, ("proxy", state.fault_proxy))
        for name, port in shown:
            print(f"{name:<9} " + (f"running on http://127.0.0.1:{port}" if port else "stopped"))
        for node_id, node_state in sorted(state.nodes.items()):
            print(f"  node {node_id}: {node_state}")
        print(f"{'faults':<9} " + (_faults(state.faults) if state.faults else "off"))
        print(f"{'quotas':<9} " + _quotas(state.quotas))
        print(f"{'autoscale':<9} " + _autoscale(state.autoscale))
    return 0 if state.running else EXIT_STACK


def _outputs() -> int:
    """Where a running stack's outputs are, from its pid files alone: what a runner asks
    before every job, answered in a few milliseconds (``status`` asks the emulator for its
    nodes, with the Azure SDK loaded to do it)."""
    paths = home.default_paths()
    ports = {name: home.running(paths, name) for name in ("azurite", "emulator", home.PROXY)}
    faults = home.applied_faults(paths) is not None
    up = home.serving(ports["azurite"], ports["emulator"], ports[home.PROXY], faults)
    found = paths.outputs if up and paths.outputs.exists() else None
    document = {
        "azurite": ports["azurite"],
        "emulator": ports["emulator"],
        "fault_proxy": ports[home.PROXY],
        "faults": faults,
        "outputs": str(found) if found else None,
    }
    print(json.dumps(document))
    return 0 if found else EXIT_STACK


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a count (0 or more)")
    return value


def _rate(text: str) -> float:
    rate = float(text)
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="The local stack: Azurite and the Batch emulator, provisioned like Azure.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start what is not running, provision, write outputs")
    up.add_argument("--json", action="store_true", help="print the stack outputs as JSON")
    up.add_argument("--log-requests", action="store_true", help="the emulator logs requests")
    up.add_argument(
        "--faults",
        type=_rate,
        default=0.0,
        metavar="RATE",
        help="fail this fraction of Batch and storage requests (default: none)",
    )
    up.add_argument(
        "--fault-seed", type=int, metavar="N", help="the faults' seed (default: random)"
    )
    up.add_argument(
        "--fault-kinds",
        default="",
        metavar="KINDS",
        help="comma-separated, of 500,503,429,reset,cut,partial (default: all; storage "
        "gets those Azure Storage answers with: 500,503,reset,cut)",
    )
    up.add_argument(
        "--core-quota",
        type=_count,
        metavar="N",
        help="the account's core quota: pools get the nodes that fit (default: unlimited)",
    )
    up.add_argument(
        "--pool-quota",
        type=_count,
        metavar="N",
        help="the account's pool quota (default: unlimited)",
    )
    up.add_argument(
        "--autoscale",
        action="store_true",
        help=f"the pool follows its formula, evaluated every {home.AUTOSCALE_INTERVAL} "
        "(default: fixed local nodes)",
    )
    down = commands.add_parser("down", help="stop both servers (their data stays)")
    down.add_argument(
        "--under",
        type=Path,
        metavar="DIR",
        help="stop every local stack in DIR and the folders below it (make clean)",
    )
    status = commands.add_parser("status", help="the servers' ports and the pool's nodes")
    status.add_argument("--json", action="store_true", help="one JSON document")
    commands.add_parser(
        "outputs", help="the outputs file of the running stack, as JSON (exit 3: not running)"
    )
    arguments = parser.parse_args(argv)
    if arguments.command == "up":
        given = [arguments.fault_seed is not None, bool(arguments.fault_kinds)]
        if any(given) and not arguments.faults:
            up.error("--fault-seed and --fault-kinds go with --faults RATE")
        return _up(
            arguments.json,
            arguments.log_requests,
            arguments.faults,
            arguments.fault_seed,
            arguments.fault_kinds,
            arguments.core_quota,
            arguments.pool_quota,
            arguments.autoscale,
        )
    if arguments.command == "down":
        return _down(arguments.under)
    if arguments.command == "outputs":
        return _outputs()
    return _status(arguments.json)


if __name__ == "__main__":
    sys.exit(main())
