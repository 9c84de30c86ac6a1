"""The policy pack's entry point: ``pulumi preview --policy-pack infra/policy``.

The CLI runs this file with ``runpy.run_path``, which puts this directory, not the
repository root, first on ``sys.path``; the rules are imported by their package name, as the
tests import them, so the root goes on the path too. ``PolicyPack(...)`` starts the analyzer's
gRPC server and never returns: it runs only when this file is the program.
"""

import sys
from pathlib import Path

_REPOSITORY = str(Path(__file__).resolve().parents[2])
if _REPOSITORY not in sys.path:
    sys.path.insert(0, _REPOSITORY)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from infra.policy.rules import PACK_NAME, policies  # noqa: E402


def main() -> None:
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=policies(),
        description="Security and cost rules for the azure-batch-runner stack.",
    )


if __name__ == "__main__":
    main()
