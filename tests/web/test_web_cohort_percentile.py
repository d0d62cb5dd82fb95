"""Percentile conversion in cohort decisions, over HTTP: the cohort page and the API's preview
show each case's grade by both methods (flagged as on the case page), the examiner chooses the
method for the whole cohort, a percentile cohort decision stores on every case what a single
percentile decision stores, and a cohort with one case the tables cannot convert is refused
as a whole. The demo seeds grading tables, so one of its waiting cases shows both."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from web_harness import (
    EXAMPLE_HOME_TABLE,
    EXAMPLE_PARTNER_TABLE,
    api_token,
    build_world,
    client,
    login,
)

from config.settings import load_settings
from models import Case, CaseEvent, GradingTable, Institution, Module, Offering
from models.db import make_engine, session_factory, transaction
from tests.factories import CaseFactory, OfferingFactory, bound, home_modules
from workflow.cases.documents import FileStore
from workflow.grading import tables as gt

PROBLEM = "application/problem+json"
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
# grade-conversion.md's worked example (tests/web/harness.py): the partner's ECTS
# table for ISCED 0612 and a home distribution. C: Bavarian 2.3, percentiles 2.0 (differ by
# 0.3, flagged); A: Bavarian 1.0, percentiles 1.0 (agree).
PARTNER, HOME = EXAMPLE_PARTNER_TABLE, EXAMPLE_HOME_TABLE


@pytest.fixture(params=["sqlite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


ON_POSTGRES = pytest.mark.parametrize(
    "engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def world(engine: Engine, data_dir: Path) -> Any:
    return build_world(engine, data_dir, NOW, states=("in_review",))


@pytest.fixture
def examiner(app: Any, world: Any) -> Any:
    with client(app) as c:
        c.csrf = login(c, world.users["examiner"])
        c.post("/language", data={"lang": "en", "csrf": c.csrf, "back": "/cases"})
        yield c


@pytest.fixture
def examiner_api(app: Any, engine: Engine, world: Any) -> Any:
    with client(app) as c:
        c.headers["Authorization"] = f"Bearer {api_token(engine, world.users['examiner'], NOW)}"
        yield c


def french_course() -> Offering:
    """The cohort's course: one recent offering of the French partner (the same each call)."""
    return OfferingFactory(institution__code="unl.fr", institution__country="FR", code="FR-01")


def cohort(
    engine: Engine, world: Any, data_dir: Path, results: list[tuple[str, str]]
) -> tuple[list[int], int]:
    """Cases in review of one recent unl.fr offering with the target module INF-ML, each
    student with their own partner result (grade, scheme); the cases and the offering."""
    store = FileStore(data_dir / "documents")
    ids = []
    with transaction(session_factory(engine)) as s, bound(s):
        for i, (grade, scheme) in enumerate(results):
            case_id = CaseFactory(
                state="in_review",
                offering=french_course(),
                student__matriculation_number=f"P{i:05d}",
                student__name=f"Cohort {i}",
                student__email=f"p{i}@student.example",
                student__preferred_language="en",
                targets=home_modules("INF-ML"),
                store=store,
                present=NOW,
            ).id
            result = dict(s.scalar(select(Case.result).where(Case.id == case_id)) or {})
            s.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(result={**result, "grade": grade, "scheme": scheme})
            )
            ids.append(case_id)
        offering = s.execute(select(Case.offering_id).where(Case.id == ids[0])).scalar_one()
    return ids, offering


def store_tables(engine: Engine, offering_id: int) -> tuple[int, int]:
    """The partner's ECTS table for the offering's ISCED-F field and the office's distribution
    for the module INF-ML, through workflow.grading.tables."""
    with transaction(session_factory(engine)) as s:
        offering = s.get(Offering, offering_id)
        assert offering is not None
        offering.isced_code = "0612"
        module = (
            s.execute(select(Module).where(Module.code == "INF-ML").join(Module.programme))
            .scalars()
            .first()
        )
        assert module is not None
        _, partner = gt.partner_grades([(x, Decimal(p), None) for x, p in PARTNER], ["ects"])
        partner_id = gt.store_table(
            s,
            kind="partner",
            institution_id=offering.institution_id,
            scheme="ects",
            reference_year=2025,
            source="ewp",
            grades=partner,
            now=NOW,
            isced_code="0612",
        )[0]
        home = gt.home_grades([(x, Decimal(p), None) for x, p in HOME])
        home_id = gt.store_table(
            s,
            kind="home",
            institution_id=module.programme.institution_id,
            scheme="de",
            reference_year=2024,
            source="manual",
            grades=home,
            now=NOW,
            module_id=module.id,
        )[0]
    return partner_id, home_id


