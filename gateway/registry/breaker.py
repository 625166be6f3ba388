"""A circuit breaker for one upstream: consecutive failures open it, a pause half-opens it,
one trial call decides.

Why not a library: purgatory (the well-kept asyncio breaker on PyPI) lets every call
through while half-open rather than one trial, reports "opened" until a call arrives
after the pause, raises one shared exception instance on every refusal, and times with
the wall clock. The machine below is the whole of what the gateway needs, on a monotonic
clock that tests can drive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one call. Only the trial permit's outcome decides a half-open circuit."""

    trial: bool


class CircuitBreaker:
    """Not thread-safe, and needs no lock: every transition happens between two awaits."""

    def __init__(
        self,
        failures: int,
        reset_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState, int], None] | None = None,
    ) -> None:
        self.failures_to_open = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._on_change = on_change
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        """What the next call would meet: an open circuit whose pause is over reads as
        half-open even before a call arrives (readiness probes see it recover)."""
        if self._state == "open" and self._pause_over():
            return "half_open"
        return self._state

    def admit(self) -> Permit | None:
        """A permit for one call, or None while the circuit is open (or its trial runs)."""
        if self._state == "open":
            if not self._pause_over():
                return None
            self._change("half_open")
        if self._state == "half_open":
            if self._trial_running:
                return None
            self._trial_running = True
            return Permit(trial=True)
        return Permit(trial=False)

    def succeeded(self, permit: Permit) -> None:
        if permit.trial:
            self._trial_running = False
            self._failures = 0
            self._change("closed")
        elif self._state == "closed":
            self._failures = 0
        # A call admitted before the circuit opened does not close it by finishing late.

    def failed(self, permit: Permit) -> None:
        if permit.trial:
            self._trial_running = False
            self._open()
        elif self._state == "closed":
            self._failures += 1
            if self._failures >= self.failures_to_open:
                self._open()

    def abandoned(self, permit: Permit) -> None:
        """The call ended without a verdict (cancelled): the next call may try instead."""
        if permit.trial:
            self._trial_running = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._change("open")

    def _pause_over(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_seconds

    def _change(self, state: BreakerState) -> None:
        if state == self._state:
            return
        self._state = state
        if self._on_change is not None:
            self._on_change(state, self._failures)
