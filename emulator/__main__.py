"""``python -m emulator --port P --data DIR``: serve the Batch emulator on loopback.

``--faults RATE`` makes that fraction of requests fail (see ``emulator.faults``), with
``--fault-seed``, ``--fault-kinds`` and ``--fault-log``; off by default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

import uvicorn

from emulator import connections, faults
from emulator.app import DEFAULT_ACCOUNT, DEFAULT_KEY, Settings, create_app


def exposed(host: str) -> bool:
    """Whether binding ``host`` reaches beyond this machine: anything but loopback (a
    name counts, as it may resolve to any interface)."""
    if host.lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True, help="state and node directories")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--account", default=DEFAULT_ACCOUNT, help="Batch account name")
    parser.add_argument(
        "--key",
        default=os.environ.get("EMULATOR_KEY", DEFAULT_KEY),
        help="the account's base64 shared key (or set EMULATOR_KEY, kept out of ps)",
    )
    parser.add_argument(
        "--storage",
        default=os.environ.get("EMULATOR_STORAGE"),
        help="storage connection string for resource and output files "
        "(or set EMULATOR_STORAGE, kept out of ps)",
    )
    parser.add_argument(
        "--identity", action="append", default=[], help="resource id of a pool identity"
    )
    parser.add_argument(
        "--autoscale-nodes", type=int, default=None, help="nodes of an autoscale pool (CPUs)"
    )
    parser.add_argument("--request-log", type=Path, help="append one line per request here")
    faults.add_arguments(parser, faults.KINDS)
    args = parser.parse_args(argv)
    injected = faults.from_arguments(args)
    if exposed(args.host):
        print(
            f"warning: --host {args.host} is not a loopback address: other machines can "
            "reach the emulator, whose key may be the well-known one",
            file=sys.stderr,
        )
    settings = Settings(
        data=args.data.resolve(),
        account=args.account,
        key=args.key,
        url=f"http://{args.host}:{args.port}",
        autoscale_nodes=args.autoscale_nodes,
        identities=tuple(args.identity),
        storage=args.storage,
        request_log=args.request_log,
        faults=injected,
    )
    if injected.on:
        print(injected.describe(), file=sys.stderr, flush=True)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="warning",
        http=connections.Protocol if injected.on else "auto",  # reset and cut need it
    )


if __name__ == "__main__":
    main()
