"""The execution budget of one request, enforced while it executes (SPEC rule 9).

The cost estimate (schema/cost.py) refuses expensive documents before they run; this is
the backstop for what an estimate cannot know — data longer than a declared bound, a slow
database — and for CPU-bound execution, which an `asyncio` timeout only sees at the next
`await`. graphql-core calls `execute_field` for every field of the response, so the
executor below counts fields there and, every `CHECK_EVERY` fields, reads the clock:

- past the deadline → the request stops with `TIMEOUT`;
- past the field cap → it stops with `RESPONSE_TOO_LARGE`;
- busy for longer than `SLICE_SECONDS` → the lists being completed go on at the loop's
  next turn, so `/healthz` and small requests are served while a heavy one runs.

A stop must end the whole operation, not one field: graphql-core turns every `Exception`
of a resolver into a located field error and goes on with the siblings, so the stop is a
`BaseException` that unwinds execution to the gateway, which answers with one error and
no data. Fields already scheduled in other tasks see the stopped budget and end at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

CHECK_EVERY = 256
# Long enough that ordinary requests never pause (pausing costs a task per waiting list
# item), short enough that a heavy request leaves the loop to others ten times a second.
SLICE_SECONDS = 0.1


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

    def __init__(self, max_cost: int, max_fields: int, timeout_seconds: float,
                 readable: Mapping[str, frozenset[str]] | None = None,
                 max_text_bytes: int = 10_000_000) -> None:
        self.max_cost = max_cost
        self.max_text_bytes = max_text_bytes
        self.text_bytes = 0
        # The caller's readable fields, for the estimate (unreadable ones never run).
        self.readable = readable
        self.max_fields = max_fields
        self.deadline = time.monotonic() + timeout_seconds
        self.timeout_seconds = timeout_seconds
        self.estimated = 0
        self.fields = 0
        self.stopped: ExecutionStoppedError | None = None
        # Set when this request has held the event loop for a slice: lists being completed
        # pause after their current item until the loop's next turn.
        self.pausing = False
        # Lists paused mid-way, waiting for the next slice.
        self._waiters: list[asyncio.Future[None]] = []
        self._next_check = CHECK_EVERY
        self._slice_start = time.monotonic()

    def charge(self, estimate: int) -> int:
        """Adds an operation's estimated cost; returns the request's total so far."""
        self.estimated += estimate
        return self.estimated

    def field(self) -> None:
        """Counts one field; raises ExecutionStoppedError when the budget is spent."""
        self.fields += 1
        if self.fields < self._next_check:
            return
        self._next_check = self.fields + CHECK_EVERY
        now = time.monotonic()
        if now > self.deadline:
            self.stop("TIMEOUT", f"the request ran longer than {self.timeout_seconds:g} "
                                 "seconds and was stopped")
        if self.fields > self.max_fields:
            self.stop("RESPONSE_TOO_LARGE", f"the response would hold more than "
                                            f"{self.max_fields} fields")
        if not self.pausing and now - self._slice_start > SLICE_SECONDS:
            self.pausing = True
            # Runs after what is ready now, i.e. once the loop has polled for I/O again.
            asyncio.get_running_loop().call_soon(self._next_slice)

    def text(self, value: str) -> None:
        """Counts the bytes of one text value: fields are counted, but one field may carry
        kilobytes, and aliases repeat it."""
        self.text_bytes += len(value) if value.isascii() else len(value.encode("utf-8",
                                                                               "replace"))
        if self.text_bytes > self.max_text_bytes:
            self.stop("RESPONSE_TOO_LARGE", f"the response would hold more than "
                                            f"{self.max_text_bytes} bytes of text")

    def _next_slice(self) -> None:
        self.pausing = False
        self._slice_start = time.monotonic()
        self._wake_all()

    async def turn(self) -> None:
        """Wait until this request may hold the loop again. The lists woken together run
        in order until the slice is used up; the rest wait again."""
        while self.pausing and self.stopped is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def stop(self, code: str, message: str) -> None:
        self.stopped = ExecutionStoppedError(code, message)
        self._wake_all()
        raise self.stopped


class BudgetedExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's graphql-core executor, counting fields against the request's budget and
    pacing long lists: once the request has held the loop for a slice, a list being
    completed stops after its current item and goes on at the loop's next turn, so other
    requests are served in between. What one turn completes still loads in one DataLoader
    batch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget: ExecutionBudget | None = getattr(self.context_value, "budget", None)

    def execute_field(self, parent_type: Any, source: Any, field_details_list: Any,
                      path: Any, position_context: Any) -> Any:
        budget = self.budget
        if budget is not None:
            if budget.stopped is not None:
                return Undefined  # another task stopped the request: end quietly
            budget.field()
        return super().execute_field(parent_type, source, field_details_list, path,
                                     position_context)

    def complete_leaf_value(self, return_type: Any, result: Any) -> Any:  # type: ignore[override]
        budget = self.budget
        if budget is not None and result.__class__ is str:
            budget.text(result)
        return super().complete_leaf_value(return_type, result)

    def complete_iterable_value(self, item_type: Any, field_details_list: Any, info: Any,
                                path: Any, items: Iterable[Any], position_context: Any) -> Any:
        budget = self.budget
        if budget is None or self.get_stream_usage(field_details_list, path) is not None:
            return super().complete_iterable_value(item_type, field_details_list, info, path,
                                                   items, position_context)
        pending = _PendingList(iter(items))
        self._complete_items(budget, pending, item_type, field_details_list, info, path,
                             position_context)
        if not pending.paused and not pending.awaitable_indices:
            return pending.results
        return self._finish_list(budget, pending, item_type, field_details_list, info, path,
                                 position_context)

    def _complete_items(self, budget: ExecutionBudget, pending: _PendingList, item_type: Any,
                        field_details_list: Any, info: Any, path: Any,
                        position_context: Any) -> None:
        """Complete items until the list ends or the request must pause (as graphql-core's
        own loop does, item by item, minus @stream, which this schema does not offer)."""
        is_awaitable = self.is_awaitable
        results = pending.results
        pending.paused = False
        for item in pending.items:
            index = len(results)
            item_path = path.add_key(index, None)
            if is_awaitable(item):
                results.append(self.complete_awaitable_list_item_value(
                    item, item_type, field_details_list, info, item_path, position_context))
                pending.awaitable_indices.append(index)
            elif self.complete_list_item_value(item, results, item_type, field_details_list,
                                               info, item_path, position_context):
                pending.awaitable_indices.append(index)
            if budget.pausing:
                pending.paused = True
                return

    async def _finish_list(self, budget: ExecutionBudget, pending: _PendingList,
                           item_type: Any, field_details_list: Any, info: Any, path: Any,
                           position_context: Any) -> list[Any]:
        while pending.paused:
            await budget.turn()
            if budget.stopped is not None:
                return pending.results
            self._complete_items(budget, pending, item_type, field_details_list, info, path,
                                 position_context)
        results = pending.results
        indices = pending.awaitable_indices
        if len(indices) == 1:
            results[indices[0]] = await results[indices[0]]
        elif indices:
            awaited = await asyncio.gather(*(results[i] for i in indices))
            for index, value in zip(indices, awaited, strict=True):
                results[index] = value
        return results


class _PendingList:
    """A list being completed: the items left, what is done, which results await."""

    __slots__ = ("awaitable_indices", "items", "paused", "results")

    def __init__(self, items: Iterator[Any]) -> None:
        self.items = items
        self.results: list[Any] = []
        self.awaitable_indices: list[int] = []
        self.paused = False
