"""The matrix laid out as a document (sections, paragraphs, tables), once for every format.

Markdown and HTML render the same document, so the committed file and the page at
/policy never say different things. Text may use `code` spans; each format renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

YES, NULL, FORBIDDEN = "yes", "null", "FORBIDDEN"
NONE_DECLARED = "none declared"


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    # Data attributes of the HTML cell (role, type, field), so a page can be checked
    # against the JSON cell by cell; Markdown ignores them.
    data: dict[str, str] = field(default_factory=dict)
    css: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    headers: list[Cell]
    rows: list[list[Cell]]
    css: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, Table]] = field(default_factory=list)  # (caption, table)
    anchor: str = ""


def document(matrix: dict[str, Any]) -> tuple[str, list[str], list[Section]]:
    """(title, introduction, sections) of a matrix from `access_matrix`."""
    roles: list[str] = matrix["roles"]
    intro = [
        "Generated from the loaded policy by `sisada policy matrix`; never edited by hand. "
        "Every cell is read out of the `.polar` files the gateway enforces.",
        "Policy files: " + ", ".join(f"`{name}`" for name in matrix["files"]) + ".",
        f"Roles (the token's `role` claim): {', '.join(f'`{r}`' for r in roles)}; "
        f"a caller without a token is `{matrix['anonymous_role']}`.",
    ]
    sections = [
        _roles_section(matrix, roles),
        _scope_section(matrix, roles),
        _fields_section("Root fields: what each role may call", "root-fields",
                        ["A root field a role may not call is a `FORBIDDEN` error."],
                        matrix["root_fields"], roles, FORBIDDEN),
        _fields_section("Fields: who may read what", "fields",
                        ["A field a role may not read resolves to `null` and is listed in "
                         "`redactedFields`. `recorded`: every value returned enters the "
                         "access trail."],
                        matrix["types"], roles, NULL),
        _precision_section(matrix, roles),
        _trail_section(matrix, roles),
        _drift_section(matrix),
    ]
    return "Sisada access matrix", intro, sections


def _roles_section(matrix: dict[str, Any], roles: list[str]) -> Section:
    headers = [Cell(h) for h in ("role", "jurisdiction (token's area)", "officer kind",
                                 "counts below this are suppressed", "schema hints in errors",
                                 "may open /policy")]
    rows = []
    for role in roles:
        summary = matrix["by_role"][role]
        rows.append([
            Cell(role, {"role": role}),
            Cell(", ".join(summary["jurisdiction_levels"]) or "no area"),
            Cell(summary["officer_kind"] or "—"),
            Cell("—" if summary["count_cell_minimum"] is None
                 else str(summary["count_cell_minimum"])),
            Cell(YES if summary["schema_hints"] else "no"),
            Cell(YES if role in matrix["policy_page"] else "no"),
        ])
    return Section("Roles at a glance", anchor="roles", tables=[("", Table(headers, rows))],
                   text=["`jurisdiction`: the levels of area a token of the role must carry "
                         "(a role without any carries none). `counts`: cells of an area "
                         "count below this number are `null`."])


def _scope_section(matrix: dict[str, Any], roles: list[str]) -> Section:
    tables = []
    for role in roles:
        scopes = matrix["by_role"][role]["row_scope"]
        headers = [Cell("records")] + [
            Cell("caller without an area" if s["level"] is None
                 else f"caller's area: {s['level']}") for s in scopes]
        types = list(scopes[0]["rows"])
        rows = [[Cell(t)] + [Cell(s["rows"][t], {"role": role, "type": t,
                                                  "level": s["level"] or ""},
                                  "none" if s["rows"][t] == "no rows" else "")
                             for s in scopes]
                for t in types]
        tables.append((role, Table(headers, rows, "scope")))
    return Section("Row scope: which records exist for each role", anchor="row-scope",
                   text=["Rendered from the row filter each role gets per level of its "
                         "area (applied in SQL). A record outside it answers exactly like "
                         "a missing one."],
                   tables=tables)


def _fields_section(title: str, anchor: str, text: list[str], types: list[dict[str, Any]],
                    roles: list[str], denied: str) -> Section:
    tables = []
    for entry in types:
        type_name = entry["type"]
        headers = [Cell("field")] + [Cell(r, {"role": r}) for r in roles]
        rows = []
        for row in entry["fields"]:
            label = row["field"] + (" (recorded)" if row["recorded"] else "")
            cells = [Cell(label, css="recorded" if row["recorded"] else "")]
            for role in roles:
                readable = role in row["readers"]
                cells.append(Cell(YES if readable else denied,
                                  {"role": role, "type": type_name, "field": row["field"],
                                   "readable": "true" if readable else "false"},
                                  "yes" if readable else "no"))
            rows.append(cells)
        tables.append((type_name, Table(headers, rows, "fields")))
    return Section(title, text=text, tables=tables, anchor=anchor)


def _precision_section(matrix: dict[str, Any], roles: list[str]) -> Section:
    headers = [Cell(h) for h in ("role", "records", "area shown no finer than one holding",
                                 "geo point", "free text shown only at the record's own area",
                                 "because the role may not read")]
    rows = []
    for role in roles:
        for type_name, rule in matrix["by_role"][role]["location_precision"].items():
            rows.append([Cell(role), Cell(type_name), Cell(f"{rule['k']} people (pooled)"),
                         Cell(NULL), Cell(", ".join(rule["place_texts"]) or "—"),
                         Cell(", ".join(rule["hidden_links"]) or "—")])
    text = ["No linking: where a record links a person the role may not identify, every "
            "record of the type is located coarsely."]
    if not rows:
        return Section("Location precision", text=[*text, "Every role sees exact locations."],
                       anchor="location-precision")
    return Section("Location precision", text=[*text, "Roles not listed see exact locations."],
                   tables=[("", Table(headers, rows))], anchor="location-precision")


def _trail_section(matrix: dict[str, Any], roles: list[str]) -> Section:
    recorded = matrix["recorded_fields"]
    text = ["Recorded fields (`recorded_field`): " + (
        NONE_DECLARED if recorded is None
        else ", ".join(f"`{t}.{f}`" for t, f in recorded) or "none") + "."]
    required = [r for r in roles if matrix["by_role"][r]["purpose_required"]]
    declared = any(matrix["by_role"][r]["purpose_required"] is not None for r in roles)
    listed = ", ".join(f"`{r}`" for r in required) or "none"
    text.append("Roles that must state a purpose (`purpose_required`): "
                + (listed if declared else NONE_DECLARED) + ".")
    purposes = matrix["purposes"]
    tables = []
    if purposes is None:
        text.append(f"Purposes (`purpose`): {NONE_DECLARED}.")
    elif not purposes:
        text.append("Purposes (`purpose`): none.")
    else:
        headers = [Cell("purpose"), Cell("may be stated by")]
        rows = [[Cell(p["name"]), Cell(", ".join(p["stated_by"]) or "no role")]
                for p in purposes]
        tables.append(("", Table(headers, rows)))
    return Section("Access trail and purposes", text=text, tables=tables, anchor="trail")


def _drift_section(matrix: dict[str, Any]) -> Section:
    unmentioned = ", ".join(f"`{t}.{f}`" for t, f in matrix["unmentioned"]) or "none"
    unknown = ", ".join(f"`{t}.{f}`" for t, f in matrix["unknown"]) or "none"
    return Section("Drift between the policy and the schema", anchor="drift", text=[
        f"Schema fields no rule names (null for everyone): {unmentioned}.",
        f"Fields the policy names that the schema lacks: {unknown}.",
    ])
