"""Reads through the workflow: the API, the pages and the CLI ask the same read functions
(``workflow.cases.queries``), which apply the actor's policy in SQL. An actor of another
institution or programme does not see the row, on every interface alike."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import Result
from web_harness import api_token, build_world, client, login

from models import Case, Institution, InstitutionKind, Module, Offering, Role
from models.db import session_factory
from workflow.cases import queries
from workflow.errors import NotFound
from workflow.policy.actors import Actor

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
NOT_THEIRS = "'outsider' does not examine the case's programme INF-BSC; assign one who does"


@pytest.fixture(params=["sqlite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue("sqlite_engine")  # type: ignore[no-any-return]


@pytest.fixture
def world(engine: Engine, data_dir: Path) -> Any:
    return build_world(engine, data_dir, NOW, states=("submitted", "in_review"))


Recog = Callable[..., Result]


@pytest.fixture
def recog(cli_in_process: Recog) -> Recog:
    """The ``recog`` CLI in this process, on the world's database, at the tests' moment."""
    return cli_in_process


def bearer(app: Any, engine: Engine, username: str) -> Any:
    c = client(app)
    c.headers["Authorization"] = f"Bearer {api_token(engine, username, NOW)}"
    return c


def test_the_examiners_offered_for_a_case_are_those_who_may_review_it(
    app: Any, engine: Engine, world: Any, clerk: Any, clerk_api: Any, recog: Recog
) -> None:
    """The case page offers the examiners of the case's programme, not the examiner of
    another programme of the same office; assigning them is refused by the API, the page's
    event and the CLI with one sentence (the rule is the workflow's, not the page's)."""
    case_id = world.cases["submitted"]
    page = clerk.get(f"/cases/{case_id}").text
    assert 'value="examiner"' in page
    assert 'value="outsider"' not in page
    r = clerk_api.put(f"/api/v1/cases/{case_id}/examiner", json={"username": "outsider"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == NOT_THEIRS
    r = clerk_api.post(
        f"/api/v1/cases/{case_id}/events",
        json={"event": "start_review", "data": {"examiner": "outsider"}},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"].endswith(NOT_THEIRS)
    refused = recog("case", "assign", str(case_id), "outsider", "--actor", "clerk")
    assert refused.exit_code == 1
    assert NOT_THEIRS in str(refused.exception) + refused.output
    r = clerk_api.put(f"/api/v1/cases/{case_id}/examiner", json={"username": "examiner"})
    assert r.status_code == 200, r.text


def test_institutions_are_the_partners_and_the_actors_own(
    app: Any, engine: Engine, world: Any, recog: Recog
) -> None:
    """Another home institution is not shown, by the API or the CLI (the same read)."""
    with session_factory(engine)() as s:
        partners = set(
            s.scalars(select(Institution.code).where(Institution.kind == InstitutionKind.PARTNER))
        )
    assert partners
    for label, own, other in (
        ("clerk", "uni-musterstadt.de", "uni-b.example"),
        ("clerk_b", "uni-b.example", "uni-musterstadt.de"),
    ):
        with bearer(app, engine, world.users[label]) as c:
            api = {i["code"] for i in c.get("/api/v1/institutions").json()}
        assert own in api
        assert other not in api
        assert partners <= api  # every partner, for every office
        listed = recog("institution", "list", "--actor", world.users[label], "--json")
        assert listed.exit_code == 0, listed.output
        assert {i["code"] for i in json.loads(listed.output)} == api
    everyone = recog("institution", "list", "--json")  # the operator at the console
    assert {"uni-musterstadt.de", "uni-b.example"} <= {
        i["code"] for i in json.loads(everyone.output)
    }


def test_the_catalogue_is_one_read_for_the_api_and_the_cli(
    app: Any, engine: Engine, world: Any, clerk_api: Any, recog: Recog
) -> None:
    with session_factory(engine)() as s:
        partner = s.scalar(
            select(Institution.code)
            .join(Offering, Offering.institution_id == Institution.id)
            .join(Case, Case.offering_id == Offering.id)
            .where(Case.id == world.cases["in_review"])
        )
    page = clerk_api.get("/api/v1/catalogue", params={"partner": partner, "limit": 200}).json()
    listed = recog("catalog", "list", "--actor", "clerk", "--json")
    assert listed.exit_code == 0, listed.output
    cli = [(o["id"], o["partner"]) for o in json.loads(listed.output)]
    assert [(o["id"], o["partner"]) for o in page["items"]] == [
        row for row in cli if row[1] == partner
    ]
    assert page["total"] == len(page["items"]) > 0


def test_no_course_for_an_actor_of_no_institution(engine: Engine, world: Any) -> None:
    nobody = Actor(role=Role.CLERK, id=1, institution_id=None)
    with session_factory(engine)() as s:
        offering = s.scalar(select(Case.offering_id).where(Case.id == world.cases["in_review"]))
        assert offering is not None
        with pytest.raises(NotFound, match=f"course offering {offering} not found"):
            queries.course(s, offering, actor=nobody)
        assert queries.catalogue(s, actor=nobody) == ([], 0)
        assert queries.course(s, offering, actor=world.net.clerk)[0].id == offering


def test_the_cohort_page_names_the_course_only_to_whom_it_waits_for(
    app: Any, engine: Engine, world: Any
) -> None:
    case_id = world.cases["in_review"]
    with session_factory(engine)() as s:
        offering_id, title, module = s.execute(
            select(Case.offering_id, Offering.title, Module.code)
            .join(Offering, Offering.id == Case.offering_id)
            .join(Case.targets)
            .where(Case.id == case_id)
        ).first()
    path = f"/cohorts?offering={offering_id}&module={module}"
    for label, shown in (("examiner", True), ("outsider", False)):
        with client(app) as c:
            login(c, world.users[label])
            assert (title in c.get(path).text) is shown, label


def test_an_examiner_sees_only_the_precedents_of_their_programmes(
    app: Any, engine: Engine, world: Any, recog: Recog
) -> None:
    """``inconsistent`` takes the actor, never an institution: the CLI with --actor and the
    API answer alike (nothing to find yet, but the read is the same one)."""
    with bearer(app, engine, world.users["outsider"]) as c:
        assert c.get("/api/v1/precedents/inconsistent").json() == []
    checked = recog("precedents", "check", "--actor", "outsider", "--json")
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output) == []


def test_the_cohort_events_of_the_api_are_the_workflows(app: Any, clerk_api: Any) -> None:
    """The API publishes and checks the workflow's one list of cohort events."""
    from workflow import COHORT_EVENTS

    schema = clerk_api.get("/api/v1/openapi.json").json()
    assert schema["components"]["schemas"]["CohortIn"]["properties"]["event"]["enum"] == list(
        COHORT_EVENTS
    )
    r = clerk_api.post(
        "/api/v1/cohorts/decide",
        json={"offering_id": 1, "module": "INF-ML", "event": "recognize_partially"},
    )
    assert r.status_code == 422, r.text
    assert "a cohort is decided by recognize or reject" in r.text
