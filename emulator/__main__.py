"""``python -m emulator --port P --data DIR``: serve the Batch emulator on loopback.

``--faults RATE`` makes that fraction of requests fail (see ``emulator.faults``), with
``--fault-seed``, ``--fault-kinds`` and ``--fault-log``; off by default.

``--core-quota N`` and ``--pool-quota N`` give the account the service's quotas (default:
none): a pool whose nodes need more cores than are left gets the nodes that fit and a
resize error (AccountCoreQuotaReached), and a pool beyond the pool quota is refused
(409 PoolQuotaReached). A node has the cores its VM size's name says (standard_d2s_v3: 2).

``--autoscale-interval 5s`` evaluates autoscale pools' formulas every that long (standing
for the pool's autoScaleEvaluationInterval, whose 5-minute minimum the API still enforces):
such pools start with no nodes and follow their formula (see ``emulator.state.autoscale``).
Without it an autoscale pool gets ``--autoscale-nodes`` fixed nodes (default: the CPUs),
and its formula is still evaluated (autoScaleRun, evaluateautoscale) without resizing it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn

from emulator import connections, faults
from emulator.app import DEFAULT_ACCOUNT, DEFAULT_KEY, Settings, create_app
from emulator.state import Quotas


def exposed(host: str) -> bool:
    """Whether binding ``host`` reaches beyond this machine: anything but loopback (a
    name counts, as it may resolve to any interface)."""
    if host.lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a count (0 or more)")
    return value


def interval(text: str) -> timedelta:
    """A local evaluation interval: seconds, or a number with s, m or h (``5s``, ``1m``)."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not an interval (5s, 1m)") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive interval")
    return timedelta(seconds=seconds)


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
    parser.add_argument(
        "--autoscale-interval",
        type=interval,
        metavar="DURATION",
        help="evaluate autoscale formulas every DURATION (5s) and scale pools to them "
        "(default: autoscale pools keep --autoscale-nodes)",
    )
    parser.add_argument("--request-log", type=Path, help="append one line per request here")
    parser.add_argument(
        "--core-quota",
        type=_count,
        metavar="N",
        help="cores the account's nodes may use in all; pools get the nodes that fit "
        "and a resize error (default: unlimited)",
    )
    parser.add_argument(
        "--pool-quota",
        type=_count,
        metavar="N",
        help="pools the account may have; one more is refused with PoolQuotaReached "
        "(default: unlimited)",
    )
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
        autoscale_interval=args.autoscale_interval,
        identities=tuple(args.identity),
        storage=args.storage,
        request_log=args.request_log,
        faults=injected,
        quotas=Quotas(cores=args.core_quota, pools=args.pool_quota),
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
