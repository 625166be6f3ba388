"""Random valid GraphQL documents for the leak hunt, drawn from the live schema.

A document is drawn as a small tree (operation, fields, arguments, selections) and only then
printed. Every value that names a row (a foreigner id, an area code, a passport number …) is a
`Key`, so the hunt knows which rows a document asks about and can print the same document
again with each out-of-scope key swapped for a missing one (SPEC rule 4: no oracle).

What a document may contain: every root field of Query or Mutation, nested paths down to
`max_depth`, aliases, arguments as literals or as variables, input objects, lists, enums,
`@include`/`@skip`, inline fragments (with and without a type condition), named fragments,
and federation `_entities` with representations of `Foreigner` and `Area`; queries travel
by POST or by GET. Every selection
set asks for `__typename`, and the selection of a row type for its key field (unaliased), so
the oracle can tell each object's type and row.

hypothesis-graphql (PyPI) supports our graphql-core 3.3 but draws argument values blindly
(random strings for ids and codes, no variables, no named fragments), so it would almost never
name a real row: this generator draws them from the seeded data instead.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import graphql as gql
from hypothesis import strategies as st

# The field that identifies a row of each type; always selected, never aliased.
KEY_FIELDS = {
    "Foreigner": "id",
    "Residence": "id",
    "StayPermit": "id",
    "Report": "id",
    "Activity": "id",
    "Officer": "id",
    "Area": "code",
    "ForeignerCheck": "documentNumber",
}

MISSING = "missing"  # the kind of a key that names no row


@dataclass(frozen=True, slots=True)
class Key:
    """A value naming a row: `kind` is foreigner, report, officer, area or document."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class EnumValue:
    name: str


@dataclass(slots=True)
class Arg:
    name: str
    type: gql.GraphQLInputType
    value: Any
    variable: bool


@dataclass(slots=True)
class Field:
    name: str
    alias: str | None = None
    args: list[Arg] = field(default_factory=list)
    selection: list[Node] | None = None
    directive: tuple[str, bool] | None = None

    @property
    def response_key(self) -> str:
        return self.alias or self.name


@dataclass(slots=True)
class Inline:
    type_condition: str | None
    selection: list[Node]


@dataclass(slots=True)
class Spread:
    name: str


@dataclass(slots=True)
class Fragment:
    name: str
    on: str
    selection: list[Node]


Node = Field | Inline | Spread


class Document:
    """One operation and its fragments; printed (not dumped) when hypothesis reports it."""

    def __init__(self, operation: str, selection: list[Node], fragments: list[Fragment],
                 aliases: dict[str, str], method: str = "POST") -> None:
        self.operation = operation  # "query" or "mutation"
        self.selection = selection
        self.fragments = fragments
        self.aliases = aliases  # alias -> field name (aliases are unique in a document)
        self.method = method  # how it travels: POST (JSON body) or GET (query string)

    def root_fields(self) -> list[str]:
        return [node.name for node in _fields(self.selection) if node.name != "__typename"]

    def named_keys(self) -> set[Key]:
        found: set[Key] = set()
        for arg in self._args():
            _collect_keys(arg.value, found)
        return found

    def render(self, substitute: Callable[[Key], Key] | None = None
               ) -> tuple[str, dict[str, Any]]:
        """The document text and its variables, with keys passed through `substitute`."""
        printer = _Printer(substitute or (lambda key: key))
        body = printer.selection(self.selection)
        fragments = [f"fragment {f.name} on {f.on} {printer.selection(f.selection)}"
                     for f in self.fragments]
        header = self.operation + " Hunt"
        if printer.declarations:
            header += "(" + ", ".join(printer.declarations) + ")"
        return "\n".join([f"{header} {body}", *fragments]), printer.variables

    def _args(self) -> Iterator[Arg]:
        for node in _walk(self.selection):
            yield from node.args
        for fragment in self.fragments:
            for node in _walk(fragment.selection):
                yield from node.args

    def __repr__(self) -> str:
        text, variables = self.render()
        return (f"{text}\n# variables: {json.dumps(variables, ensure_ascii=False)}"
                f"\n# sent by {self.method}")


def _fields(nodes: list[Node]) -> Iterator[Field]:
    for node in nodes:
        if isinstance(node, Field):
            yield node
        elif isinstance(node, Inline):
            yield from _fields(node.selection)