def snapshot(engine: Engine, cases: list[int]) -> tuple[int, dict[int, Any]]:
    """The number of audit events and each case's state, version and decision."""
    with session_factory(engine)() as s:
        events = s.scalar(select(func.count()).select_from(CaseEvent)) or 0
        rows = {
            r.id: (r.state, r.version, r.decision)
            for r in s.execute(
                select(Case.id, Case.state, Case.version, Case.decision).where(Case.id.in_(cases))
            )
        }
    return events, rows


def decisions(engine: Engine, cases: list[int]) -> dict[int, dict[str, Any]]:
    with session_factory(engine)() as s:
        return {
            r.id: r.decision
            for r in s.execute(select(Case.id, Case.decision).where(Case.id.in_(cases)))
        }


def page_of(examiner: Any, offering: int) -> str:
    r = examiner.get(f"/cohorts?offering={offering}&module=INF-ML")
    assert r.status_code == 200, r.text
    return r.text


def row_of(page: str, case_id: int) -> str:
    return (
        page.split(f'href="/cases/{case_id}"')[0].rsplit("<tr", 1)[1]
        + page.split(f'href="/cases/{case_id}"')[1].split("</tr>")[0]
    )


def method_fieldset(page: str) -> str:
    return page.split('id="form-cohort-recognize"')[1].split("</fieldset>")[0]


def decide_form(examiner: Any, offering: int, cases: list[int], **extra: str) -> dict[str, str]:
    return {
        "csrf": examiner.csrf,
        "offering": str(offering),
        "module": "INF-ML",
        "event": "recognize",
        "grade": "",
        "cases": ",".join(map(str, cases)),
        "confirm": "1",
        **extra,
    }


# --- the preview: both conversions, flagged ------------------------------------------------------


def test_the_cohort_preview_shows_both_conversions_and_the_flag(
    engine: Engine, world: Any, data_dir: Path, examiner: Any, examiner_api: Any
) -> None:
    cases, offering = cohort(engine, world, data_dir, [("A", "ects"), ("C", "ects")])
    query = {"offering_id": offering, "module": "INF-ML"}

    # No grading table yet: the Bavarian grade, and why there is no percentile one.
    before = examiner_api.get("/api/v1/cohorts/preview", params=query).json()
    assert [(c["converted"], c["percentile"]) for c in before["cases"]] == [
        ("1.0", None),
        ("2.3", None),
    ]
    assert all("no partner grading table" in c["percentile_error"] for c in before["cases"])
    assert before["methods"] == ["bavarian"]
    page = page_of(examiner, offering)
    assert "not available: no grading tables" in row_of(page, cases[1])
    assert "the percentile conversion needs the partner&#39;s ECTS grading table" in page
    fieldset = method_fieldset(page)
    assert 'value="percentile" disabled' in fieldset
    assert f"it cannot convert case(s) #{cases[0]}, #{cases[1]}" in fieldset

    partner_id, home_id = store_tables(engine, offering)
    shown = examiner_api.get("/api/v1/cohorts/preview", params=query).json()
    assert shown["methods"] == ["bavarian", "percentile"]
    a, c = shown["cases"]
    assert (a["converted"], a["percentile"], a["differs"]) == ("1.0", "1.0", False)
    assert (c["converted"], c["percentile"], c["difference"], c["differs"]) == (
        "2.3",
        "2.0",
        "0.3",
        True,
    )
    assert {k: round(float(v), 1) for k, v in c["band"].items()} == {
        "lower": 12.0,
        "upper": 48.6,
        "midpoint": 30.3,
    }
    assert (c["partner_table_id"], c["home_table_id"]) == (partner_id, home_id)
    # Exactly what each case's own conversions show (the case page's view).
    for entry in shown["cases"]:
        own = examiner_api.get(f"/api/v1/cases/{entry['case_id']}/conversions").json()
        assert (entry["converted"], entry["percentile"], entry["differs"]) == (
            own["bavarian"]["grade"],
            own["percentile"]["grade"],
            own["differs"],
        )

    page = page_of(examiner, offering)
    flagged, agreeing = row_of(page, cases[1]), row_of(page, cases[0])
    assert 'class="differs"' in flagged
    assert "<strong>2.3</strong>" in flagged
    assert "<strong>2.0</strong>" in flagged
    assert "differs by 0.3" in flagged
    assert "(band 12.0 to 48.6 %)" in flagged
    assert "differs" not in agreeing
    assert "For 1 case(s) the two methods differ by 0.3 or more" in page
    assert (
        f"Partner table: {_code(engine, offering)} · ects · ISCED-F 0612 · 2025 · EWP "
        f"transcript (#{partner_id})" in page
    )
    assert (
        f"Home distribution: uni-musterstadt.de · module INF-ML · 2024 · entered by the "
        f"office (#{home_id})" in page
    )
    fieldset = method_fieldset(page)
    assert "<legend>Grade conversion for every case of the cohort</legend>" in fieldset
    assert 'id="cohort-method-bavarian" name="conversion" value="bavarian" checked' in fieldset
    assert 'value="percentile">' in fieldset  # offered, not chosen, not disabled
    assert '<label for="cohort-method-percentile">' in fieldset

    speak_german = examiner.post(
        "/language", data={"lang": "de", "csrf": examiner.csrf, "back": "/cases"}
    )
    assert speak_german.status_code == 303
    german = page_of(examiner, offering)
    # German pages write the difference, the percentile band and the grades with a comma.
    assert "Abweichung 0,3" in row_of(german, cases[1])
    assert "(Band 12,0 bis 48,6 %)" in row_of(german, cases[1])
    assert "<strong>2,3</strong>" in row_of(german, cases[1])
    assert "<strong>2,0</strong>" in row_of(german, cases[1])
    assert "Notenumrechnung für alle Fälle der Kohorte" in german
    assert "Bei 1 Fall/Fällen weichen die beiden Verfahren" in german


