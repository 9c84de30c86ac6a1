"""The Pulumi program (``main: infra/`` in Pulumi.yaml): the Batch stack and its outputs.

The outputs are the contract the runner reads (contract.outputs.StackOutputs); exporting
anything else, or missing a key, stops the program here rather than at the first job.
"""

from __future__ import annotations

import dataclasses

import pulumi

from contract.outputs import StackOutputs
from infra import config
from infra.batch_stack import BatchStack

CONTRACT = tuple(f.name for f in dataclasses.fields(StackOutputs) if f.name != "local")

stack = BatchStack("runner", config.load())
outputs = stack.outputs()
if tuple(outputs) != CONTRACT:
    raise RuntimeError(f"stack outputs {tuple(outputs)} differ from the runner's {CONTRACT}")
for key, value in outputs.items():
    pulumi.export(key, value)