def _walk(nodes: list[Node]) -> Iterator[Field]:
    for node in nodes:
        if isinstance(node, Field):
            yield node
            if node.selection:
                yield from _walk(node.selection)
        elif isinstance(node, Inline):
            yield from _walk(node.selection)


def _collect_keys(value: Any, found: set[Key]) -> None:
    if isinstance(value, Key):
        found.add(value)
    elif isinstance(value, list):
        for item in value:
            _collect_keys(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_keys(item, found)


class _Printer:
    def __init__(self, substitute: Callable[[Key], Key]) -> None:
        self.substitute = substitute
        self.declarations: list[str] = []
        self.variables: dict[str, Any] = {}

    def selection(self, nodes: list[Node]) -> str:
        return "{ " + " ".join(self.node(n) for n in nodes) + " }"

    def node(self, node: Node) -> str:
        if isinstance(node, Spread):
            return f"...{node.name}"
        if isinstance(node, Inline):
            condition = f" on {node.type_condition}" if node.type_condition else ""
            return f"...{condition} {self.selection(node.selection)}"
        text = f"{node.alias}: {node.name}" if node.alias else node.name
        if node.args:
            text += "(" + ", ".join(f"{a.name}: {self.argument(a)}" for a in node.args) + ")"
        if node.directive:
            name, value = node.directive
            text += f" @{name}(if: {'true' if value else 'false'})"
        if node.selection:
            text += " " + self.selection(node.selection)
        return text

    def argument(self, arg: Arg) -> str:
        if not arg.variable:
            return self.literal(arg.value)
        name = f"v{len(self.declarations) + 1}"
        self.declarations.append(f"${name}: {arg.type}")
        self.variables[name] = self.json(arg.value)
        return f"${name}"

    def literal(self, value: Any) -> str:
        if isinstance(value, Key):
            return json.dumps(self.substitute(value).value, ensure_ascii=False)
        if isinstance(value, EnumValue):
            return value.name
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, str):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, list):
            return "[" + ", ".join(self.literal(v) for v in value) + "]"
        return "{" + ", ".join(f"{k}: {self.literal(v)}" for k, v in value.items()) + "}"

    def json(self, value: Any) -> Any:
        if isinstance(value, Key):
            return self.substitute(value).value
        if isinstance(value, EnumValue):
            return value.name
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value


# -- values -------------------------------------------------------------------------


@dataclass
class Pools:
    """Argument values drawn from the seeded data (plus some that name nothing)."""

    foreigners: list[Key]
    reports: list[Key]
    officers: list[Key]
    areas: list[Key]
    documents: list[Key]
    receipt_codes: list[str]
    nationalities: list[str]
    name_parts: list[str]
    cursors: list[str]
    # Where something can happen (a report, an activity): kelurahan, RW and RT codes.
    located_areas: list[Key] = field(default_factory=list)


def _keys(kind: str, values: list[Any], missing: list[str]) -> list[Key]:
    return [Key(kind, str(v)) for v in values] + [Key(MISSING, m) for m in missing]


def pools_from_facts(facts: Any, area_codes: list[str], cursors: list[str]) -> Pools:
    """Pools over every seeded row, and ids, codes and numbers that match none."""
    foreigners = [f["id"] for f in facts.foreigners]
    documents = [f["passport_number"] for f in facts.foreigners]
    documents += [numbers[0] for numbers in facts.permit_numbers.values()]
    names = sorted({part for f in facts.foreigners for part in f["full_name"].split()
                    if len(part) >= 3})
    return Pools(
        foreigners=_keys("foreigner", foreigners, ["0", "999999", "-1", "x1"]),
        reports=_keys("report", [r["id"] for r in facts.reports], ["0", "999999"]),
        officers=_keys("officer", sorted({a["officer_id"] for a in facts.activities} | {1, 2}),
                       ["0", "999999"]),
        areas=_keys("area", area_codes, ["31.71", "31.71.01", "31.74.99", "99.99"]),
        documents=_keys("document", documents, ["ZZ0000000", "X1234567"]),
        receipt_codes=[r["receipt_code"] for r in facts.reports] + ["NOPE-0000", ""],
        nationalities=[*sorted({f["nationality"] for f in facts.foreigners}), "XXX"],
        name_parts=names[:40],
        cursors=[*cursors, "not-a-cursor", ""],
        located_areas=[Key("area", c) for c in area_codes if c.count(".") >= 3],
    )