def _code(engine: Engine, offering_id: int) -> str:
    with session_factory(engine)() as s:
        return s.execute(
            select(Institution.code)
            .join(Offering, Offering.institution_id == Institution.id)
            .where(Offering.id == offering_id)
        ).scalar_one()


# --- deciding by percentiles ---------------------------------------------------------------------


@ON_POSTGRES
def test_a_cohort_decided_by_percentiles_stores_the_conversion_on_every_case(
    engine: Engine, world: Any, data_dir: Path, examiner: Any
) -> None:
    cases, offering = cohort(engine, world, data_dir, [("A", "ects"), ("C", "ects"), ("C", "ects")])
    partner_id, home_id = store_tables(engine, offering)
    before = snapshot(engine, cases)[0]
    done = examiner.post(
        "/cohorts/decide", data=decide_form(examiner, offering, cases, conversion="percentile")
    )
    assert done.status_code == 303, done.text
    assert "decided=3" in done.headers["location"]
    assert snapshot(engine, cases)[0] == before + 3  # one audit event per case
    stored = decisions(engine, cases)
    assert [stored[c]["grade"] for c in cases] == ["1.0", "2.0", "2.0"]  # not 2.3
    for case_id, grade in zip(cases, ["A", "C", "C"], strict=True):
        conversion = stored[case_id]["conversion"]
        assert (conversion["original"], conversion["scheme"], conversion["method"]) == (
            grade,
            "ects",
            "percentile",
        )
        assert conversion["grade"] == stored[case_id]["grade"]
        parameters = conversion["parameters"]
        assert (parameters["partner_table_id"], parameters["home_table_id"]) == (
            partner_id,
            home_id,
        )
        assert parameters["tables"]["partner"]["scope"] == "isced:0612"
        assert parameters["tables"]["home"]["scope"].startswith("module:")
        assert conversion["percentile"]["band"]["upper"]
        assert conversion["compared"]["method"] == "bavarian"
    assert stored[cases[1]]["conversion"]["compared"] == {
        "method": "bavarian",
        "grade": "2.3",
        "difference": "0.3",
        "differs": True,
    }
    assert stored[cases[0]]["conversion"]["compared"]["differs"] is False


