"""/policy: the access matrix and the `.polar` sources, for auditors.

    /policy                       the matrix as one HTML page (the sources included)
    /policy/matrix.json           the matrix as JSON (`sisada policy matrix --format json`)
    /policy/sources/<file>.polar  one policy file as loaded, text/plain

Who may open it is policy (`allow_policy_page`, policies/policy_page.polar), asked per role
of the policy in force; `SISADA_POLICY_PAGE_PUBLIC` opens it to every caller, since the
policy is not secret. The caller is the bearer token's principal (AuthMiddleware): tokens
never travel in URLs, where logs and browser history would keep them.

Everything is generated from the policy in force and kept until the next one: a reloaded
policy (SIGHUP) is a different `LoadedPolicy` object, and the page follows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from gateway.http_guards import error_response
from gateway.policy_runtime import LoadedPolicy
from policies import Principal
from policies.matrix import access_matrix, to_html

ASGIApp = Callable[..., Any]

# The page needs nothing but its own inline styles: no script, no request anywhere else.
_HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# The answer depends on who asks (403 or the page): no shared cache may keep it.
_PRIVATE = {"Cache-Control": "private, no-cache", "Vary": "Authorization"}


@dataclass(frozen=True)
class _Rendered:
    loaded: LoadedPolicy
    roles: frozenset[str]
    html: bytes
    json: bytes
    sources: dict[str, bytes]


def _render(loaded: LoadedPolicy) -> _Rendered:
    matrix = access_matrix(loaded.policy, loaded.compiled)
    # Read once per loaded policy: the files as they were when this page was first built
    # after the load (an edit takes effect, here as everywhere, with the next reload).
    sources = {path.name: path.read_bytes() for path in loaded.policy.files}
    links = {"matrix.json": "policy/matrix.json",
             **{name: f"policy/sources/{name}" for name in sources}}
    page = to_html(matrix, links=links,
                   sources={n: t.decode("utf-8", "replace") for n, t in sources.items()})
    return _Rendered(loaded=loaded, roles=frozenset(matrix["policy_page"]),
                     html=page.encode("utf-8"),
                     json=orjson.dumps(matrix, option=orjson.OPT_INDENT_2),
                     sources=sources)


@dataclass
class _Cache:
    rendered: _Rendered | None = None


class PolicyPage:
    """The ASGI app behind one of the three paths (`view`: "html", "json" or "source");
    runs after AuthMiddleware. The views share one cache."""

    def __init__(self, state: Any, view: str = "html",
                 shared: PolicyPage | None = None) -> None:
        self.state = state
        self.view = view
        self._cache = shared._cache if shared is not None else _Cache()

    async def _current(self) -> _Rendered:
        loaded: LoadedPolicy = self.state.policy
        rendered = self._cache.rendered
        if rendered is None or rendered.loaded is not loaded:
            # Oso queries and file reads: off the event loop. Two first requests may both
            # build; the results are equal, the last one is kept.
            rendered = await run_in_threadpool(_render, loaded)
            self._cache.rendered = rendered
        return rendered

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = await self._respond(scope)
        await response(scope, receive, send)

    async def _respond(self, scope: dict[str, Any]) -> Response:
        if scope.get("method") not in ("GET", "HEAD"):
            return error_response(405, "method not allowed", "METHOD_NOT_ALLOWED",
                                  {"Allow": "GET, HEAD"})
        rendered = await self._current()
        principal: Principal = scope["sisada.principal"]
        if not (self.state.settings.policy_page_public or principal.role in rendered.roles):
            return self._refused(principal)
        if self.view == "json":
            return Response(rendered.json, media_type="application/json",
                            headers={**_PRIVATE, "X-Content-Type-Options": "nosniff"})
        if self.view == "source":
            # Only the files the policy in force loaded, by exact name: no path to walk.
            source = rendered.sources.get(scope.get("path_params", {}).get("name", ""))
            if source is None:
                return error_response(404, "not found", "NOT_FOUND")
            return Response(source, media_type="text/plain; charset=utf-8",
                            headers={**_PRIVATE, "X-Content-Type-Options": "nosniff"})
        return Response(rendered.html, media_type="text/html; charset=utf-8",
                        headers={**_PRIVATE, **_HTML_HEADERS})

    def _refused(self, principal: Principal) -> Response:
        # Says who decides, not what the page holds.
        if principal.role == self.state.policy.policy.anonymous_role:
            return error_response(401, "the policy page needs a bearer token",
                                  "UNAUTHENTICATED", {"WWW-Authenticate": 'Bearer realm="sisada"'})
        return error_response(403, "the policy does not open the policy page to this role",
                              "FORBIDDEN")


def policy_page_routes(state: Any, authenticated: Callable[[ASGIApp], ASGIApp]) -> list[Route]:
    """The /policy routes; `authenticated` wraps the page in the app's token check."""
    page = PolicyPage(state)
    return [Route("/policy", authenticated(page)),
            Route("/policy/matrix.json", authenticated(PolicyPage(state, "json", page))),
            Route("/policy/sources/{name}", authenticated(PolicyPage(state, "source", page)))]
