"""Constant SQL statements per query, whatever the length of its lists (SPEC: Performance).

Over real HTTP against the running gateway, every statement the server's engine sends
to the database is counted. A list of 10 and a list of 200 cost the same statements:
nested relations and counts are batched per request by DataLoaders, never one per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conftest import Deployment
from sqlalchemy import event

from resolvers.paging import encode_cursor

# Generous enough for a page query plus one batch per nested relation.
MAX_STATEMENTS = 8
# A response carrying identity also writes its access-trail batch: the chain lock, the last
# entry, one insert for the entries and one for their records, the commit — as many for 10
# records as for 200.
TRAIL_WRITE_STATEMENTS = 5

FOREIGNERS = """
query ($first: Int!) {
  foreigners(first: $first) {
    nodes { id nationality residence { area { name foreignerCount } } permits { number } }
  }
}"""

REPORTS = """
query ($first: Int!, $after: String) {
  reports(first: $first, after: $after) {
    nodes { id area { name } foreigner { nationality } assignedOfficer { name } }
  }
}"""

ACTIVITIES = """
query ($first: Int!, $after: String) {
  activities(first: $first, after: $after) {
    nodes { id officer { name } subject { nationality } area { code } }
  }
}"""

AREAS = """
query ($level: AreaLevel!) {
  areas(level: $level) {
    code foreignerCount byNationality { key count } children { foreignerCount }
  }
}"""


@contextmanager
def _counted_statements(deployment: Deployment) -> Iterator[list[str]]:
    """Every statement the server's engine executes for requests while the block runs. Two
    timers of the process are left out: the SQLite log checkpoint
    (Database.checkpoint_forever) and the live feeds' relay polling the event outbox
    (gateway/subscriptions/relay.py); no query reads the outbox."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not (statement.startswith("PRAGMA wal_checkpoint") or "event_outbox" in statement):
            statements.append(statement)

    engine = deployment.app.state.sisada.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _run(deployment: Deployment, query: str, persona: str, **variables: Any
         ) -> tuple[list[str], dict[str, Any]]:
    """(statements executed, response data) for one request."""
    with _counted_statements(deployment) as statements:
        body = deployment.gql(query, persona, **variables)
    assert "errors" not in body, body
    return list(statements), body["data"]


def _statements_for_10_and_200(
    deployment: Deployment, query: str, persona: str, root: str, **variables: Any
) -> tuple[int, int]:
    _run(deployment, query, persona, first=10, **variables)  # warm-up: pool connections
    few, few_data = _run(deployment, query, persona, first=10, **variables)
    many, many_data = _run(deployment, query, persona, first=200, **variables)
    # The comparison only means something when the lists really differ in length.
    assert len(few_data[root]["nodes"]) == 10
    assert len(many_data[root]["nodes"]) > 10
    return len(few), len(many)


def test_foreigner_list_costs_constant_statements_as_immigration_officer(
    deployment: Deployment,
) -> None:
    few, many = _statements_for_10_and_200(deployment, FOREIGNERS, "immigration_officer",
                                           "foreigners")
    assert few == many
    assert many <= MAX_STATEMENTS + TRAIL_WRITE_STATEMENTS


def test_foreigner_list_costs_constant_statements_as_police(deployment: Deployment) -> None:
    few, many = _statements_for_10_and_200(deployment, FOREIGNERS, "setiabudi_police",
                                           "foreigners")
    assert few == many
    assert many <= MAX_STATEMENTS


def test_redacted_relation_runs_no_statement_as_police(deployment: Deployment) -> None:
    # `permits` is immigration's: for police it is null and its loader never runs.
    with_permits, _ = _run(deployment, FOREIGNERS, "setiabudi_police", first=50)
    without = FOREIGNERS.replace("permits { number }", "")
    without_permits, _ = _run(deployment, without, "setiabudi_police", first=50)
    assert len(with_permits) == len(without_permits)


