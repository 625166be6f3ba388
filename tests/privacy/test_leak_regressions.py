"""Counterexamples the leak hunt (test_leak_hunt.py) found, each fixed as the exact document
hypothesis shrank it to, replayed over real HTTP on SQLite and PostgreSQL.

A leak that is not fixed yet is a strict xfail: the day it is fixed the test passes, the
strict marker fails the run, and whoever fixed it deletes the marker here together with
the matching entry of hunt_oracle.KNOWN_LEAKS (which keeps the hunt judging everything
else meanwhile).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from conftest import Deployment

OTHER_OFFICE = "other_office_officer"  # immigration_officer, area 31.71, officer_id 1


def data_of(deployment: Deployment, query: str, persona: str,
            variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = deployment.post(query, persona, variables)
    assert response.status_code == 200, response.text
    return response.json()["data"]


# -- found by the hunt (fixed): an immigration officer of another office saw this office's
# officers and activities. Row scopes `own_officer` (Activity) and `all` (Officer) ignored the
# jurisdiction, and the other office's token carried an officer id that exists here too. The
# activities came with notes and geo points, and a home visit's point is the foreigner's home.
# Now `own_officer` also requires the actor's area and officers are scoped to the office
# serving the actor's jurisdiction (`serving_jurisdiction`).

# Shrunk by hypothesis from a random document (sent as is).
ACTIVITIES_OF_OTHER_OFFICE = (
    "query Hunt($v1: ID, $v2: DateTime, $v3: Boolean!, $v4: Int!) { __typename "
    "a1: _service @include(if: false) { __typename } "
    "a2: activities(officerId: $v1, since: $v2, jointOnly: $v3, first: $v4) { __typename "
    "... on ActivityConnection { __typename a3: nodes { __typename id } } } }"
)
OFFICER_OF_OTHER_OFFICE = "query Hunt($v1: ID!) { __typename a1: officer(id: $v1) " \
                          "{ __typename id } }"


def test_no_activity_of_this_office_as_officer_of_another_office(deployment: Deployment
                                                                  ) -> None:
    data = data_of(deployment, ACTIVITIES_OF_OTHER_OFFICE, OTHER_OFFICE,
                   {"v1": None, "v2": None, "v3": False, "v4": 1})
    assert data["a2"] is None or data["a2"]["a3"] == []


def test_no_activity_geo_or_notes_of_this_office_as_officer_of_another_office(
    deployment: Deployment,
) -> None:
    data = data_of(deployment, "{ activities(first: 1000) { nodes { id notes latitude "
                               "longitude areaCode } } }", OTHER_OFFICE)
    assert data["activities"] is None or data["activities"]["nodes"] == []


@pytest.mark.parametrize("role", ["immigration_officer", "immigration_supervisor"])
def test_no_officer_of_this_office_as_immigration_of_another_office(deployment: Deployment,
                                                                    role: str) -> None:
    # Each role names an officer of its own kind (a field officer, a supervisor).
    token = deployment.token_for(role, "31.71", 1 if role == "immigration_officer" else 2)
    one = deployment.post(OFFICER_OF_OTHER_OFFICE, variables={"v1": "1"}, token=token).json()
    assert one["data"]["a1"] is None
    every = deployment.post("{ officers { id name } }", token=token).json()
    assert every["data"]["officers"] in (None, [])


def test_other_office_leak_needs_an_officer_id_as_officer_of_another_office(
    deployment: Deployment,
) -> None:
    """The leak above was the officer id claim matching one of this office's officers. An
    officer's token without an officer id is no longer a way around it: the policy says an
    immigration officer's token names a field officer (`officer_kind`), so it is refused."""
    token = deployment.token_for("immigration_officer", "31.71")
    response = deployment.post("{ activities(first: 1000) { nodes { id } } }", token=token)
    assert response.status_code == 401
    assert b'"UNAUTHENTICATED"' in response.content
    assert b'"data"' not in response.content


# -- found with the above (by reading, not by the hunt, which judges reads): the officer of
# (fixed) another office could also record a field activity in this office's area, attributed
# to this office's officer with the same id: `recordActivity` checked only that the area
# existed. It now requires the area to lie in the caller's jurisdiction.

RECORD = "mutation($input: RecordActivityInput!) { recordActivity(input: $input) { id } }"
NOTES_OF_OFFICER_1 = "{ activities(first: 1000) { nodes { notes } } }"


def test_no_activity_recorded_here_as_officer_of_another_office(deployment: Deployment
                                                                ) -> None:
    notes = f"leak regression {uuid.uuid4().hex}"
    body = deployment.post(RECORD, OTHER_OFFICE, {"input": {
        "kind": "DOCUMENT_CHECK", "areaCode": deployment.facts.busiest_setiabudi_rt,
        "notes": notes}}).json()
    assert body["data"] == {"recordActivity": None} and body.get("errors")
    seen = data_of(deployment, NOTES_OF_OFFICER_1, "immigration_officer")["activities"]["nodes"]
    assert notes not in {n["notes"] for n in seen}