_MIDPOINT = dt.date(2025, 1, 1)  # dates drawn for filters lie around it


class DocumentBuilder:
    """Draws one document; a fresh builder per draw (aliases and fragments are per document)."""

    def __init__(self, schema: gql.GraphQLSchema, pools: Pools, draw: Any,
                 max_depth: int, max_fields: int) -> None:
        self.schema = schema
        self.pools = pools
        self.draw = draw
        self.max_depth = max_depth
        self.max_fields = max_fields
        self.fields = 0
        self.aliases: dict[str, str] = {}
        self.fragments: list[Fragment] = []
        # Odds come from a seeded Random: hypothesis's own draws lean to the edges (0, the
        # first element), which would make every "rarely" an "often".
        self.random = draw(st.randoms(use_true_random=True))

    def chance(self, probability: float) -> bool:
        return self.random.random() < probability

    # -- selections

    def document(self, operation: str, first: str, others: list[str]) -> Document:
        root = self.schema.query_type if operation == "query" else self.schema.mutation_type
        assert root is not None
        names = [first, *self.draw(st.lists(st.sampled_from(others), max_size=2))]
        selection: list[Node] = [Field("__typename")]
        selection += [self.field(root, name, depth=1, lists=0) for name in names]
        # GraphQL over HTTP allows queries by GET as well: one more path to every record.
        method = "GET" if operation == "query" and self.chance(0.2) else "POST"
        return Document(operation, selection, self.fragments, self.aliases, method)

    def field(self, parent: gql.GraphQLObjectType, name: str, depth: int, lists: int
              ) -> Field:
        self.fields += 1
        definition = parent.fields[name]
        args = self.arguments(parent.name, name, definition.args)
        alias = None
        if args or self.chance(0.2):
            alias = f"a{len(self.aliases) + 1}"
            self.aliases[alias] = name
        node = Field(name, alias, args)
        if self.chance(0.05):
            node.directive = (self.draw(st.sampled_from(["include", "skip"])),
                              self.draw(st.booleans()))
        named = gql.get_named_type(definition.type)
        if isinstance(named, gql.GraphQLObjectType | gql.GraphQLUnionType):
            node.selection = self.selection(named, depth + 1,
                                            lists + _is_list(definition.type))
        return node

    def selection(self, type_: gql.GraphQLObjectType | gql.GraphQLUnionType, depth: int,
                  lists: int) -> list[Node]:
        if isinstance(type_, gql.GraphQLUnionType):
            members = self.draw(st.lists(st.sampled_from(type_.types), min_size=1,
                                         max_size=len(type_.types), unique=True))
            nodes: list[Node] = [Field("__typename")]
            for member in members:
                inner = self.object_selection(member, depth, lists)
                nodes.append(self.wrap(member.name, inner, allow_bare=False))
            return nodes
        return self.object_selection(type_, depth, lists)

    def object_selection(self, type_: gql.GraphQLObjectType, depth: int, lists: int
                         ) -> list[Node]:
        forced: list[Node] = [Field("__typename")]
        key = KEY_FIELDS.get(type_.name)
        if key in type_.fields:
            forced.append(Field(key))
        leaves = [n for n in type_.fields if n != key and _is_leaf(type_.fields[n].type)]
        nested = [n for n in type_.fields if n != key and n not in leaves]
        if depth > self.max_depth or self.fields >= self.max_fields:
            nested = []
        if lists >= 2:
            # A list inside a list inside a list (every area's children's children) makes
            # documents that take seconds each and find nothing the shallower ones miss.
            nested = [n for n in nested if not _is_list(type_.fields[n].type)]
        # Leaves and nested fields are drawn apart, so that documents do go deep.
        chosen = self.draw(st.lists(st.sampled_from(leaves), max_size=4, unique=True)) \
            if leaves else []
        if nested:
            chosen += self.draw(st.lists(st.sampled_from(nested), max_size=2, unique=True))
        self.random.shuffle(chosen)
        extra: list[Node] = [self.field(type_, name, depth, lists) for name in chosen]
        if not extra:
            return forced
        # Some of the selection moves into a fragment: inline (typed or bare) or named.
        cut = self.draw(st.integers(0, len(extra)))
        if cut == len(extra):
            return forced + extra
        return forced + extra[:cut] + [self.wrap(type_.name, extra[cut:], allow_bare=True)]

    def wrap(self, type_name: str, nodes: list[Node], allow_bare: bool) -> Node:
        how = self.draw(st.sampled_from(["inline", "named", "bare"] if allow_bare
                                        else ["inline", "named"]))
        inner: list[Node] = [Field("__typename"), *nodes]
        if how == "named":
            name = f"F{len(self.fragments) + 1}"
            self.fragments.append(Fragment(name, type_name, inner))
            return Spread(name)
        return Inline(type_name if how == "inline" else None, inner)

    # -- arguments

    def arguments(self, owner: str, field_name: str, args: dict[str, gql.GraphQLArgument]
                  ) -> list[Arg]:
        result = []
        for name, arg in args.items():
            required = gql.is_non_null_type(arg.type) and arg.default_value is gql.Undefined
            if not required and not self.chance(OPTIONAL_ARG_ODDS.get(name, 0.4)):
                continue
            value = self.value(arg.type, name, f"{owner}.{field_name}")
            # Representations mostly as variables (as routers send them), sometimes inline.
            variable = self.chance(0.7 if name == "representations" else 0.4)
            result.append(Arg(name, arg.type, value, variable))
        return result

    def value(self, type_: gql.GraphQLInputType, name: str, owner: str,
              nullable: bool = True) -> Any:
        if gql.is_non_null_type(type_):
            return self.value(type_.of_type, name, owner, nullable=False)  # type: ignore[union-attr]
        if nullable and self.chance(0.04):
            return None
        if isinstance(type_, gql.GraphQLList):
            if name == "representations":
                found = self.draw(st.lists(self.representations(), min_size=1, max_size=6))
                if self.chance(0.06):  # one the gateway must refuse
                    found.append(self.draw(st.sampled_from(ODD_REPRESENTATIONS)))
                return found
            size = self.draw(st.integers(0, 3))
            return [self.value(type_.of_type, name, owner) for _ in range(size)]
        if isinstance(type_, gql.GraphQLInputObjectType):
            return self.input_object(type_)
        if isinstance(type_, gql.GraphQLEnumType):
            return EnumValue(self.draw(st.sampled_from(sorted(type_.values))))
        return self.scalar(type_.name, name, owner)  # type: ignore[union-attr]

    def input_object(self, type_: gql.GraphQLInputObjectType) -> dict[str, Any]:
        values = {}
        for name, input_field in type_.fields.items():
            required = (gql.is_non_null_type(input_field.type)
                        and input_field.default_value is gql.Undefined)
            if required or self.chance(OPTIONAL_ARG_ODDS.get(name, 0.33)):
                values[name] = self.value(input_field.type, name, type_.name)
        return values

    def representations(self) -> st.SearchStrategy[dict[str, Any]]:
        p = self.pools
        foreigner = st.builds(lambda k: {"__typename": "Foreigner", "id": k},
                              st.sampled_from(p.foreigners))
        with_extras = st.builds(
            lambda k: {"__typename": "Foreigner", "id": k, "fullName": "x", "nationality": "X"},
            st.sampled_from(p.foreigners))
        area = st.builds(lambda k: {"__typename": "Area", "code": k}, st.sampled_from(p.areas))
        return st.one_of(foreigner, area, with_extras)

    def scalar(self, scalar: str, name: str, owner: str) -> Any:
        draw = self.draw
        p = self.pools
        by_name: dict[str, Callable[[], Any]] = {
            "code": lambda: draw(st.sampled_from(p.areas)),
            "areaCode": lambda: draw(st.sampled_from(
                [*p.areas, Key(MISSING, "31.74.")] if owner == "ForeignerFilterInput"
                or self.chance(0.2) else p.located_areas)),
            "parentCode": lambda: draw(st.sampled_from(p.areas)),
            "documentNumber": lambda: draw(st.sampled_from(p.documents)),
            "receiptCode": lambda: draw(st.sampled_from(p.receipt_codes)),
            "nationality": lambda: draw(st.sampled_from(p.nationalities)),
            "name": lambda: draw(st.sampled_from(p.name_parts)),
            "after": lambda: draw(st.sampled_from(p.cursors)),
            "first": lambda: draw(st.sampled_from([1, 2, 3, 5, 10, 25, 40]))
            if not self.chance(0.05) else draw(st.sampled_from([0, 1001])),
            "foreignerId": lambda: draw(st.sampled_from(p.foreigners)),
            "subjectForeignerId": lambda: draw(st.sampled_from(p.foreigners)),
            "reportId": lambda: draw(st.sampled_from(p.reports)),
            "officerId": lambda: draw(st.sampled_from(p.officers)),
            "assignedOfficerId": lambda: draw(st.sampled_from(p.officers)),
            "text": lambda: f"leak hunt note {draw(st.integers(0, 999))}",
            "notes": lambda: f"leak hunt note {draw(st.integers(0, 999))}",
            "reporterContact": lambda: f"{CONTACT_MARKER}{draw(st.integers(0, 10**6))}@example.org",
            "latitude": lambda: draw(st.sampled_from([-6.25, -6.2617, -6.3, 95.0])),
            "longitude": lambda: draw(st.sampled_from([106.81, 106.8456, 106.79, 200.0])),
            "since": lambda: _datetime(draw),
            "occurredAt": lambda: _datetime(draw),
            "expiresBefore": lambda: (_MIDPOINT + dt.timedelta(
                days=draw(st.integers(-2000, 2000)))).isoformat(),
        }
        if name == "id":
            pool = {"Query.report": p.reports, "UpdateReportInput": p.reports,
                    "Query.officer": p.officers}.get(owner, p.foreigners)
            return draw(st.sampled_from(pool))
        if name in by_name:
            return by_name[name]()
        fallback: dict[str, Callable[[], Any]] = {
            "Boolean": lambda: draw(st.booleans()),
            "Int": lambda: draw(st.integers(-2, 60)),
            "Float": lambda: draw(st.sampled_from([0.0, -6.25, 106.8])),
            "String": lambda: draw(st.sampled_from(["", "a", "31.74.02", "ñ", "x" * 40])),
            "ID": lambda: draw(st.sampled_from(p.foreigners + p.reports)),
            "Date": lambda: "2024-06-30",
            "DateTime": lambda: _datetime(draw),
        }
        return fallback.get(scalar, lambda: "x")()


