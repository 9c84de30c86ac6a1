"""The runner and the emulator's nodes retry storage requests after 0.5, 2.5, 4.5, 8.5,
16.5 and 32.5 s (give or take 1), as their docstrings promise: the first wait is short,
so one dropped request does not hold a job up for seconds. Driven through the storage
SDK's own pipeline, with a transport whose every request fails to connect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import HttpTransport
from azure.storage.blob import BlobClient, ExponentialRetry

from emulator.files import storage_retry as node_retry
from runner.clients import storage_retry as runner_retry

WAITS = (0.5, 2.5, 4.5, 8.5, 16.5, 32.5)


class Unreachable(HttpTransport):  # type: ignore[misc]
    """Every request fails to connect; the waits between them are recorded, not slept."""

    def __init__(self) -> None:
        self.sent = 0
        self.waits: list[float] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.sent += 1
        raise ServiceRequestError("connection refused")

    def sleep(self, duration: float) -> None:
        self.waits.append(duration)

    def open(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Unreachable:
        return self

    def __exit__(self, *args: object) -> None: ...


@pytest.mark.parametrize("policy", [runner_retry, node_retry], ids=["runner", "node"])
def test_the_waits_before_each_retry(policy: Callable[[], ExponentialRetry]):
    runs = []
    for _ in range(20):
        transport = Unreachable()
        blob = BlobClient(
            "https://account.blob.core.windows.net", "input", "a.txt",
            retry_policy=policy(), transport=transport,
        )  # fmt: skip
        with pytest.raises(ServiceRequestError):
            blob.get_blob_properties()
        assert transport.sent == len(WAITS) + 1  # the request and its 6 retries
        runs.append(transport.waits)
    for position, wait in enumerate(WAITS):
        waited = [waits[position] for waits in runs]
        assert all(max(0.0, wait - 1) <= w <= wait + 1 for w in waited), (wait, waited)
