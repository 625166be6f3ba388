"""Rules of the policy that the compiled form does not carry, read for the matrix.

The compiled policy answers what each role may do; these answer the rest an auditor
asks: the order the roles are declared in, the link fields behind coarse locations, who
may open /policy, and whether a rule is declared at all — a rule the policy does not
define is "none declared", never an error, so the matrix fills itself in when the rule
lands in a `.polar` file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from polar import Variable
from polar.exceptions import PolarRuntimeError

from policies.loader import Policy
from policies.principal import Principal


def _query(policy: Policy, rule: str, *args: object) -> list[dict[str, Any]] | None:
    """Every binding of a rule; None when the policy does not define the rule."""
    # The loader keeps its Oso instance private; the matrix is the one other reader of
    # rules, and only reads (no registration, no loading).
    oso = policy._oso
    try:
        return [r["bindings"] for r in oso.query_rule(rule, *args, accept_expression=False)]
    except PolarRuntimeError as exc:
        if "undefined rule" in str(exc):
            return None
        raise


def _strings(values: Iterable[object]) -> list[str]:
    """Bound strings in first-seen order; an unbound variable (a str subclass) is dropped."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and not isinstance(value, Variable):
            seen.setdefault(value, None)
    return list(seen)


def is_declared(policy: Policy, rule: str, arity: int) -> bool:
    """Does the policy define `rule` with `arity` arguments?"""
    return _query(policy, rule, *(Variable(f"_{i}") for i in range(arity))) is not None


def declared_roles(policy: Policy) -> list[str]:
    """The roles in the order `role(…)` declares them (the order of the matrix's columns)."""
    found = _query(policy, "role", Variable("x")) or []
    ordered = [r for r in _strings(b.get("x") for b in found) if r in policy.roles]
    return ordered + sorted(policy.roles - set(ordered))


def policy_page_allowed(policy: Policy, role: str) -> bool:
    """`allow_policy_page(actor)`: may callers of the role open /policy? Undefined: no."""
    found = _query(policy, "allow_policy_page", Principal(role=role))
    return bool(found)


def hidden_links(policy: Policy) -> dict[str, list[str]]:
    """`hidden_link_location(Type, linkField, k)`: the link fields of each type."""
    links: dict[str, list[str]] = {}
    for bindings in _query(policy, "hidden_link_location", Variable("t"), Variable("f"),
                           Variable("k")) or []:
        type_name, field_name = bindings.get("t"), bindings.get("f")
        if _strings([type_name]) and _strings([field_name]):
            links.setdefault(type_name, []).append(field_name)  # type: ignore[arg-type]
    return {t: sorted(set(fs)) for t, fs in sorted(links.items())}
