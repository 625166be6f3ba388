"""What every resolver gets in `info.context`: who asks, what they may do, and the data."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from policies import Principal, RoleAccess
from policies.resources import RESOURCES
from resolvers.db import Database
from resolvers.identity import IdentitySource
from resolvers.loaders import Loaders
from resolvers.scopes import Condition, row_condition
from schema.budget import ExecutionBudget
from schema.errors import ForbiddenError
from schema.trail import PURPOSE_REQUIRED_MESSAGE, PurposeRequiredError

# Types whose rows the policy scopes; each resolver reads its condition from the context.
SCOPED_TYPES = tuple(RESOURCES)


@dataclass
class GraphQLContext:
    principal: Principal
    access: RoleAccess
    db: Database
    loaders: Loaders
    scopes: dict[str, Condition]
    # Fallback for code that runs outside an operation (see `redacted`).
    _redacted: set[tuple[str, str]] = field(default_factory=set)
    request: Any = None
    # A verified token was presented (the anonymous role has none).
    authenticated: bool = False
    # The role's readable fields by type, hoisted for the per-field hook.
    readable: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # What this request may still spend (cost, fields, time); shared by a batch's operations.
    budget: ExecutionBudget | None = None
    # Identity fields wanted below each field (schema.identity.wanted_fields), per request.
    wanted_identity: dict[Any, Any] = field(default_factory=dict)
    # The access trail: (type, field) pairs whose values this response records, and those
    # withheld (readable by the role, but no purpose it may state was given).
    recorded: frozenset[tuple[str, str]] = frozenset()
    # The recorded fields the field hook notes: those the registry does not answer (the
    # registry's are noted where their values arrive, schema.identity).
    hook_recorded: frozenset[tuple[str, str]] = frozenset()
    purpose_blocked: frozenset[tuple[str, str]] = frozenset()
    purpose: str | None = None
    # Set by a mutation that committed a live event (resolvers/outbox.py): the gateway then
    # wakes its outbox relay at once instead of at the next poll.
    events_written: bool = False

    @property
    def redacted(self) -> set[tuple[str, str]]:
        """(type, field) pairs hidden from this caller in the current operation.

        One HTTP request may carry a batch of operations that share this context and run
        concurrently, each in its own task: the set lives in a context variable that each
        operation sets when it starts (`begin_operation`), so one operation's redactions
        are not reported in another's response."""
        current = _REDACTED.get()
        return self._redacted if current is None else current

    def may_read(self, type_name: str, field_name: str) -> bool:
        """Readable in this request: by the role, and (recorded fields) under its purpose."""
        return field_name in self.readable.get(type_name, ())

    def require_readable(self, type_name: str, field_name: str) -> None:
        """Reject filtering, sorting or searching by a field the caller cannot read — and
        by a recorded one without a purpose the role may state (a search by name is a
        read of names: it needs the purpose as much as the names do)."""
        if (type_name, field_name) in self.purpose_blocked:
            raise PurposeRequiredError(PURPOSE_REQUIRED_MESSAGE)
        if not self.may_read(type_name, field_name):
            raise ForbiddenError(f"cannot filter or sort by {type_name}.{field_name}")


_REDACTED: ContextVar[set[tuple[str, str]] | None] = ContextVar("sisada_redacted",
                                                                default=None)


def begin_operation() -> None:
    """Start a fresh set of redactions for the operation running in this task."""
    _REDACTED.set(set())


# The name of the operation a request selected, as its parsed document spells it ("" when
# anonymous; None when the document did not parse or selects no operation). Set per
# operation in its own task (`note_operation`); the gateway's metrics label it.
_OPERATION: ContextVar[str | None] = ContextVar("sisada_operation", default=None)


def note_operation(name: str | None) -> None:
    _OPERATION.set(name)


def operation_name() -> str | None:
    return _OPERATION.get()


def build_context(
    principal: Principal,
    access: RoleAccess,
    db: Database,
    request: Any = None,
    authenticated: bool = False,
    budget: ExecutionBudget | None = None,
    identity: IdentitySource | None = None,
    request_id: str = "",
    *,
    readable: Mapping[str, frozenset[str]] | None = None,
    recorded: frozenset[tuple[str, str]] = frozenset(),
    hook_recorded: frozenset[tuple[str, str]] = frozenset(),
    purpose_blocked: frozenset[tuple[str, str]] = frozenset(),
    purpose: str | None = None,
) -> GraphQLContext:
    """`identity` is the central registry (resolvers.identity; none: identity fields are
    unavailable); `request_id` travels with every upstream request of this one.
    `readable` (default: the role's) is what the stated `purpose` leaves readable;
    `recorded` fields are noted for the access trail, `purpose_blocked` ones withheld
    with PURPOSE_REQUIRED (gateway/access_trail.py)."""
    scopes = {
        name: row_condition(name, access.row_filter(name, principal.area_level), principal)
        for name in SCOPED_TYPES
    }
    return GraphQLContext(
        principal=principal,
        access=access,
        db=db,
        loaders=Loaders(db, scopes, access.location_precision, identity, request_id),
        scopes=scopes,
        request=request,
        authenticated=authenticated,
        readable=access.readable if readable is None else readable,
        budget=budget,
        recorded=recorded,
        hook_recorded=hook_recorded,
        purpose_blocked=purpose_blocked,
        purpose=purpose,
    )
