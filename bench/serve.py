"""Serve one benchmark variant: `python -m bench.serve VARIANT DATABASE_URL PORT`.

Adds `/bench/statements`: how many SQL statements the variant has executed so far (the
driver reads it around sequential requests to count statements per query)."""

from __future__ import annotations

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


def bench_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, jwt_secret=BENCH_SECRET, jwks_url=None,
                    jwt_public_key=None, dev_key_file=Path("/nonexistent"), log_level="WARNING",
                    rate_limits_enabled=False, request_timeout_seconds=600)


def main(variant: str, database_url: str, port: int) -> None:
    app = build(variant, bench_settings(database_url))
    engine = app.state.sisada.engine if hasattr(app.state, "sisada") else app.state.engine
    counter = {"n": 0}

    def count(*_args: Any) -> None:
        counter["n"] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)

    async def statements(_request: Request) -> JSONResponse:
        return JSONResponse(counter)

    app.router.routes.insert(0, Route("/bench/statements", statements))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
