"""Reproducible installs (issue 12, §2): uv.lock is the lock, requirements/*.txt its export
for installs without uv, and the environment the suite runs in holds exactly those versions.

A dependency added to pyproject.toml without `./scripts/lock` fails here: the lock records
the requirements it was made from.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())


def _locked_versions() -> dict[str, str]:
    return {canonicalize_name(p["name"]): p["version"] for p in LOCK["package"]
            if "version" in p}


def _pins(name: str) -> dict[str, Requirement]:
    pins = {}
    for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _pinned_version(requirement: Requirement) -> str:
    [specifier] = requirement.specifier
    assert specifier.operator == "==", requirement
    return specifier.version


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_lock_was_made_from_the_dependencies_pyproject_declares() -> None:
    [project] = [p for p in LOCK["package"] if p["name"] == PROJECT["name"]]
    locked = project["metadata"]["requires-dist"]
    locked_base = {canonicalize_name(r["name"]) for r in locked if "marker" not in r}
    locked_test = {canonicalize_name(r["name"]) for r in locked
                   if r.get("marker") == "extra == 'test'"}
    assert locked_base == _names(PROJECT["dependencies"]), "run ./scripts/lock"
    assert locked_test == _names(PROJECT["optional-dependencies"]["test"]), "run ./scripts/lock"


def test_the_exported_pins_are_the_locked_versions() -> None:
    locked = _locked_versions()
    for name in ("base", "test"):
        pins = _pins(name)
        assert pins, name
        for package, requirement in pins.items():
            assert locked[package] == _pinned_version(requirement), (name, package)
    base, test = _pins("base"), _pins("test")
    assert _names(PROJECT["dependencies"]) <= base.keys()
    assert _names(PROJECT["optional-dependencies"]["test"]) | base.keys() <= test.keys()


def test_the_suite_runs_on_exactly_the_locked_versions() -> None:
    wrong = []
    for package, requirement in _pins("test").items():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = version(package)
        except PackageNotFoundError:
            installed = None
        if installed != _pinned_version(requirement):
            wrong.append((package, _pinned_version(requirement), installed))
    assert not wrong, f"installed versions differ from the lock: {wrong}"

