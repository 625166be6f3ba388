"""Serve one benchmark variant: `python -m bench.serve VARIANT DATABASE_URL PORT`.

The registry (identity, upstream) comes from the environment, as in production:
`SISADA_REGISTRY_URL` (its /graphql) and `SISADA_REGISTRY_TOKEN` (the service credential).

Adds `/bench/statements`: how many SQL statements the variant has executed so far (the
driver reads it around sequential requests to count statements per query); with
`SISADA_BENCH_PROFILE=1`, `POST /bench/profile/start` and `POST /bench/profile/stop?path=F`
run cProfile over the requests in between and dump its stats to F."""

from __future__ import annotations

import cProfile
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import event
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.variants import build
from gateway.settings import Settings

BENCH_SECRET = "sisada-bench-secret-" + "b" * 40
# The service credential between the benchmark's gateways and its registry process.
BENCH_REGISTRY_TOKEN = "sisada-bench-registry-" + "r" * 40


def bench_settings(database_url: str, registry_url: str | None = None,
                   registry_token: str | None = None) -> Settings:
    return Settings(database_url=database_url, jwt_secret=BENCH_SECRET, jwks_url=None,
                    jwt_public_key=None, dev_key_file=Path("/nonexistent"), log_level="WARNING",
                    rate_limits_enabled=False, request_timeout_seconds=600,
                    registry_url=registry_url, registry_token=registry_token)


def main(variant: str, database_url: str, port: int) -> None:
    settings = bench_settings(database_url, os.environ.get("SISADA_REGISTRY_URL") or None,
                              os.environ.get("SISADA_REGISTRY_TOKEN") or None)
    app = build(variant, settings)
    engine = app.state.sisada.engine if hasattr(app.state, "sisada") else app.state.engine
    counter = {"n": 0}

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Timers of the process, not requests: the SQLite log checkpoint and the live
        # feeds' relay polling the event outbox.
        if not (statement.startswith("PRAGMA wal_checkpoint") or "event_outbox" in statement):
            counter["n"] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)

    async def statements(_request: Request) -> JSONResponse:
        return JSONResponse(counter)

    app.router.routes.insert(0, Route("/bench/statements", statements))
    if os.environ.get("SISADA_BENCH_PROFILE") == "1":
        for route in profiling_routes():
            app.router.routes.insert(0, route)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def profiling_routes() -> list[Route]:
    """cProfile over the event loop's thread between start and stop (everything the
    gateway does in Python; SQLite's driver thread and the network are not in it)."""
    box: dict[str, cProfile.Profile] = {}

    async def start(_request: Request) -> JSONResponse:
        box["profile"] = cProfile.Profile()
        box["profile"].enable()
        return JSONResponse({"profiling": True})

    async def stop(request: Request) -> JSONResponse:
        profile = box.pop("profile")
        profile.disable()
        profile.dump_stats(request.query_params["path"])
        return JSONResponse({"profiling": False})

    return [Route("/bench/profile/start", start, methods=["POST"]),
            Route("/bench/profile/stop", stop, methods=["POST"])]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
