"""The stand-in central registry as a real process, for tests that need a real upstream.

    with RegistryProcess(database_url, token, tmp_path / "registry.jsonl") as registry:
        ... registry.url ... registry.requests() ...
        registry.kill(); registry.start()   # down and back, on the same port

Every request the registry receives is recorded (`sisada registry serve --record`), so a
test can prove which fields, which credential and which request id reached it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

STARTUP_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 5.0


class RegistryStartError(RuntimeError):
    """The registry process died or did not answer /healthz in time."""

    def __init__(self, reason: str, stderr: str) -> None:
        super().__init__(f"{reason}\n--- registry stderr ---\n{stderr}")
        self.reason = reason
        self.stderr = stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryProcess:
    """`sisada registry serve` in a subprocess on 127.0.0.1, one fixed port for its life."""

    def __init__(self, database_url: str, token: str, record_path: Path,
                 port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.token = token
        self.record_path = Path(record_path)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.env = env or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    # -- lifecycle --

    def start(self) -> RegistryProcess:
        """Start the process (again, on the same port) and wait until /healthz answers."""
        if self.running:
            return self
        self.record_path.touch()
        env = {**os.environ, "SISADA_REGISTRY_DATABASE_URL": self.database_url,
               "SISADA_REGISTRY_TOKEN": self.token, "SISADA_LOG_LEVEL": "warning", **self.env}
        # A file, not a pipe: a chatty process must never block on a full pipe nobody reads.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _reap)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "registry", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--record", str(self.record_path)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self._wait_healthy()
        return self

    def stop(self) -> None:
        """Terminate, and kill if it does not exit in time."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: the registry vanishes mid-whatever, as in a crash."""
        if self._process is None:
            return
        if self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._reap()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> RegistryProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # -- what it received --

    def requests(self) -> list[dict[str, Any]]:
        """Every /graphql request recorded so far, oldest first: time, authorization,
        request_id, query, variables, operation_name."""
        if not self.record_path.exists():
            return []
        lines = self.record_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def clear_requests(self) -> None:
        self.record_path.write_bytes(b"")

    def headers(self) -> dict[str, str]:
        """The headers of a caller holding the service credential."""
        return {"Authorization": f"Bearer {self.token}"}

    # -- internals --

    def _wait_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        health = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self.stderr_text()
                self._reap()
                raise RegistryStartError(f"registry exited with {self._exit_code}", stderr)
            try:
                if httpx.get(health, timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        stderr = self.stderr_text()
        self.kill()
        raise RegistryStartError(f"registry did not answer {health} within "
                                 f"{STARTUP_TIMEOUT_SECONDS:.0f} s", stderr)

    @property
    def _exit_code(self) -> int | None:
        return None if self._process is None else self._process.returncode

    def stderr_text(self, limit: int = 4000) -> str:
        """The last `limit` characters the process wrote to stderr (while it is running,
        or until stop() reaps it)."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-limit:]

    def _reap(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
