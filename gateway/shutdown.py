"""Graceful shutdown: live feeds say "going away" before uvicorn drops their sockets.

On SIGTERM uvicorn stops accepting connections, lets requests in flight finish within
`timeout_graceful_shutdown` (SISADA_SHUTDOWN_GRACE_SECONDS), then runs the lifespan's
shutdown (trail thread flushed and closed, pools disposed). But it ends every open
WebSocket itself with 1012 (service restart) at the first step, before the app hears of
it. Subscribers should read 1001 (going away: reconnect to another replica), sent by the
feeds themselves — so the app answers the signal first, then hands it to uvicorn.

uvicorn installs its signal handlers before the lifespan starts, in every worker process
(`--workers`), so the lifespan can put its own in front of them and chain to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http_guards import error_response
from gateway.logging import log

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Closing frames go out in well under a second; a stuck socket must not delay the rest.
GOING_AWAY_TIMEOUT_SECONDS = 3.0


class GracefulShutdown:
    """The app's side of a shutdown: feeds go away first; a request the grace period cuts
    answers 503 SHUTTING_DOWN (retry elsewhere) instead of uvicorn's bare 500."""

    def __init__(self, going_away: Callable[[], Awaitable[None]]) -> None:
        self.going_away = going_away
        self.draining = False

    def answer_signals_first(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Run `going_away` on SIGTERM/SIGINT, then the handler that was there (uvicorn's).
        Returns the function that puts the previous handlers back. Where signals cannot be
        handled (a server run in a thread, as tests do), nothing changes."""
        installed: list[tuple[signal.Signals, Any]] = []
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # no server shutting down on it: keep the default behaviour
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._handler(loop, sig, previous))
                installed.append((sig, previous))

        def restore() -> None:
            for sig, previous in installed:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
                    signal.signal(sig, previous)

        return restore

    def _handler(self, loop: asyncio.AbstractEventLoop, sig: signal.Signals,
                 previous: Any) -> Callable[[], None]:
        started: list[asyncio.Task[None]] = []

        async def go_away_then_forward() -> None:
            log.info("gateway.shutting_down", signal=sig.name)
            try:
                async with asyncio.timeout(GOING_AWAY_TIMEOUT_SECONDS):
                    await self.going_away()
            except Exception as exc:  # the shutdown goes on whatever happened here
                log.warning("gateway.going_away_failed", error=repr(exc))
            previous(sig, None)

        def handle() -> None:
            self.draining = True
            if started:
                previous(sig, None)  # a second signal: uvicorn's force-quit path, at once
                return
            started.append(loop.create_task(go_away_then_forward()))

        return handle


class CutOnShutdown:
    """ASGI middleware: a request still running when the grace period ends is cancelled
    by uvicorn; it answers 503 SHUTTING_DOWN if nothing was sent yet. Outside a shutdown a
    cancellation is not ours to handle."""

    def __init__(self, app: ASGIApp, shutdown: GracefulShutdown) -> None:
        self.app = app
        self.shutdown = shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:
            if not self.shutdown.draining or started:
                raise
            log.warning("http.cut_by_shutdown")
            response = error_response(503, "The gateway shut down before the request "
                                           "finished; send it again.", "SHUTTING_DOWN",
                                      {"Retry-After": "1", "Connection": "close"})
            await response(scope, receive, send)
