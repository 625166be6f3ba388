"""SIGHUP to `sisada serve --workers 2` reloads the policy in every worker, in place
(uvicorn's own supervisor would replace the workers: live feeds dropped, and a broken
policy a traceback per replacement). A broken policy changes nothing and is no traceback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TEST_SECRET, Deployment, free_port
from prometheus_client.parser import text_string_to_metric_families

from policies.loader import POLICY_DIR

SISADA = Path(sys.executable).with_name("sisada")
QUERY = "{ foreigners(first: 3) { nodes { id sex nationality } } }"
RELOADS = "sisada_policy_reloads_total"


@contextlib.contextmanager
def two_workers(deployment: Deployment, tmp: Path, policy_dir: Path
                ) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    metrics = tmp / "metrics"
    metrics.mkdir()
    env = {**os.environ, "SISADA_DATABASE_URL": deployment.database_url,
           "SISADA_JWT_SECRET": TEST_SECRET, "SISADA_DEV_KEY_FILE": str(tmp / "dev-key"),
           "SISADA_RATE_LIMITS_ENABLED": "false", "SISADA_LOG_LEVEL": "info",
           "SISADA_POLICY_DIR": str(policy_dir), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    for name in ("SISADA_REDIS_URL", "SISADA_METRICS_TOKEN"):
        env.pop(name, None)
    log = tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(SISADA), "serve", "--port", str(port), "--workers",
                                    "2"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"serve did not start: {log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield base, process, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()}


def _reloads(base: str, outcome: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == RELOADS and sample.labels.get("outcome") == outcome)


def _wait_for_reloads(base: str, outcome: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while _reloads(base, outcome) < count:
        assert time.monotonic() < deadline, f"{outcome} reloads: {_reloads(base, outcome)}"
        time.sleep(0.2)


def _answers(base: str, token: str, n: int = 16) -> list[dict[str, Any]]:
    def one(_i: int) -> dict[str, Any]:
        # A connection each: the kernel deals them to both workers.
        with httpx.Client(timeout=30) as client:
            response = client.post(f"{base}/graphql", json={"query": QUERY},
                                   headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)
def test_sighup_reloads_the_policy_in_every_worker_in_place(
        deployment: Deployment, tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policy_dir,
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    token = deployment.token("setiabudi_police")
    with two_workers(deployment, tmp_path, policy_dir) as (base, process, log):
        workers = _children(process.pid)
        assert all(n["sex"] for a in _answers(base, token)
                   for n in a["data"]["foreigners"]["nodes"])

        foreigners = policy_dir / "foreigners.polar"
        text = foreigners.read_text()
        assert '"sex", ' in text
        foreigners.write_text(text.replace('"sex", ', "", 1))
        os.kill(process.pid, signal.SIGHUP)
        _wait_for_reloads(base, "ok", 2)
        for answer in _answers(base, token):
            assert all(n["sex"] is None and n["nationality"]
                       for n in answer["data"]["foreigners"]["nodes"])
            assert "sex" in answer["extensions"]["redacted"]["Foreigner"]

        foreigners.write_text("this is not polar (")
        os.kill(process.pid, signal.SIGHUP)
        _wait_for_reloads(base, "failed", 2)
        # The policy in force stays: sex still hidden, everything else served.
        for answer in _answers(base, token):
            assert all(n["sex"] is None and n["nationality"]
                       for n in answer["data"]["foreigners"]["nodes"])
        # The same two workers all along: reloaded in place, never replaced.
        assert _children(process.pid) == workers
        output = log.read_text(errors="replace")
        assert "Traceback" not in output
        assert output.count("policy.reload_failed") == 2
