"""The matrix as one self-contained HTML page: inline styles, no script, no external asset
(the gateway serves it under a Content-Security-Policy that allows nothing else)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

from policies.matrix.document import Cell, Table, document

_CODE = re.compile(r"`([^`]+)`")

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 86rem;
       padding: 0 1rem; color: #1d232b; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccd3db; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
code { background: #eef1f4; padding: 0 .25em; border-radius: 3px; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: .3rem 0 1rem; }
th, td { border: 1px solid #ccd3db; padding: .2rem .5rem; text-align: left;
         vertical-align: top; }
thead th { background: #f3f5f7; position: sticky; top: 0; }
table.fields td.yes { background: #e3f4e6; color: #14532d; text-align: center; }
table.fields td.no { color: #8a939c; text-align: center; }
table.fields thead th + th { writing-mode: vertical-rl; transform: rotate(180deg); }
table.fields td:first-child { min-width: 13rem; }
td.recorded { font-weight: 600; }
table.scope td.none { color: #8a939c; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; }
summary { cursor: pointer; font-family: monospace; }
"""


def to_html(matrix: dict[str, Any], links: Mapping[str, str] | None = None,
            sources: Mapping[str, str] | None = None) -> str:
    """The page; `links` (label → URL) adds a navigation bar, `sources` (file name → text)
    the `.polar` files themselves, so one page read in a browser holds everything."""
    title, intro, sections = document(matrix)
    parts = ["<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>",
             "<body>", f"<h1>{escape(title)}</h1>"]
    if links:
        parts.append("<nav>" + "".join(f'<a href="{escape(url)}">{escape(label)}</a>'
                                       for label, url in links.items()) + "</nav>")
    parts += [f"<p>{_inline(text)}</p>" for text in intro]
    for section in sections:
        parts.append(f'<section id="{escape(section.anchor)}">')
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts += [f"<p>{_inline(text)}</p>" for text in section.text]
        for caption, table in section.tables:
            if caption:
                parts.append(f"<h3>{escape(caption)}</h3>")
            parts.append(_table(table, caption))
        parts.append("</section>")
    if sources:
        parts += ['<section id="sources">', "<h2>Policy sources</h2>"]
        parts += [f'<details id="source-{escape(name)}"><summary>{escape(name)}</summary>'
                  f"<pre>{escape(text)}</pre></details>" for name, text in sources.items()]
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _inline(text: str) -> str:
    return _CODE.sub(r"<code>\1</code>", escape(text))


def _table(table: Table, caption: str) -> str:
    data = f' data-caption="{escape(caption)}"' if caption else ""
    css = f' class="{escape(table.css)}"' if table.css else ""
    head = "".join(_cell("th", c) for c in table.headers)
    body = "\n".join("<tr>" + "".join(_cell("td", c) for c in row) + "</tr>"
                     for row in table.rows)
    return (f"<table{css}{data}>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{body}\n</tbody>\n</table>")


def _cell(tag: str, cell: Cell) -> str:
    attrs = "".join(f' data-{name}="{escape(value)}"' for name, value in cell.data.items())
    if cell.css:
        attrs += f' class="{escape(cell.css)}"'
    return f"<{tag}{attrs}>{escape(cell.text)}</{tag}>"
