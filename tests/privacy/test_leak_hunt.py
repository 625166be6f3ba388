"""The leak hunt: random valid GraphQL documents, drawn from the live schema, sent over real
HTTP as every persona outside immigration and as immigration staff of another office,
on SQLite and PostgreSQL. Each response is judged on its raw bytes and on every object in
it (hunt_oracle.py): no identity value, no street address or row beyond the persona's reach,
no field the default-visibility table hides, no public count finer than a kecamatan or
below five, no place finer than an area of five foreigners for a report or activity with a
hidden link (rule 7, no linking), and an out-of-scope key answers exactly like a missing one.

The hunt runs on a database of its own (a small office, so that some public cells are
suppressed and one sits exactly on the threshold), because its mutations write.

Bounded here (seeded, reproducible: the same documents every run); a longer run for
release checks, with SISADA_LEAK_HUNT_EXAMPLES documents per persona and backend and a
fresh (printed) SISADA_LEAK_HUNT_SEED:
    scripts/leak-hunt [DOCUMENTS] [pytest args]
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import graphql as gql
import httpx
import pytest
from conftest import (
    Deployment,
    _create_pg_database,
    _drop_pg_database,
    run_async,
    run_in_thread,
    seed_both,
    serve_deployment,
)
from hunt_documents import MISSING, Document, Key, Pools, documents, pools_from_facts
from hunt_oracle import Judge, Persona, World, missing_twin, read_world
from hypothesis import HealthCheck, given, note, seed, settings

from resolvers import migrate
from schema.root import build_schema

OFFICE_CITY = "31.74"
# A small office: Kebayoran Lama has exactly 5 foreigners, Tebet 4, and Pancoran, Jagakarsa
# and Pesanggrahan 3 each (public cells suppressed); Setiabudi 29.
HUNT_FOREIGNERS = 120

# Personas of the hunt beyond conftest.PERSONAS: (role, area, officer id).
EXTRA_PERSONAS: dict[str, tuple[str, str | None, int | None]] = {
    "other_office_supervisor": ("immigration_supervisor", "31.71", 2),
}
HUNTED = ["setiabudi_police", "tebet_police", "city_police", "setiabudi_military",
          "tebet_district", "setiabudi_district", "rt_head", "public", "auditor",
          "other_office_officer", "other_office_supervisor"]

# Query documents per persona and backend, spread evenly over the root fields (and half as
# many mutation documents per mutation root). The default, about 300 documents per persona
# over both backends, keeps this file near two minutes; scripts/leak-hunt raises it.
PER_PERSONA = int(os.environ.get("SISADA_LEAK_HUNT_EXAMPLES") or 140)
BASE_SEED = int(os.environ.get("SISADA_LEAK_HUNT_SEED") or 20240611)


@dataclass
class Hunt:
    deployment: Deployment
    schema: gql.GraphQLSchema
    world: World
    pools: Pools
    judges: dict[str, Judge] = field(default_factory=dict)
    documents: Counter[str] = field(default_factory=Counter)  # hunted so far, by persona
    compared: Counter[str] = field(default_factory=Counter)  # of which re-sent with twins

    def pools_for(self, persona: str) -> Pools:
        """The shared pools, with the persona's own rows drawn about as often as all others:
        leaks of fields hide in rows in scope, leaks of rows in rows out of it."""
        scope = self.judge(persona).scope

        def weighted(keys: list[Key], inside: Callable[[Key], bool]) -> list[Key]:
            mine = [k for k in keys if k.kind != MISSING and inside(k)]
            return keys + mine * max(1, len(keys) // max(1, len(mine))) if mine else keys

        p = self.pools
        return replace(
            p,
            foreigners=weighted(p.foreigners, lambda k: int(k.value) in scope.foreigners),
            reports=weighted(p.reports, lambda k: int(k.value) in scope.reports),
            areas=weighted(p.areas, lambda k: scope.area_allowed(k.value)),
            located_areas=weighted(p.located_areas, lambda k: scope.area_allowed(k.value)),
            documents=weighted(p.documents,
                               lambda k: scope.document_owner(k.value) in scope.foreigners),
        )

    def token(self, persona: str) -> str | None:
        if persona in EXTRA_PERSONAS:
            return self.deployment.token_for(*EXTRA_PERSONAS[persona])
        return self.deployment.token(persona)

    def judge(self, persona: str) -> Judge:
        if persona not in self.judges:
            d = self.deployment
            self.judges[persona] = Judge(
                Persona.from_token(persona, self.token(persona)),
                lambda: run_async(read_world(d.database_url, d.registry_database_url)),
                OFFICE_CITY)
        return self.judges[persona]


def _live_schema(d: Deployment) -> gql.GraphQLSchema:
    """The whole schema the running gateway serves. Not its introspection: that shows each
    role its own contract only (schema/introspection_view.py), and the hunt must try every
    field on every persona, readable or not."""
    return d.app.state.sisada.schema._schema


def _cursors(d: Deployment) -> list[str]:
    """Real cursors (some pointing at rows outside a persona's scope)."""
    cursors = []
    for order, first in (("ID", 3), ("ID", 40), ("PERMIT_EXPIRES_ON", 7),
                         ("PERMIT_EXPIRES_ON", 11)):
        body = d.gql(f"{{ foreigners(first: {first}, orderBy: {order}) "
                     "{ pageInfo { endCursor } } }", "immigration_officer")
        cursors.append(body["data"]["foreigners"]["pageInfo"]["endCursor"])
    for root, persona in (("reports", "immigration_officer"),
                          ("activities", "immigration_supervisor")):
        body = d.gql(f"{{ {root}(first: 5) {{ pageInfo {{ endCursor }} }} }}", persona)
        cursors.append(body["data"][root]["pageInfo"]["endCursor"])
    return [c for c in cursors if c]


def _area_sample(world: World, rt_head_area: str) -> list[str]:
    """Every city and kecamatan code, and a spread of lower ones (Setiabudi and Tebet first)."""
    by_level: dict[str, list[str]] = {}
    for code, row in sorted(world.areas.items()):
        by_level.setdefault(row["level"], []).append(code)
    lived = sorted({r["rt_code"] for r in world.current.values()})
    chosen = by_level["city"] + by_level["kecamatan"]
    for level, count in (("kelurahan", 14), ("rw", 10), ("rt", 10)):
        codes = by_level[level]
        near = [c for c in codes if c.startswith(("31.74.01.", "31.74.02."))]
        chosen += near[:: max(1, len(near) // (count // 2))][: count // 2]
        chosen += codes[:: max(1, len(codes) // (count // 2))][: count // 2]
    chosen += lived[:: max(1, len(lived) // 8)][:8]
    chosen += [rt_head_area, rt_head_area.rsplit(".", 1)[0]]
    return sorted(set(chosen))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hunt(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Hunt]:
    tmp: Path = tmp_path_factory.mktemp(f"hunt-{request.param}")
    pg_names: list[str] = []
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'hunt.db'}"
        registry_url = f"sqlite+aiosqlite:///{tmp / 'hunt-registry.db'}"
    else:
        pg_names = [_create_pg_database(), _create_pg_database()]
        url, registry_url = (f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
                             for name in pg_names)
    try:
        run_in_thread(migrate.upgrade, url)
        run_async(seed_both(url, registry_url, HUNT_FOREIGNERS))
        world = run_async(read_world(url, registry_url))
        # The hunt sends thousands of requests from one address: rate limits would only
        # turn documents into 429s (they have tests of their own). The standard
        # introspection query nests `ofType` 15 deep: let it through the depth limit.
        with serve_deployment(request.param, url, registry_url, tmp, rate_limits_enabled=False,
                              introspection="on", max_query_depth=16) as deployment:
            pools = pools_from_facts(deployment.facts,
                                     _area_sample(world, deployment.facts.busiest_setiabudi_rt),
                                     _cursors(deployment))
            yield Hunt(deployment, _live_schema(deployment), world, pools)
    finally:
        for name in pg_names:
            _drop_pg_database(name)


# -- one document -------------------------------------------------------------------


@dataclass
class Tally:
    requested: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)  # root fields with a value
    documents: int = 0
    compared: int = 0  # documents re-sent with out-of-scope keys swapped for missing ones
    seen: dict[str, int] = field(default_factory=dict)  # objects judged, by type


def _send(hunt: Hunt, persona: str, document: Document, substitute: Any = None
          ) -> httpx.Response:
    text, variables = document.render(substitute)
    d = hunt.deployment
    token = hunt.token(persona)
    if document.method == "POST":
        return d.post(text, "public", variables, token=token)  # no token: anonymous
    headers = {"authorization": f"Bearer {token}"} if token else {}
    params = {"query": text, "variables": json.dumps(variables)}
    return d.client.get(f"{d.base_url}/graphql", params=params, headers=headers)


def hunt_one(hunt: Hunt, persona: str, document: Document, tally: Tally) -> None:
    text, variables = document.render()
    note(f"persona: {persona} ({hunt.deployment.backend})")
    note(repr(document))
    invalid = gql.validate(hunt.schema, gql.parse(text))
    assert not invalid, f"the generator drew an invalid document: {invalid[0].message}"
    judge = hunt.judge(persona)
    response = _send(hunt, persona, document)
    request = text + json.dumps(variables, ensure_ascii=False)
    problems = judge.check(document, request, response.status_code, response.content)
    tally.documents += 1
    tally.requested.update(document.root_fields())
    body = _json(response)
    data = body.get("data") if isinstance(body, dict) else None
    for name in document.root_fields():
        key = next((k for k, v in document.aliases.items() if v == name), name)
        if isinstance(data, dict) and (data.get(key) is not None or data.get(name) is not None):
            tally.answered[name] += 1
    if document.operation == "query" and not problems:
        problems += _compare_with_missing(hunt, persona, document, response, judge, tally)
    assert not problems, _explain(persona, hunt.deployment.backend, text, variables,
                                  response, problems)


def _compare_with_missing(hunt: Hunt, persona: str, document: Document,
                          response: httpx.Response, judge: Judge, tally: Tally) -> list[str]:
    """SPEC rule 4: the same document with every out-of-scope key swapped for a key that
    names nothing must get the same bytes back (echoed keys swapped back first)."""
    swapped = {k: missing_twin(k) for k in document.named_keys()
               if judge.scope.key_out_of_scope(k)}
    if not swapped:
        return []
    tally.compared += 1
    twin = _send(hunt, persona, document, lambda k: swapped.get(k, k))
    text = twin.content.decode()
    for original, missing in sorted(swapped.items(), key=lambda kv: -len(kv[1].value)):
        text = text.replace(missing.value, original.value)
    if (twin.status_code == response.status_code
            and _sans_locations(text) == _sans_locations(response.content.decode())):
        return []
    keys = ", ".join(f"{k.kind} {k.value}" for k in swapped)
    return [f"out-of-scope keys ({keys}) answer differently from missing ones:\n"
            f"  out of scope: HTTP {response.status_code} {response.text[:600]}\n"
            f"  missing:      HTTP {twin.status_code} {text[:600]}"]


def _sans_locations(text: str) -> Any:
    """The body without error locations: they point into the document, whose keys differ."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    for error in body.get("errors") or [] if isinstance(body, dict) else []:
        error.pop("locations", None)
    return body


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _explain(persona: str, backend: str, text: str, variables: dict[str, Any],
             response: httpx.Response, problems: list[str]) -> str:
    return "\n".join([
        f"LEAK as {persona} on {backend}:",
        *[f"  - {p}" for p in problems[:10]],
        "document:", text,
        "variables: " + json.dumps(variables, ensure_ascii=False),
        f"response (HTTP {response.status_code}): {response.text[:1500]}",
    ])


# -- the hunts -----------------------------------------------------------------------

_CODE_SCHEMA = build_schema()._schema
QUERY_ROOTS = sorted(_CODE_SCHEMA.query_type.fields)
MUTATION_ROOTS = sorted(_CODE_SCHEMA.mutation_type.fields)
EXAMPLES = max(1, math.ceil(PER_PERSONA / len(QUERY_ROOTS)))
MUTATION_EXAMPLES = max(5, EXAMPLES // 2)

# Rows that each persona must have been shown by the end of its hunt: the hunt is known to
# look at real data, not only at errors and nulls. (Own reports of district officials and
# RT heads exist once the mutation hunt, which runs first, has submitted some.)
_PARTNER = {"Foreigner", "Residence", "Report", "Area", "Officer"}
MUST_SEE: dict[str, set[str]] = {
    "setiabudi_police": _PARTNER | {"Activity"},
    "setiabudi_military": _PARTNER | {"Activity"},
    "tebet_police": _PARTNER,
    "city_police": _PARTNER | {"Activity"},
    "tebet_district": {"Foreigner", "Residence", "Report", "Area"},
    "setiabudi_district": {"Foreigner", "Residence", "Report", "Area"},
    "rt_head": {"Area", "Report", "ReportReceipt"},
    "public": {"Area", "ReportStatus", "ReportReceipt"},
    "auditor": {"SisadaMe", "ReportStatus"},
    "other_office_officer": {"ForeignerCheck", "SisadaMe"},
    "other_office_supervisor": {"ForeignerCheck", "SisadaMe"},
}


def hunt_many(hunt: Hunt, persona: str, operation: str, root: str, examples: int) -> Tally:
    tally = Tally()
    judge = hunt.judge(persona)
    seen_before = dict(judge.seen)

    @seed(BASE_SEED + zlib.crc32(f"{persona}/{operation}/{root}".encode()))
    @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(document=documents(hunt.schema, hunt.pools_for(persona), operation, root))
    def run(document: Document) -> None:
        hunt_one(hunt, persona, document, tally)

    run()
    tally.seen = {t: n - seen_before.get(t, 0) for t, n in judge.seen.items()}
    hunt.documents[persona] += tally.documents
    hunt.compared[persona] += tally.compared
    return tally


def test_every_root_field_is_hunted(hunt: Hunt) -> None:
    assert sorted(hunt.schema.query_type.fields) == QUERY_ROOTS
    assert sorted(hunt.schema.mutation_type.fields) == MUTATION_ROOTS


@pytest.mark.parametrize("root", MUTATION_ROOTS)
@pytest.mark.parametrize("persona", HUNTED)
def test_no_leak_in_random_mutations(hunt: Hunt, persona: str, root: str) -> None:
    tally = hunt_many(hunt, persona, "mutation", root, MUTATION_EXAMPLES)
    assert tally.documents >= MUTATION_EXAMPLES
    if root == "submitReport" and MUTATION_EXAMPLES >= 5:
        assert tally.answered["submitReport"], "everyone may report: none went through"


@pytest.mark.parametrize("root", QUERY_ROOTS)
@pytest.mark.parametrize("persona", HUNTED)
def test_no_leak_in_random_queries(hunt: Hunt, persona: str, root: str) -> None:
    tally = hunt_many(hunt, persona, "query", root, EXAMPLES)
    assert tally.documents >= EXAMPLES


@pytest.mark.parametrize("persona", HUNTED)
def test_the_hunt_met_real_rows(hunt: Hunt, persona: str) -> None:
    """Runs after the hunts of its backend (pytest keeps the order within one fixture param)."""
    if hunt.documents[persona] < 100:
        pytest.skip(f"only {hunt.documents[persona]} documents hunted as {persona} here")
    seen = {t for t, n in hunt.judge(persona).seen.items() if n}
    assert MUST_SEE[persona] <= seen, f"never shown: {MUST_SEE[persona] - seen}"
    if persona != "city_police":  # every row of the office is in its scope
        assert hunt.compared[persona], "no document named a row outside the scope"


# -- public statistics: no differencing ---------------------------------------------

PUBLIC_COUNT = "code level foreignerCount __typename"


def _public_cells(hunt: Hunt) -> list[tuple[str, str, Any]]:
    """Every area cell the public can reach, by every path: (path, code, count)."""
    d = hunt.deployment
    codes = sorted(hunt.world.areas)
    cells: list[tuple[str, str, Any]] = []

    def collect(path: str, body: dict[str, Any]) -> None:
        assert "data" in body, body
        for value in (body["data"] or {}).values():
            for area in value if isinstance(value, list) else [value]:
                if area is not None:
                    cells.append((path, area["code"], area.get("foreignerCount")))

    for level in ("city", "kecamatan", "kelurahan", "rw", "rt", None):
        for parent in [None, OFFICE_CITY, *[c for c in codes if c.count(".") == 2]]:
            args = ", ".join(f'{k}: "{v}"' for k, v in (("level", level),
                                                        ("parentCode", parent)) if v)
            body = d.gql(f"{{ areas{f'({args})' if args else ''} {{ {PUBLIC_COUNT} }} }}")
            collect(f"areas({args})", body)
    for start in range(0, len(codes), 100):
        reps = [{"__typename": "Area", "code": c} for c in codes[start:start + 100]]
        body = d.gql("query($r: [_Any!]!) { _entities(representations: $r) "
                     f"{{ ... on Area {{ {PUBLIC_COUNT} }} }} }}", "public", r=reps)
        collect("_entities", body)
    upper = [c for c in codes if c.count(".") <= 3]
    for start in range(0, len(upper), 25):
        fields = " ".join(f'c{i}: area(code: "{c}") {{ {PUBLIC_COUNT} '
                          f"parent {{ {PUBLIC_COUNT} }} children {{ {PUBLIC_COUNT} }} }}"
                          for i, c in enumerate(upper[start:start + 25]))
        body = d.gql(f"{{ {fields} }}")
        for value in (body["data"] or {}).values():
            if value is not None:
                cells.append(("area", value["code"], value["foreignerCount"]))
                for nested in [value.get("parent"), *(value.get("children") or [])]:
                    if nested is not None:
                        cells.append(("area.parent/children", nested["code"],
                                      nested["foreignerCount"]))
    return cells


def test_public_counts_cannot_be_differenced_as_public(hunt: Hunt) -> None:
    cells = _public_cells(hunt)
    assert cells
    world = hunt.world
    by_code: dict[str, set[Any]] = {}
    for path, code, count in cells:
        by_code.setdefault(code, set()).add(count)
        assert world.areas[code]["level"] == "kecamatan", f"{path} gave the public {code}"
    # One value per cell whatever the path, each of at least 5 or suppressed.
    for code, counts in by_code.items():
        true_count = world.counts.get(code, 0)
        assert counts == {true_count if true_count >= 5 else None}, (code, counts, true_count)
    # No cell contains another, so no difference of two published counts is a cell.
    for a in by_code:
        for b in by_code:
            assert a == b or not b.startswith(a + "."), (a, b)
    # The hunt's office has suppressed cells and one exactly at the threshold.
    assert None in {c for counts in by_code.values() for c in counts}
    assert 5 in {world.counts.get(code) for code in by_code}
