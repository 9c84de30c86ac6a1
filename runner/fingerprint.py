"""What a job was submitted with, kept in the job's metadata, so that a resubmit with
the same --job-id can tell a resume (same inputs, same program) from a new request.

Recorded: the task program's name and content hash, its arguments (``--top`` is one),
the input set's digest (every input's name and MD5, in order), how many inputs share a
task, whether inputs are kept, and the content hashes of --requirements, --code and
--wheels. ``wait`` reads the same record to finish a job as
``submit`` would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.batch import models

from runner.inputs import Input
from runner.program import Program, script_blob_name

PREFIX = "runner."


@dataclass(frozen=True)
class Fingerprint:
    program: str
    script: str  # the staged script's blob name: its content hash and file name
    arguments: tuple[str, ...]
    inputs: str  # "<count>:<sha256>"
    keep_inputs: bool
    files_per_task: int = 1
    merge: str = ""  # ``merge.Merge.record()``; empty: no merge stage
    environment: tuple[tuple[str, str], ...] = ()  # ``Environment.record()``'s hashes
    # The inputs' bytes, for the report once the uploaded inputs are removed; no result
    # depends on it (None: a job submitted before it was recorded).
    input_bytes: int | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        program: Program,
        inputs: Sequence[Input],
        md5s: Mapping[str, bytes],
        keep: bool,
        files_per_task: int = 1,
        merge: str = "",
        environment: Mapping[str, str] | None = None,
    ) -> Fingerprint:
        digest = hashlib.sha256()
        for item in inputs:
            digest.update(item.relative.encode() + b"\0" + md5s[item.relative])
        return cls(
            program.name,
            script_blob_name(program.script),
            program.arguments,
            f"{len(inputs)}:{digest.hexdigest()}",
            keep,
            files_per_task,
            merge,
            _given(environment or {}),
            sum(item.size for item in inputs),
        )

    def metadata(self) -> list[models.BatchMetadataItem]:
        values = {
            "program": self.program,
            "script": self.script,
            "arguments": json.dumps(list(self.arguments)),
            "inputs": self.inputs,
            "keep-inputs": "true" if self.keep_inputs else "false",
            "files-per-task": str(self.files_per_task),
            **({"merge": self.merge} if self.merge else {}),
            **({"environment": json.dumps(dict(self.environment))} if self.environment else {}),
            **({"input-bytes": str(self.input_bytes)} if self.input_bytes is not None else {}),
        }
        return [models.BatchMetadataItem(name=PREFIX + k, value=v) for k, v in values.items()]

    @classmethod
    def read(cls, metadata: Sequence[Any] | None) -> Fingerprint | None:
        """The fingerprint a job's metadata holds; None for a job submitted without one."""
        values = {
            item.name[len(PREFIX) :]: item.value
            for item in metadata or []
            if item.name.startswith(PREFIX)
        }
        try:
            return cls(
                values["program"],
                values["script"],
                tuple(json.loads(values["arguments"])),
                values["inputs"],
                values["keep-inputs"] == "true",
                int(values.get("files-per-task", "1")),
                values.get("merge", ""),
                _given(json.loads(values.get("environment", "{}"))),
                int(values["input-bytes"]) if "input-bytes" in values else None,
            )
        except (KeyError, ValueError, TypeError, AttributeError):
            return None

    def differences(self, now: Fingerprint) -> list[str]:
        """What ``now`` asks that would change the results, in words."""
        found = []
        if (self.program, self.script) != (now.program, now.script):
            then_name, now_name = self.script.rsplit("/", 1)[-1], now.script.rsplit("/", 1)[-1]
            same_name = then_name == now_name
            found.append(
                f"the script ({now_name} has changed)"
                if same_name
                else f"the script ({then_name} then, {now_name} now)"
            )
        if self.arguments != now.arguments:
            found.append(
                f"the arguments ({' '.join(self.arguments)} then, {' '.join(now.arguments)} now)"
            )
        if self.inputs != now.inputs:
            then_count, now_count = self.inputs.split(":")[0], now.inputs.split(":")[0]
            found.append(
                f"the inputs ({then_count} files then, {now_count} now)"
                if then_count != now_count
                else "the inputs (same count, other names or contents)"
            )
        if self.files_per_task != now.files_per_task:
            found.append(
                f"the files per task ({self.files_per_task} then, {now.files_per_task} now)"
            )
        if self.merge != now.merge:
            found.append(
                f"the merge ({_merge_words(self.merge)} then, {_merge_words(now.merge)} now)"
            )
        then, now_given = dict(self.environment), dict(now.environment)
        for part, option in (
            ("requirements", "--requirements"),
            ("code", "--code"),
            ("wheels", "--wheels"),
        ):
            before, after = then.get(part, ""), now_given.get(part, "")
            if before != after:
                change = "given now" if not before else "not given now" if not after else "changed"
                found.append(f"the {part} ({option} {change})")
        return found  # --keep-inputs is not compared: it changes no result, only clean-up


def _given(record: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The parts of an environment record that were given, in a stable order."""
    return tuple(sorted((str(k), str(v)) for k, v in record.items() if v))


def _merge_words(record: str) -> str:
    if not record:
        return "none"
    document = json.loads(record)
    script = str(document.get("script", "")).rsplit("/", 1)[-1]
    return f"{script}{' partial' if document.get('partial') else ''}"
