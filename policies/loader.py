"""Load the Polar files and compile their decisions per role.

Polar evaluation costs a fraction of a millisecond to milliseconds, so nothing on the
request path calls Oso: at start-up every (role, type, field) decision, every row filter
(per role and jurisdiction level, by Oso's data filtering) and the count suppression
threshold are read out of the policy once, and the request path does set lookups and
binds claims into cached SQL conditions. The `.polar` files stay the only source of
truth — the compiled form is derived, never written by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oso import Oso
from polar import Variable
from polar.exceptions import PolarRuntimeError

from policies.area_codes import LEVELS
from policies.principal import Principal
from policies.resources import RESOURCES
from policies.row_filters import (
    NO_ROWS,
    RowFilter,
    RowFilterAdapter,
    RowFilterError,
    template_principal,
)

# Jurisdiction levels a principal can have; None is a caller without an area.
AREA_LEVELS: tuple[str | None, ...] = (None, *LEVELS)

POLICY_DIR = Path(__file__).parent


class PolicyError(RuntimeError):
    """The policy files cannot be loaded or violate an invariant the gateway relies on."""


@dataclass(frozen=True, slots=True)
class LocationPrecision:
    """No linking (SPEC rule 7): how precisely a role sees where records of one type lie.

    The role may not read a link of the type to a person (`hidden_link_location`), so every
    record's area is shown no finer than an enclosing area whose pool leaves `k` candidates
    (pooled k, resolvers/precision.py), its geo point never, and its `texts` (free text that
    may name the place) only where the record's own area is the one shown (main.polar,
    location_k_minimum)."""

    k: int
    texts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RoleAccess:
    """Everything one role may do, read out of the policy."""

    role: str
    readable: Mapping[str, frozenset[str]]
    # Row filters by the level of the caller's area, then by type; a type not listed: no rows.
    row_filters: Mapping[str | None, Mapping[str, RowFilter]]
    count_cell_minimum: int | None
    # May see "Did you mean …?" hints that name fields of the schema.
    schema_hints: bool = False
    # Types whose locations this role sees coarsened (no linking); absent: exact.
    location_precision: Mapping[str, LocationPrecision] = field(default_factory=dict)
    # The access trail (trail.polar): recorded (type, field) pairs this role may read, the
    # purposes it may state, and whether it reads recorded fields only under one.
    recorded: frozenset[tuple[str, str]] = frozenset()
    purposes: frozenset[str] = frozenset()
    purpose_required: bool = False

    def purpose_allows(self, purpose: str | None) -> bool:
        """May this role read recorded fields having stated `purpose` (None: stated none)?
        A purpose the role may not state fails, required or not."""
        if purpose is None:
            return not self.purpose_required
        return purpose in self.purposes

    def may_read(self, type_name: str, field_name: str) -> bool:
        return field_name in self.readable.get(type_name, frozenset())

    def row_filter(self, type_name: str, area_level: str | None) -> RowFilter:
        return self.row_filters.get(area_level, {}).get(type_name, NO_ROWS)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    by_role: Mapping[str, RoleAccess]
    # Schema fields that no role may read: null for everyone (fail closed).
    unmentioned: tuple[tuple[str, str], ...] = field(default=())
    # Fields the policy names that the schema does not have (drift).
    unknown: tuple[tuple[str, str], ...] = field(default=())

    def for_role(self, role: str) -> RoleAccess:
        return self.by_role[role]


class Policy:
    """The loaded `.polar` files."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or POLICY_DIR
        files = sorted(self.directory.glob("*.polar"))
        if not files:
            raise PolicyError(f"no .polar files in {self.directory}")
        self.files = tuple(files)
        self._oso = Oso()
        self._oso.register_class(Principal, name="Principal")
        for name, (cls, fields) in RESOURCES.items():
            self._oso.register_class(cls, name=name, fields=fields)
        self._oso.set_data_filtering_adapter(RowFilterAdapter())
        try:
            self._oso.load_files([str(path) for path in files])
        except Exception as exc:  # Polar raises several unrelated error types
            raise PolicyError(f"cannot load policy: {exc}") from exc
        self.roles = frozenset(self._strings("role"))
        anonymous = self._strings("anonymous_role")
        if len(anonymous) != 1 or anonymous[0] not in self.roles:
            raise PolicyError("the policy must name exactly one known anonymous_role")
        self.anonymous_role = anonymous[0]
        self.jurisdiction_levels = self._levels_by_role()
        self.officer_kinds = self._officer_kinds()

    # -- raw decisions (one Polar evaluation each; never on the request path) --

    def allow_field(self, principal: Principal, type_name: str, field_name: str) -> bool:
        return self._oso.query_rule_once(
            "allow_field", principal, "read", type_name, field_name
        )

    def allow_row(self, principal: Principal, record: object) -> bool:
        """May the principal read this record (one `allow` evaluation on the object)?"""
        return self._oso.is_allowed(principal, "read", record)

    def allow_record_field(self, principal: Principal, record: object, field_name: str) -> bool:
        """May the principal read this field of this record (row visible, field readable)?"""
        return self._oso.query_rule_once("allow_field", principal, "read", record, field_name)

    def row_filter(self, role: str, area_level: str | None, type_name: str) -> RowFilter:
        """The rows of a type a role may read, for callers whose area is at `area_level`."""
        template = template_principal(role, area_level)
        try:
            return self._oso.authorized_query(template, "read", RESOURCES[type_name][0])
        except (RowFilterError, PolarRuntimeError) as exc:
            raise PolicyError(
                f"cannot turn the row rules of {type_name} for {role} into a filter: {exc}"
            ) from exc

    def location_k_minimum(self, principal: Principal, type_name: str) -> int | None:
        """k of `location_k_minimum` for records of a type; None: exact locations."""
        found = self._bindings("location_k_minimum", principal, type_name, Variable("k"))
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in found):
            raise PolicyError(f"location_k_minimum of {type_name} must be a positive integer")
        return max(found) if found else None  # type: ignore[type-var]

    def location_links(self) -> set[tuple[str, str]]:
        """(type, field) of every `hidden_link_location` and `place_text` the policy names."""
        pairs: set[tuple[str, str]] = set()
        for rule, arity in (("hidden_link_location", 3), ("place_text", 2)):
            names = [Variable("t"), Variable("f"), Variable("k")][:arity]
            for result in self._oso.query_rule(rule, *names):
                found = [result["bindings"].get(v) for v in names[:2]]
                if _strings_only(found) != found:
                    raise PolicyError(f"{rule} must name a type and a field")
                pairs.add((found[0], found[1]))
        return pairs

    def _location_precision(self, probe: Principal, type_names: Iterable[str]
                            ) -> dict[str, LocationPrecision]:
        precision = {}
        for type_name in type_names:
            k = self.location_k_minimum(probe, type_name)
            if k is not None:
                texts = _strings_only(self._bindings("place_text", type_name, Variable("f")))
                precision[type_name] = LocationPrecision(k=k, texts=frozenset(texts))
        return precision

    def count_cell_minimum(self, principal: Principal) -> int | None:
        found = [v for v in self._bindings("count_cell_minimum", principal, Variable("n"))
                 if isinstance(v, int)]
        return max(found) if found else None

    def demo_jurisdiction_level(self, role: str) -> str | None:
        found = self._bindings("demo_jurisdiction", role, Variable("level"))
        return next(iter(_strings_only(found)), None)

    def demo_submitters(self) -> list[tuple[str, str, int]]:
        """(role, level of its area, share in percent) of the demo data's report submitters."""
        role, level, share = Variable("role"), Variable("level"), Variable("share")
        found = []
        for result in self._facts("demo_submitter", role, level, share):
            values = [result["bindings"].get(v) for v in (role, level, share)]
            if (_strings_only(values[:2]) == values[:2] and isinstance(values[2], int)
                    and values[0] in self.roles and values[1] in LEVELS):
                found.append((values[0], values[1], values[2]))
        return found

    # -- what a token of each role must carry ---------------------------------

    def _levels_by_role(self) -> dict[str, frozenset[str]]:
        """`jurisdiction_level(role, level)`: the levels of area a role's token may carry."""
        levels: dict[str, set[str]] = {}
        for role, level in self._role_pairs("jurisdiction_level"):
            if level not in LEVELS:
                raise PolicyError(f"jurisdiction_level names an unknown level {level!r}")
            levels.setdefault(role, set()).add(level)
        if self.anonymous_role in levels:
            raise PolicyError("the anonymous role carries no token, so no jurisdiction")
        return {role: frozenset(found) for role, found in levels.items()}

    def _officer_kinds(self) -> dict[str, str]:
        """`officer_kind(role, kind)`: the kind of officer a role's token must name."""
        kinds: dict[str, str] = {}
        for role, kind in self._role_pairs("officer_kind"):
            if kinds.setdefault(role, kind) != kind:
                raise PolicyError(f"officer_kind names two kinds for one role ({role})")
        return kinds

    def _role_pairs(self, rule: str) -> list[tuple[str, str]]:
        role, value = Variable("role"), Variable("value")
        pairs = []
        for result in self._facts(rule, role, value):
            found = [result["bindings"].get(role), result["bindings"].get(value)]
            if _strings_only(found) != found:
                raise PolicyError(f"{rule} must name a role and a string")
            if found[0] not in self.roles:
                raise PolicyError(f"{rule} names an unknown role {found[0]!r}")
            pairs.append((found[0], found[1]))
        return pairs

    # -- compilation ---------------------------------------------------------

    def compile(self, schema_fields: Mapping[str, Iterable[str]]) -> CompiledPolicy:
        """Read every decision for every role out of the policy, against the schema's fields."""
        fields = {type_name: frozenset(names) for type_name, names in schema_fields.items()}
        by_role: dict[str, RoleAccess] = {}
        named: set[tuple[str, str]] = set()
        for role in sorted(self.roles):
            probe = Principal(role=role)
            readable: dict[str, frozenset[str]] = {}
            for type_name, names in fields.items():
                allowed, mentioned = self._readable_fields(probe, type_name, names)
                named.update((type_name, name) for name in mentioned)
                if allowed:
                    readable[type_name] = allowed
            by_role[role] = RoleAccess(
                role=role,
                readable=readable,
                row_filters=self._row_filters(role),
                count_cell_minimum=self.count_cell_minimum(probe),
                schema_hints=self._oso.query_rule_once("allow_schema_hints", probe),
                location_precision=self._location_precision(probe, fields),
                recorded=frozenset((t, f) for t, f in self.recorded_fields()
                                   if f in readable.get(t, ())),
                purposes=frozenset(self.purposes_of(role)),
                purpose_required=bool(self._facts("purpose_required", role)),
            )
        covered = {(t, f) for access in by_role.values() for t, fs in access.readable.items()
                   for f in fs}
        unmentioned = tuple(sorted(
            (t, f) for t, names in fields.items() for f in names if (t, f) not in covered
        ))
        for role in self.roles:
            named.update(self._named_pairs(Principal(role=role)))
        named.update(self.location_links())
        named.update(self.recorded_fields())
        unknown = tuple(sorted(
            (t, f) for t, f in named if t not in fields or f not in fields[t]
        ))
        return CompiledPolicy(by_role=by_role, unmentioned=unmentioned, unknown=unknown)

    # -- the access trail (trail.polar) --

    def recorded_fields(self) -> frozenset[tuple[str, str]]:
        """(type, field) pairs whose non-null values are recorded in the access trail."""
        pairs: set[tuple[str, str]] = set()
        for result in self._facts("recorded_field", Variable("t"), Variable("f")):
            type_name, field_name = result["bindings"].get("t"), result["bindings"].get("f")
            if len(_strings_only([type_name, field_name])) == 2:
                pairs.add((type_name, field_name))
        return frozenset(pairs)

    def purposes(self) -> list[str]:
        """The purposes a reader may state, in the policy's order."""
        return _strings_only(r["bindings"].get("x") for r in self._facts("purpose",
                                                                           Variable("x")))

    def purposes_of(self, role: str) -> list[str]:
        """The purposes `role` may state (known purposes only)."""
        known = set(self.purposes())
        stated = _strings_only(r["bindings"].get("p")
                               for r in self._facts("may_state_purpose", role, Variable("p")))
        return sorted(set(stated) & known)

    def _row_filters(self, role: str) -> dict[str | None, dict[str, RowFilter]]:
        by_level: dict[str | None, dict[str, RowFilter]] = {}
        for level in AREA_LEVELS:
            filters = {name: self.row_filter(role, level, name) for name in RESOURCES}
            by_level[level] = {name: f for name, f in filters.items() if f != NO_ROWS}
        return by_level

    def _readable_fields(
        self, probe: Principal, type_name: str, names: frozenset[str]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """(fields of the schema the probe may read, every field name the policy yields)."""
        yielded: set[str] = set()
        wildcard = False
        for value in self._bindings("allow_field", probe, "read", type_name, Variable("f")):
            if isinstance(value, Variable):
                # A rule that leaves the field unbound allows any field of the type.
                wildcard = True
            elif isinstance(value, str):
                yielded.add(value)
        if wildcard:
            return names, frozenset(yielded)
        return names & yielded, frozenset(yielded)

    def _named_pairs(self, probe: Principal) -> set[tuple[str, str]]:
        """Every (type, field) a rule names for the probe, also types the schema lacks.

        The record forms of `allow_field` (a record of a resource type instead of a type
        name) come back as constraints, not names; they restate the named form."""
        query = self._oso.query_rule(
            "allow_field", probe, "read", Variable("t"), Variable("f"), accept_expression=True
        )
        pairs: set[tuple[str, str]] = set()
        for result in query:
            type_name, field_name = result["bindings"].get("t"), result["bindings"].get("f")
            if _strings_only([type_name]) and _strings_only([field_name]):
                pairs.add((type_name, field_name))
        return pairs

    def _facts(self, rule: str, *args: object) -> list[dict[str, Any]]:
        """Every result of a rule of facts; none when the policy does not define it (a
        token of any role then carries no area and no officer: fail closed)."""
        try:
            return list(self._oso.query_rule(rule, *args, accept_expression=False))
        except PolarRuntimeError as exc:
            if "undefined rule" in str(exc):
                return []
            raise PolicyError(f"cannot read {rule}: {exc}") from exc

    def _strings(self, rule: str) -> list[str]:
        return _strings_only(self._bindings(rule, Variable("x")))

    def _bindings(self, rule: str, *args: object) -> list[object]:
        variables = [a for a in args if isinstance(a, Variable)]
        if len(variables) != 1:
            raise PolicyError("internal: expected exactly one unbound variable")
        name = variables[0]
        try:
            results = list(self._oso.query_rule(rule, *args, accept_expression=False))
        except PolarRuntimeError as exc:
            # A rule that needs object data (e.g. actor.area) cannot be compiled per role.
            raise PolicyError(f"cannot compile rule {rule} for {args[:2]}: {exc}") from exc
        # Polar hands back an unbound variable (a str subclass) when a rule leaves it open.
        return [result["bindings"].get(name) for result in results]


def _strings_only(values: Iterable[object]) -> list[str]:
    return [v for v in values if isinstance(v, str) and not isinstance(v, Variable)]