CONTACT_MARKER = "leakhunt-contact-"

# How often an optional argument is given: narrowing filters and
# cursors are rarer, so that most documents do reach rows.
OPTIONAL_ARG_ODDS = {"after": 0.1, "since": 0.25, "officerId": 0.25, "status": 0.3,
                     "category": 0.3, "foreignerId": 0.2, "subjectForeignerId": 0.25,
                     "reportId": 0.25, "level": 0.5, "parentCode": 0.5}

ODD_REPRESENTATIONS = [{"__typename": "Report", "id": "1"}, {"__typename": "Foreigner"},
                       {"__typename": "Area", "code": None}]


def _datetime(draw: Any) -> str:
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        days=draw(st.integers(0, 900)))
    return moment.isoformat()


def _is_list(type_: gql.GraphQLOutputType) -> bool:
    if gql.is_non_null_type(type_):
        type_ = type_.of_type  # type: ignore[union-attr]
    return isinstance(type_, gql.GraphQLList)


def _is_leaf(type_: gql.GraphQLOutputType) -> bool:
    return isinstance(gql.get_named_type(type_), gql.GraphQLScalarType | gql.GraphQLEnumType)


def documents(schema: gql.GraphQLSchema, pools: Pools, operation: str, first: str,
              max_depth: int = 6, max_fields: int = 40) -> st.SearchStrategy[Document]:
    """Valid documents of one operation type: root field `first`, then up to two others."""
    root = schema.query_type if operation == "query" else schema.mutation_type
    if root is None:
        raise ValueError(f"the schema has no {operation} type")
    others = sorted(root.fields)

    @st.composite
    def draw_document(draw: Any) -> Document:
        builder = DocumentBuilder(schema, pools, draw, max_depth, max_fields)
        return builder.document(operation, first, others)

    return draw_document()
