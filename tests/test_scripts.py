"""Every README command works on a fresh clone: each script's setup path (bootstrap with
the extras it needs, then its program's imports and arguments) runs to its `--help`.
A benchmark once bootstrapped without the test extras and died on `import httpx`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The whole suite (`scripts/test`) runs tests, not a program with a --help; every other
# script is here.
SCRIPTS = ["bench", "bench-registry", "bench-trail", "bench-worst-case", "bench-subscriptions",
           "bench-load", "demo", "lock", "leak-hunt"]


def test_every_script_is_listed_or_runs_tests() -> None:
    present = {path.name for path in (ROOT / "scripts").iterdir() if path.is_file()}
    assert present == {*SCRIPTS, "bootstrap", "test"}


def test_leak_hunt_refuses_a_count_that_is_not_a_number_in_one_line() -> None:
    done = subprocess.run([str(ROOT / "scripts" / "leak-hunt"), "lots"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1] == (
        "leak-hunt: COUNT must be a positive whole number (see --help)")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_sets_itself_up_and_answers_help(script: str) -> None:
    done = subprocess.run([str(ROOT / "scripts" / script), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout.lower()
    assert "Traceback" not in done.stderr
