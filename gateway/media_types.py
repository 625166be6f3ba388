"""GraphQL over HTTP media types: `application/json` and the newer
`application/graphql-response+json`.

With `application/json` every response that reaches GraphQL is a 200 (clients of
that type read `errors`). A client that prefers `application/graphql-response+json`
gets that media type, and a request error — a document that does not parse or
validate, variables that do not coerce: no data at all — is a 400 without a
`data` entry, as the GraphQL-over-HTTP specification asks.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def _quality(accept: str, media_type: str) -> float:
    best = -1.0
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0].lower() not in (media_type, "*/*", "application/*"):
            continue
        q = 1.0
        for parameter in fields[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # An exact match outranks a wildcard at the same quality.
        best = max(best, q + (0.001 if fields[0].lower() == media_type else 0.0))
    return best


def prefers_graphql_response_json(accept: str | None) -> bool:
    if not accept or GRAPHQL_RESPONSE_JSON not in accept.lower():
        return False
    return _quality(accept, GRAPHQL_RESPONSE_JSON) >= _quality(accept, "application/json")


# Automatic Persisted Queries' answers stay 200 whatever the media type: Apollo's clients
# read them as the signal to send the document (gateway/persisted).
_APQ_CODES = frozenset({"PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_NOT_SUPPORTED"})


def _is_request_error(body: Any) -> bool:
    """No data and no error located in the execution: the request never ran."""
    if not isinstance(body, dict) or body.get("data") is not None or not body.get("errors"):
        return False
    if any((error.get("extensions") or {}).get("code") in _APQ_CODES
           for error in body["errors"]):
        return False
    return all("path" not in error for error in body["errors"])


def negotiate(response: Response, accept: str | None) -> Response:
    """Re-label a GraphQL JSON response for clients of the newer media type."""
    if not prefers_graphql_response_json(accept) or response.status_code != 200:
        return response
    if not response.headers.get("content-type", "").startswith("application/json"):
        return response
    body = response.body
    status = 200
    # Only a response that starts with null data can be a request error: parse just those.
    if body.startswith(b'{"data":null'):
        parsed = orjson.loads(body)
        if _is_request_error(parsed):
            parsed.pop("data", None)
            body, status = orjson.dumps(parsed), 400
    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in ("content-type", "content-length")}
    return Response(body, status_code=status, headers=headers,
                    media_type=f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8")
