"""No linking (SPEC rule 7): where a record lies, as precisely as the caller may see it.

The data layer already returns a report's or an activity's location at the caller's
precision (resolvers/precision.py): coarsened to an area where enough foreigners live,
the geo point and any free text that may name the place withheld. These resolvers only
say so: a location or text the caller's precision withheld is listed in
`extensions.redacted` (SPEC rule 3), like any other hidden field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schema.common import Ctx

if TYPE_CHECKING:
    from schema.areas import Area


def _withheld(info: Ctx, value: Any) -> Any:
    if value is None:
        type_name = info.path.typename or ""
        if type_name in info.context.access.location_precision:
            info.context.redacted.add((type_name, info.field_name))
    return value


def placed_area_code(root: Any, info: Ctx) -> str | None:
    return _withheld(info, root.located_code)


def placed_text(root: Any, info: Ctx) -> str | None:
    return _withheld(info, root.free_text)


async def placed_area(info: Ctx, code: str | None) -> Area | None:
    from schema.areas import load_area

    _withheld(info, code)
    return await load_area(info, code)
