"""``download``: a job's results (only this job's), and with ``logs`` its tasks' logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner import results
from runner.clients import Clients


@dataclass(frozen=True)
class Downloaded:
    files: int
    destination: Path


def download(clients: Clients, job_id: str, out: Path | None, logs: bool) -> Downloaded:
    destination = results.destination(job_id, out)
    container = clients.container(clients.outputs.containers.output)
    return Downloaded(results.download(container, job_id, destination, logs=logs), destination)
