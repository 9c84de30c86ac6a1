"""``python -m runner``: see runner.cli.

Run by a Python without the runner's dependencies (the system's ``python3`` rather than
the project's ``.venv``), it says so in one line and how to get them, instead of a
traceback ending in ``No module named 'typer'``.
"""

import sys

try:
    from runner.cli import main
except ModuleNotFoundError as missing:
    if missing.name is None or missing.name.split(".")[0] == "runner":
        raise
    print(
        f"error: this Python ({sys.executable}) lacks the runner's dependencies (no module "
        f"{missing.name!r}): run `make venv` once, then `.venv/bin/python -m runner`, or "
        "`pip install -e .` into the Python you want",
        file=sys.stderr,
    )
    sys.exit(2)

main()
