"""The matrix as Markdown: the committed `docs/access-matrix.md`, diffed in review."""

from __future__ import annotations

from typing import Any

from policies.matrix.document import Cell, Table, document


def to_markdown(matrix: dict[str, Any]) -> str:
    title, intro, sections = document(matrix)
    lines = [f"# {title}", "", *_paragraphs(intro)]
    for section in sections:
        lines += [f"## {section.title}", "", *_paragraphs(section.text)]
        for caption, table in section.tables:
            if caption:
                lines += [f"### {caption}", ""]
            lines += [*_table(table), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _paragraphs(texts: list[str]) -> list[str]:
    return [line for text in texts for line in (text, "")]


def _table(table: Table) -> list[str]:
    return [_row(table.headers), "|" + "---|" * len(table.headers),
            *(_row(row) for row in table.rows)]


def _row(cells: list[Cell]) -> str:
    # A pipe inside a cell would end it: policy text never has one, but say so if it did.
    return "| " + " | ".join(c.text.replace("|", "\\|") for c in cells) + " |"
