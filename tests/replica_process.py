"""A gateway replica as a real process: `sisada serve` over a deployment's data and registry.

    with ReplicaProcess(deployment, {"SISADA_EVENT_BUS": "redis"}) as replica:
        httpx.get(f"{replica.base}/healthz") ...
        replica.signal(signal.SIGTERM); replica.wait() ...

Started and stopped by its own pid (SIGTERM, then SIGKILL); its stderr goes to a file,
never a pipe nobody reads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
from conftest import REGISTRY_TOKEN, TEST_SECRET, free_port

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 30.0
STOP_SECONDS = 10.0


class ReplicaProcess:
    def __init__(self, deployment: Any, env: dict[str, str | None] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        values: dict[str, str | None] = {
            "SISADA_DATABASE_URL": deployment.database_url,
            "SISADA_JWT_SECRET": TEST_SECRET,
            "SISADA_REGISTRY_URL": deployment.settings.registry_url or "",
            "SISADA_REGISTRY_TOKEN": REGISTRY_TOKEN,
            "SISADA_RATE_LIMITS_ENABLED": "false",
            "SISADA_LOG_LEVEL": "warning",
            **(env or {}),
        }
        # None removes a variable the test's own environment may hold.
        self.env = {k: v for k, v in {**os.environ, **values}.items() if v is not None}
        for name, value in values.items():
            if value is None:
                self.env.pop(name, None)
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def __enter__(self) -> ReplicaProcess:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), *self.args], cwd=ROOT, env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"replica exited: {self.stderr()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("replica did not answer /healthz")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = STOP_SECONDS) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(STOP_SECONDS)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
