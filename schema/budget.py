"""The execution budget of one request, enforced while it executes (SPEC rule 9).

The cost estimate (schema/cost.py) refuses expensive documents before they run; this is
the backstop for what an estimate cannot know — data longer than a declared bound, a slow
database — and for CPU-bound execution, which an `asyncio` timeout only sees at the next
`await`. graphql-core calls `execute_field` for every field of the response, so the
executor below counts fields there and, every `CHECK_EVERY` fields, reads the clock:

- past the deadline → the request stops with `TIMEOUT`;
- past the field cap → it stops with `RESPONSE_TOO_LARGE`;
- busy for longer than `SLICE_SECONDS` → the next field is resolved after one turn of the
  event loop, so `/healthz` and small requests are served while a heavy one runs.

A stop must end the whole operation, not one field: graphql-core turns every `Exception`
of a resolver into a located field error and goes on with the siblings, so the stop is a
`BaseException` that unwinds execution to the gateway, which answers with one error and
no data. Fields already scheduled in other tasks see the stopped budget and end at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

CHECK_EVERY = 256
SLICE_SECONDS = 0.02


class ExecutionStoppedError(BaseException):
    """The request ran past its budget. BaseException: see the module docstring."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ExecutionBudget:
    """What one request may still spend: estimated cost, resolved fields and time.

    The operations of a batched request share it (they share the request context), so a
    batch is bounded as one request."""

    def __init__(self, max_cost: int, max_fields: int, timeout_seconds: float) -> None:
        self.max_cost = max_cost
        self.max_fields = max_fields
        self.deadline = time.monotonic() + timeout_seconds
        self.timeout_seconds = timeout_seconds
        self.estimated = 0
        self.fields = 0
        self._next_check = CHECK_EVERY
        self._slice_start = time.monotonic()
        self.stopped: ExecutionStoppedError | None = None

    def charge(self, estimate: int) -> int:
        """Adds an operation's estimated cost; returns the request's total so far."""
        self.estimated += estimate
        return self.estimated

    def field(self) -> bool:
        """Counts one field. True when the executor should yield to the event loop first;
        raises ExecutionStoppedError when the budget is spent."""
        self.fields += 1
        if self.fields < self._next_check:
            return False
        self._next_check = self.fields + CHECK_EVERY
        now = time.monotonic()
        if now > self.deadline:
            self.stop("TIMEOUT", f"the request ran longer than {self.timeout_seconds:g} "
                                 "seconds and was stopped")
        if self.fields > self.max_fields:
            self.stop("RESPONSE_TOO_LARGE", f"the response would hold more than "
                                            f"{self.max_fields} fields")
        if now - self._slice_start > SLICE_SECONDS:
            self._slice_start = now
            return True
        return False

    def stop(self, code: str, message: str) -> None:
        self.stopped = ExecutionStoppedError(code, message)
        raise self.stopped

    def yielded(self) -> None:
        self._slice_start = time.monotonic()


class BudgetedExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's graphql-core executor, counting fields against the request's budget."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget: ExecutionBudget | None = getattr(self.context_value, "budget", None)

    def execute_field(self, parent_type: Any, source: Any, field_details_list: Any,
                      path: Any, position_context: Any) -> Any:
        budget = self.budget
        if budget is not None:
            if budget.stopped is not None:
                return Undefined  # another task stopped the request: end quietly
            if budget.field():
                return self._after_a_turn(budget, parent_type, source, field_details_list,
                                          path, position_context)
        return super().execute_field(parent_type, source, field_details_list, path,
                                     position_context)

    async def _after_a_turn(self, budget: ExecutionBudget, *args: Any) -> Any:
        await asyncio.sleep(0)
        budget.yielded()
        if budget.stopped is not None:
            return Undefined
        result = super().execute_field(*args)
        if self.is_awaitable(result):
            return await result
        return result
