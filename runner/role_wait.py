"""Waiting out role propagation: an Azure role assignment takes effect within minutes
(up to about ten), and until then the service answers 403. ``doctor --wait-for-roles``
retries what such an answer refused, for a bounded time, saying once that it waits;
any other failure is not retried."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from azure.core.exceptions import HttpResponseError

T = TypeVar("T")

FIRST_PAUSE = 10.0
LONGEST_PAUSE = 30.0


def refused_for_access(error: BaseException) -> bool:
    """A 403 from Batch or storage: a role not (yet) granted, whatever its code
    (AuthorizationFailed, AuthorizationPermissionMismatch, InsufficientAccountPermissions)."""
    return isinstance(error, HttpResponseError) and error.status_code == 403


@dataclass
class RoleWait:
    """At most ``limit`` seconds in all, across every call it retries (0: no retry)."""

    limit: float = 0.0
    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _deadline: float | None = field(default=None, init=False)
    _said: bool = field(default=False, init=False)

    def call(self, action: Callable[[], T]) -> T:
        """``action()``, tried again after a 403 until the wait is spent; then its error."""
        pause = FIRST_PAUSE
        while True:
            try:
                return action()
            except HttpResponseError as error:
                if not refused_for_access(error) or self.limit <= 0:
                    raise
                if self._deadline is None:
                    self._deadline = self.clock() + self.limit
                left = self._deadline - self.clock()
                if left <= 0:
                    raise
                if not self._said:
                    self._said = True
                    self.say(
                        f"access refused (403): waiting up to {self.limit:.0f} s for role "
                        "assignments to propagate (Azure takes up to about 10 minutes)"
                    )
                self.sleep(min(pause, left))
                pause = min(pause * 2, LONGEST_PAUSE)
