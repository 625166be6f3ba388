"""README's configuration table names every setting of gateway/settings.py by the exact
variable an operator sets (`SISADA_…`, or the standard name of an OTEL_* or
PROMETHEUS_* one), and names no setting that does not exist: the table once missed
SISADA_RATE_LIMIT_KEY_PREFIX and SISADA_EVENT_BATCH_SIZE and cited WS_* without the prefix."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.add(str(alias.choices[0]))  # the variable's current name
        else:
            names.add(f"SISADA_{name.upper()}")
    return names


def configuration_rows() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Configuration\n")
    end = readme.index("\n## ", start + 1)
    return [line for line in readme[start:end].splitlines() if line.startswith("| `")]


def names_in_table() -> set[str]:
    """The variables each row names in its first column."""
    return {name for row in configuration_rows()
            for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def test_every_setting_has_a_row_in_the_readme() -> None:
    missing = env_names() - names_in_table()
    assert not missing, f"README.md's configuration table lacks {sorted(missing)}"


def test_every_row_of_the_readme_names_a_setting() -> None:
    unknown = names_in_table() - env_names()
    assert not unknown, f"README.md's configuration table names no setting {sorted(unknown)}"


def test_the_readme_cites_no_setting_without_its_prefix() -> None:
    readme = (ROOT / "README.md").read_text()
    bare = {f"`{name.removeprefix('SISADA_')}`" for name in env_names()
            if name.startswith("SISADA_WS_") or name.startswith("SISADA_EVENT_")}
    assert not [name for name in bare if name in readme]
