"""Close codes and error codes of the live feeds, in one place (README lists them).

graphql-transport-ws fixes 4400, 4401, 4403, 4408, 4409 and 4429; the others are ours
(4000-4999 is the application's range), and 1009 is WebSocket's own "message too big".
"""

from __future__ import annotations

SUBPROTOCOL = "graphql-transport-ws"

BAD_MESSAGE = 4400          # not JSON, an unknown message type, a malformed message
UNAUTHORIZED = 4401         # subscribe before connection_ack; the token expired
FORBIDDEN = 4403            # connection_init with a token that is not valid
INIT_TIMEOUT = 4408         # no connection_init in time; a client silent past keep-alive
DUPLICATE_ID = 4409         # a subscription id already in use on this socket
TOO_MANY_INITS = 4429       # a second connection_init
SLOW_CONSUMER = 4413        # the send queue passed its bound: the client reads too slowly
TOO_MANY_SOCKETS = 4431     # the principal (or the replica) has too many sockets open
AUTH_UNAVAILABLE = 4503     # the token could not be checked right now: try again
MESSAGE_TOO_BIG = 1009      # a client message larger than ws_max_message_bytes
GOING_AWAY = 1001           # the gateway is shutting down

# `extensions.code` of a subscription's `error` message, beside the query codes.
TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
REPLAY_TOO_LONG = "REPLAY_TOO_LONG"
NOT_A_SUBSCRIPTION = "BAD_REQUEST"