def _after_seeded(deployment: Deployment, kind: str, rows: list[dict[str, Any]]) -> str:
    """A cursor just past the newest seeded row: pages then hold seeded rows only, whose
    relations are populated alike, whatever other tests have written since. Sealed with
    the server's key, as every cursor a client holds is."""
    plain = encode_cursor(kind, [max(r["id"] for r in rows) + 1])
    return str(deployment.app.state.sisada.schema.cursor_seal.seal(plain))


def test_report_list_costs_constant_statements_as_supervisor(deployment: Deployment) -> None:
    few, many = _statements_for_10_and_200(
        deployment, REPORTS, "immigration_supervisor", "reports",
        after=_after_seeded(deployment, "REPORT", deployment.facts.reports))
    assert few == many
    assert many <= MAX_STATEMENTS


def test_activity_list_costs_constant_statements_as_supervisor(deployment: Deployment) -> None:
    few, many = _statements_for_10_and_200(
        deployment, ACTIVITIES, "immigration_supervisor", "activities",
        after=_after_seeded(deployment, "ACTIVITY", deployment.facts.activities))
    assert few == many
    assert many <= MAX_STATEMENTS


def test_area_counts_cost_constant_statements_as_supervisor(deployment: Deployment) -> None:
    _run(deployment, AREAS, "immigration_supervisor", level="KECAMATAN")  # warm-up
    kecamatan, kecamatan_data = _run(deployment, AREAS, "immigration_supervisor",
                                     level="KECAMATAN")
    kelurahan, kelurahan_data = _run(deployment, AREAS, "immigration_supervisor",
                                     level="KELURAHAN")
    assert len(kecamatan_data["areas"]) == 10
    assert len(kelurahan_data["areas"]) == 65
    assert len(kecamatan) == len(kelurahan)
    assert len(kelurahan) <= MAX_STATEMENTS


def test_area_counts_cost_constant_statements_as_police(deployment: Deployment) -> None:
    _run(deployment, AREAS, "setiabudi_police", level="KECAMATAN")  # warm-up
    kecamatan, kecamatan_data = _run(deployment, AREAS, "setiabudi_police", level="KECAMATAN")
    kelurahan, kelurahan_data = _run(deployment, AREAS, "setiabudi_police", level="KELURAHAN")
    assert len(kecamatan_data["areas"]) == 1
    assert len(kelurahan_data["areas"]) > 1
    assert len(kecamatan) == len(kelurahan)
    assert len(kelurahan) <= MAX_STATEMENTS


def test_public_kecamatan_counts_cost_few_statements(deployment: Deployment) -> None:
    statements, data = _run(deployment, AREAS, "public", level="KECAMATAN")
    assert len(data["areas"]) == 10
    assert len(statements) <= MAX_STATEMENTS


PAGE_WITH_FRAGMENTS = """
query { foreigners(first: 20) { list: nodes { id ...Relations } } }
fragment Relations on Foreigner {
  p: permits { number expiresOn }
  residence { ... on Residence { area { code name } } }
}"""

ONE = """
query ($id: ID!) { foreigner(id: $id) {
  id p: permits { number expiresOn } residence { area { code name } }
} }"""


def test_page_relations_equal_the_ones_loaded_one_by_one_as_immigration_officer(
    deployment: Deployment,
) -> None:
    # A list fetches its nodes' permits and areas for the whole page at once (also through
    # aliases and fragments); each must be what the foreigner alone resolves to.
    _, page = _run(deployment, PAGE_WITH_FRAGMENTS, "immigration_officer")
    nodes = page["foreigners"]["list"]
    assert len(nodes) == 20
    assert any(node["p"] for node in nodes) and any(node["residence"] for node in nodes)
    for node in nodes:
        _, alone = _run(deployment, ONE, "immigration_officer", id=node["id"])
        assert alone["foreigner"] == node