@ON_POSTGRES
def test_the_api_decides_a_cohort_by_percentiles(
    engine: Engine, world: Any, data_dir: Path, examiner_api: Any
) -> None:
    cases, offering = cohort(engine, world, data_dir, [("C", "ects"), ("A", "ects")])
    partner_id, _ = store_tables(engine, offering)
    body = {
        "offering_id": offering,
        "module": "INF-ML",
        "event": "recognize",
        "data": {"modules": ["INF-ML"], "conversion": "percentile"},
        "expected_cases": cases,
    }
    done = examiner_api.post("/api/v1/cohorts/decide", json=body)
    assert done.status_code == 200, done.text
    assert [c["grade"] for c in done.json()["cases"]] == ["2.0", "1.0"]
    stored = decisions(engine, cases)
    assert {stored[c]["conversion"]["method"] for c in cases} == {"percentile"}
    assert {stored[c]["conversion"]["parameters"]["partner_table_id"] for c in cases} == {
        partner_id
    }


# --- refused as a whole --------------------------------------------------------------------------


@ON_POSTGRES
def test_a_cohort_with_a_case_the_tables_cannot_convert_is_refused_by_percentiles(
    engine: Engine, world: Any, data_dir: Path, examiner: Any, examiner_api: Any
) -> None:
    # One student's transcript came on the French scale: no partner table for it.
    cases, offering = cohort(engine, world, data_dir, [("A", "ects"), ("14", "fr"), ("C", "ects")])
    store_tables(engine, offering)
    lacking = cases[1]
    shown = examiner_api.get(
        "/api/v1/cohorts/preview", params={"offering_id": offering, "module": "INF-ML"}
    ).json()
    assert [c["percentile"] for c in shown["cases"]] == ["1.0", None, "2.0"]
    assert "no partner grading table for" in shown["cases"][1]["percentile_error"]
    assert "on scheme fr" in shown["cases"][1]["percentile_error"]
    assert shown["methods"] == ["bavarian"]
    page = page_of(examiner, offering)
    assert "not available: no partner grading table" in row_of(page, lacking)
    fieldset = method_fieldset(page)
    assert 'value="percentile" disabled' in fieldset
    assert f"it cannot convert case(s) #{lacking} " in fieldset

    before = snapshot(engine, cases)
    refused = examiner.post(
        "/cohorts/decide", data=decide_form(examiner, offering, cases, conversion="percentile")
    )
    assert refused.status_code == 422
    assert f"case {lacking} of its 3 cannot be converted by percentiles" in refused.text
    assert "so nothing was decided" in refused.text
    assert f"case {cases[0]}:" not in refused.text  # only the case that cannot be named
    assert 'id="cohort-method-bavarian" name="conversion" value="bavarian" checked' in refused.text
    assert snapshot(engine, cases) == before

    body = {
        "offering_id": offering,
        "module": "INF-ML",
        "event": "recognize",
        "data": {"modules": ["INF-ML"], "conversion": "percentile"},
    }
    api_refused = examiner_api.post("/api/v1/cohorts/decide", json=body)
    assert api_refused.status_code == 422
    assert api_refused.headers["content-type"] == PROBLEM
    assert f"case {lacking}: no partner grading table" in api_refused.json()["detail"]
    assert snapshot(engine, cases) == before

    # The Bavarian formula converts every case: the cohort can be decided that way.
    done = examiner_api.post(
        "/api/v1/cohorts/decide", json={**body, "data": {"modules": ["INF-ML"]}}
    )
    assert done.status_code == 200, done.text
    assert {d["conversion"]["method"] for d in decisions(engine, cases).values()} == {"bavarian"}


# --- the default stays Bavarian ------------------------------------------------------------------


