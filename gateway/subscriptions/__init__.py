"""Live feeds: GraphQL subscriptions over WebSocket (graphql-transport-ws) on /graphql.

- `connection` speaks the protocol on one socket: authentication, limits, keep-alive, the
  bounded send queue;
- `hub` decides which events reach which subscriber (the compiled row filter on the
  event's record) and renders each event once per group of like subscribers;
- `render` executes a subscriber's document against an event, trail included;
- `relay` reads the event outbox (resolvers/outbox.py) in order and wakes the other
  replicas through the event bus (gateway/event_bus).
"""

from __future__ import annotations

import asyncio
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_operation_ast,
    parse,
    visit,
)
from graphql.execution.values import get_argument_values, get_variable_values
from starlette.websockets import WebSocket
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from gateway.event_bus import bus_from_settings
from gateway.logging import log
from gateway.subscriptions import codes
from gateway.subscriptions.connection import Connection
from gateway.subscriptions.hub import FeedHub
from gateway.subscriptions.relay import Relay
from gateway.subscriptions.render import Renderer, Selection, Subscriber
from resolvers import outbox
from schema.subscriptions import FeedRequest, feed_request


class SubscriptionRefusedError(Exception):
    """A subscribe message that starts no feed: the `error` message's payload."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("subscription refused")
        self.errors = errors


def _refused(message: str, code: str) -> SubscriptionRefusedError:
    return SubscriptionRefusedError([{"message": message, "extensions": {"code": code}}])


class LiveFeeds:
    """The live side of one gateway process; built once, started by the lifespan."""

    def __init__(self, state: Any) -> None:
        self.state = state
        settings = state.settings
        self.renderer = Renderer(state)
        self.hub = FeedHub(state, self.renderer)
        self.bus = bus_from_settings(settings)
        self.relay = Relay(state.db, self.bus, self.hub.dispatch,
                           poll_seconds=settings.event_poll_seconds,
                           batch=settings.event_batch_size, on_ready=self._ready)
        self.connections: set[Connection] = set()
        self._sockets_by_principal: dict[tuple[Any, ...], int] = {}

    def _ready(self, last_id: int) -> None:
        self.hub.last_id = max(self.hub.last_id, last_id)

    async def start(self) -> None:
        await self.relay.start()
        log.info("events.start", bus=self.bus.name)

    async def going_away(self) -> None:
        """Every socket closes with 1001 (reconnect elsewhere); returns once they have."""
        for connection in list(self.connections):
            connection.close(codes.GOING_AWAY, "The gateway is shutting down")
        while self.connections:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for connection in list(self.connections):
            connection.close(codes.GOING_AWAY, "The gateway is shutting down")
        await self.relay.stop()

    def outbox_written(self) -> None:
        """A mutation committed on this replica: read the outbox now, tell the others."""
        self.relay.nudge()

    def policy_reloaded(self) -> None:
        self.hub.policy_reloaded()

    async def endpoint(self, websocket: WebSocket) -> None:
        await Connection(websocket, self).serve()

    # -- sockets per principal -----------------------------------------------------------

    def claim(self, key: tuple[Any, ...]) -> bool:
        count = self._sockets_by_principal.get(key, 0)
        if count >= self.state.settings.ws_max_sockets_per_principal:
            return False
        self._sockets_by_principal[key] = count + 1
        return True

    def release(self, key: tuple[Any, ...]) -> None:
        count = self._sockets_by_principal.get(key, 0) - 1
        if count > 0:
            self._sockets_by_principal[key] = count
        else:
            self._sockets_by_principal.pop(key, None)

    # -- a subscribe message -------------------------------------------------------------

    async def prepare(self, subscriber: Subscriber, selection: Selection
                      ) -> tuple[FeedRequest, Selection]:
        """What a subscribe message asks for, checked as an HTTP request is: parsed,
        validated and limited by the same schema and extensions, its root field allowed by
        the policy (else FORBIDDEN), its arguments checked like a query's. Also the
        selection its events render with (`live_selection`)."""
        settings = self.state.settings
        if len(selection.query.encode("utf-8", "surrogatepass")) > settings.max_document_bytes:
            raise _refused(f"the document is larger than {settings.max_document_bytes} bytes",
                           "DOCUMENT_TOO_LARGE")
        context = self.renderer.context(subscriber.principal, subscriber.purpose)
        try:
            # The probe: the whole pipeline with no event (the root field resolves to null).
            result, _reads = await self.renderer.execute(context, selection, None)
        except InvalidOperationTypeError as exc:
            raise _refused("only subscriptions are served over WebSocket; send queries and "
                           "mutations over HTTP", codes.NOT_A_SUBSCRIPTION) from exc
        except (CannotGetOperationTypeError, MissingQueryError) as exc:
            raise _refused("no subscription operation to run in the document",
                           codes.NOT_A_SUBSCRIPTION) from exc
        if result.errors:
            raise SubscriptionRefusedError([error.formatted for error in result.errors])
        schema = self.state.schema._schema
        document = parse(selection.query)
        operation = get_operation_ast(document, selection.operation_name)
        field = _root_field(document, operation)
        if operation is None or field is None or schema.subscription_type is None:
            raise _refused("no subscription field selected", codes.NOT_A_SUBSCRIPTION)
        variables = get_variable_values(schema, operation.variable_definitions or (),
                                        selection.variables or {})
        if isinstance(variables, list):
            raise SubscriptionRefusedError([error.formatted for error in variables])
        definition = schema.subscription_type.fields[field.name.value]
        try:
            request = feed_request(context, field.name.value,
                                   get_argument_values(definition, field, variables))
        except GraphQLError as error:
            raise SubscriptionRefusedError([error.formatted]) from error
        return request, live_selection(selection, document, field)


# What `after` reads while an event renders: the root field resolves to the event, so the
# value never counts; it is only one value for every subscriber.
RENDERED_AFTER = "0"


class _VariableUses(Visitor):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.count = 0

    def enter_variable(self, node: VariableNode, *_args: object) -> None:
        if node.name.value == self.name:
            self.count += 1


def live_selection(selection: Selection, document: DocumentNode, field: FieldNode
                   ) -> Selection:
    """The selection with the variable that only carries the root field's `after` set to
    one value for everyone (kept, not dropped: a document may declare it non-null).

    `after` shapes where a subscription starts (FeedRequest.after), never how an event
    renders (the root field resolves to the event). Left in, every client resuming from
    its own last id — as the graphql-ws snippet does — would key a group of its own, and
    the work per event would grow with the reconnected subscribers instead of the groups.
    A variable used anywhere else in the document stays: it may shape the rendering."""
    variables = selection.variables
    name = next((argument.value.name.value for argument in field.arguments or ()
                 if argument.name.value == "after" and isinstance(argument.value, VariableNode)),
                None)
    if not variables or name is None or name not in variables:
        return selection
    uses = _VariableUses(name)
    visit(document, uses)
    if uses.count != 2:  # its definition and `after`, nothing else
        return selection
    return Selection(selection.query, {**variables, name: RENDERED_AFTER},
                     selection.operation_name)


def _root_field(document: DocumentNode,
                operation: OperationDefinitionNode | None) -> FieldNode | None:
    """The one root field of a subscription (validation allows exactly one), through
    fragments."""
    if operation is None:
        return None
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}

    def first(selection_set: SelectionSetNode, seen: frozenset[str]) -> FieldNode | None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if not selection.name.value.startswith("__"):
                    return selection
            elif isinstance(selection, InlineFragmentNode):
                found = first(selection.selection_set, seen)
                if found is not None:
                    return found
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    found = first(fragment.selection_set, seen | {name})
                    if found is not None:
                        return found
        return None

    return first(operation.selection_set, frozenset())


__all__ = ["LiveFeeds", "SubscriptionRefusedError", "outbox"]