def test_the_default_stays_the_bavarian_formula(
    engine: Engine, world: Any, data_dir: Path, examiner: Any, examiner_api: Any
) -> None:
    web_cases, offering = cohort(engine, world, data_dir, [("C", "ects"), ("A", "ects")])
    store_tables(engine, offering)  # percentiles possible, and C differs: still Bavarian
    page = page_of(examiner, offering)
    assert 'value="bavarian" checked' in method_fieldset(page)
    assert 'value="percentile" checked' not in page
    # What the form posts unless the examiner picks the other method.
    done = examiner.post(
        "/cohorts/decide", data=decide_form(examiner, offering, web_cases, conversion="bavarian")
    )
    assert done.status_code == 303, done.text
    stored = decisions(engine, web_cases)
    assert [stored[c]["grade"] for c in web_cases] == ["2.3", "1.0"]
    assert {stored[c]["conversion"]["method"] for c in web_cases} == {"bavarian"}
    assert all("compared" not in stored[c]["conversion"] for c in web_cases)

    # An API client that names no method, as before percentile conversion existed.
    store = FileStore(data_dir / "documents")
    with transaction(session_factory(engine)) as s, bound(s):
        api_cases = [
            CaseFactory(
                state="in_review",
                offering=french_course(),
                student__matriculation_number=f"Q{i}",
                student__name=f"Api {i}",
                student__email=f"q{i}@student.example",
                targets=home_modules("INF-ML"),
                store=store,
                present=NOW,
            ).id
            for i in range(2)
        ]
        for case_id in api_cases:
            result = dict(s.scalar(select(Case.result).where(Case.id == case_id)) or {})
            s.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(result={**result, "grade": "C", "scheme": "ects"})
            )
    done = examiner_api.post(
        "/api/v1/cohorts/decide",
        json={
            "offering_id": offering,
            "module": "INF-ML",
            "event": "recognize",
            "data": {"modules": ["INF-ML"]},
        },
    )
    assert done.status_code == 200, done.text
    assert [c["grade"] for c in done.json()["cases"]] == ["2.3", "2.3"]
    assert {d["conversion"]["method"] for d in decisions(engine, api_cases).values()} == {
        "bavarian"
    }


def test_the_openapi_schema_names_the_cohort_conversion(anon: Any) -> None:
    schema = anon.get("/api/v1/openapi.json").json()
    models = schema["components"]["schemas"]
    conversion = models["CohortIn"]["properties"]["data"]["properties"]["conversion"]
    assert conversion["enum"] == ["bavarian", "percentile"]
    assert conversion["default"] == "bavarian"
    preview = models["CohortPreviewOut"]["properties"]
    assert preview["methods"]["items"]["enum"] == ["bavarian", "percentile"]
    for field in ("percentile", "percentile_error", "difference", "differs", "band"):
        assert field in models["CohortCase"]["properties"]


# --- the demo -------------------------------------------------------------------------------------


def test_the_demo_seeds_grading_tables_and_a_waiting_case_shows_both(
    demo_template: Path, tmp_path: Path
) -> None:
    from web.app import create_app
    from workflow.demo import DEMO_PARTNER_TABLE  # the demo is the subject

    db = tmp_path / "demo.sqlite3"
    shutil.copy(demo_template, db)
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    code, scheme, _ = DEMO_PARTNER_TABLE
    with session_factory(engine)() as s:
        tables = {
            (kind, inst)
            for kind, inst in s.execute(
                select(GradingTable.kind, Institution.code).join(
                    Institution, Institution.id == GradingTable.institution_id
                )
            )
        }
        waiting = list(
            s.scalars(
                select(Case.id)
                .join(Offering, Offering.id == Case.offering_id)
                .join(Institution, Institution.id == Offering.institution_id)
                .where(Case.state == "in_review", Institution.code == code)
                .order_by(Case.id)
            )
        )
    engine.dispose()
    assert tables == {("partner", code), ("home", "uni-musterstadt.de")}
    assert waiting, "the demo has no case of the partner with a grading table in review"

    app = create_app(load_settings(database_url=url, data_dir=tmp_path / "var", environment="test"))
    try:
        with client(app) as c:
            c.csrf = login(c, "examiner", "examiner-demo-pass")
            c.post("/language", data={"lang": "en", "csrf": c.csrf, "back": "/cases"})
            page = c.get(f"/cases/{waiting[0]}").text
            form = page.split('id="form-recognize"')[1].split("</form>")[0]
            assert '<p class="result">1.7</p>' in form  # 27 on the Italian scale, Bavarian
            assert '<p class="result">2.0</p>' in form  # by the demo's tables
            assert "The two methods differ by 0.3" in form
            assert f"Partner table: {code} · {scheme} · whole institution" in form
            assert 'name="conversion" value="percentile"' in form
    finally:
        app.state.runtime.engine.dispose()
