"""Percentile conversion over HTTP: stored grading tables put both conversions side by side on
the case page and in the API, flagged when they differ by 0.3 or more; the examiner chooses the
method and the decision keeps it with its tables; offices import and list tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from web_harness import (
    EXAMPLE_HOME_TABLE,
    EXAMPLE_PARTNER_TABLE,
    build_world,
    client,
    login,
    store_example_tables,
    student_login,
)

from models import Case, GradingTable, Module, Offering
from models.db import session_factory, transaction
from tests.factories import PartnerFactory, bound

PROBLEM = "application/problem+json"
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
# grade-conversion.md's worked example: C on the partner's ISCED 0612 table and a home
# distribution; the Bavarian formula gives 2.3 (x = 2.5, the tie to the better), the
# percentiles 2.0 (the band's midpoint 30.3 % lies in the home band of 2.0).
PARTNER, HOME = EXAMPLE_PARTNER_TABLE, EXAMPLE_HOME_TABLE


@pytest.fixture
def world(engine: Engine, data_dir: Path) -> Any:
    return build_world(engine, data_dir, NOW, states=("enrolled", "in_review"))


@pytest.fixture
def examiner(app: Any, world: Any) -> Any:
    with client(app) as c:
        c.csrf = login(c, world.users["examiner"])
        c.post("/language", data={"lang": "en", "csrf": c.csrf, "back": "/cases"})
        yield c


def grade_c(engine: Engine, case_id: int) -> str:
    """Give the case the partner grade C (ECTS letters); returns its target module's code."""
    with transaction(session_factory(engine)) as s:
        result = dict(s.scalar(select(Case.result).where(Case.id == case_id)) or {})
        s.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(result={**result, "grade": "C", "scheme": "ects"})
        )
        return s.execute(
            select(Module.code).join(Case.targets).where(Case.id == case_id)
        ).scalar_one()


def store_tables(engine: Engine, case_id: int) -> tuple[int, int]:
    return store_example_tables(engine, case_id, NOW)


def recognize_form(page: str) -> str:
    return page.split('id="form-recognize"')[1].split("</form>")[0]


def test_the_case_page_shows_both_conversions_and_the_tables_used(
    engine: Engine, world: Any, examiner: Any
) -> None:
    case_id = world.cases["in_review"]
    module = grade_c(engine, case_id)
    before = recognize_form(examiner.get(f"/cases/{case_id}").text)
    assert "the percentile conversion needs the partner&#39;s ECTS grading table" in before
    assert "No grading table of the partner" in before  # which table, in the page's words
    assert 'name="conversion"' not in before  # one method: nothing to choose
    partner_id, home_id = store_tables(engine, case_id)

    form = recognize_form(examiner.get(f"/cases/{case_id}").text)
    assert '<p class="result">2.3</p>' in form
    assert '<p class="result">2.0</p>' in form
    assert "band 12.0 to 48.6 %, midpoint 30.3 %" in form
    assert 'class="conversions differs"' in form
    assert "The two methods differ by 0.3" in form
    partner_code = _partner_code(engine, case_id)
    assert (
        f"Partner table: {partner_code} · ects · ISCED-F 0612 · 2025 · EWP transcript "
        f"(#{partner_id})"
    ) in form
    assert (
        f"Home distribution: uni-musterstadt.de · module {module} · 2024 · entered by the "
        f"office (#{home_id})"
    ) in form
    assert "Modified Bavarian formula: <strong>2.3</strong>" in form
    assert "Percentile (ECTS grading tables): <strong>2.0</strong>" in form
    german = examiner.post(
        "/language", data={"lang": "de", "csrf": examiner.csrf, "back": f"/cases/{case_id}"}
    )
    assert german.status_code == 303
    text = recognize_form(examiner.get(f"/cases/{case_id}").text)
    assert "Tabelle des Partners" in text
    assert "die Note der gewählten Umrechnung" in text


def _partner_code(engine: Engine, case_id: int) -> str:
    from models import Institution

    with session_factory(engine)() as s:
        return s.execute(
            select(Institution.code)
            .join(Offering, Offering.institution_id == Institution.id)
            .join(Case, Case.offering_id == Offering.id)
            .where(Case.id == case_id)
        ).scalar_one()


def test_the_examiner_chooses_the_percentile_conversion(
    engine: Engine, world: Any, examiner: Any
) -> None:
    case_id = world.cases["in_review"]
    module = grade_c(engine, case_id)
    partner_id, home_id = store_tables(engine, case_id)
    r = examiner.post(
        f"/cases/{case_id}/events",
        data={
            "csrf": examiner.csrf,
            "event": "recognize",
            "modules": module,
            "conversion": "percentile",
            "grade": "",
        },
    )
    assert r.status_code == 303, r.text
    with session_factory(engine)() as s:
        decision = s.scalar(select(Case.decision).where(Case.id == case_id)) or {}
    assert decision["grade"] == "2.0"
    conversion = decision["conversion"]
    assert (conversion["original"], conversion["scheme"], conversion["method"]) == (
        "C",
        "ects",
        "percentile",
    )
    assert conversion["parameters"]["partner_table_id"] == partner_id
    assert conversion["parameters"]["home_table_id"] == home_id
    assert conversion["parameters"]["tables"]["partner"]["scope"] == "isced:0612"
    assert conversion["compared"]["differs"] is True
    card = examiner.get(f"/cases/{case_id}").text.split('id="decision-h"')[1].split("</section>")[0]
    assert "Percentile (ECTS grading tables): C (ects) → 2.0" in card


def test_percentile_without_tables_is_refused_with_the_reason(
    engine: Engine, world: Any, examiner: Any
) -> None:
    case_id = world.cases["in_review"]
    module = grade_c(engine, case_id)
    r = examiner.post(
        f"/cases/{case_id}/events",
        data={
            "csrf": examiner.csrf,
            "event": "recognize",
            "modules": module,
            "conversion": "percentile",
        },
    )
    assert r.status_code == 422
    assert "the percentile conversion needs grading tables" in r.text
    with session_factory(engine)() as s:
        assert s.scalar(select(Case.state).where(Case.id == case_id)) == "in_review"


def test_the_api_shows_both_conversions_with_the_flag(
    app: Any, engine: Engine, world: Any, clerk_api: Any
) -> None:
    case_id = world.cases["in_review"]
    grade_c(engine, case_id)
    missing = clerk_api.get(f"/api/v1/cases/{case_id}/conversions").json()
    assert (missing["bavarian"]["grade"], missing["percentile"], missing["methods"]) == (
        "2.3",
        None,
        ["bavarian"],
    )
    assert "no home grade distribution for module" in missing["tables_missing"]
    partner_id, home_id = store_tables(engine, case_id)
    view = clerk_api.get(f"/api/v1/cases/{case_id}/conversions").json()
    assert (view["bavarian"]["grade"], view["percentile"]["grade"]) == ("2.3", "2.0")
    assert (view["difference"], view["differs"], view["methods"]) == (
        "0.3",
        True,
        ["bavarian", "percentile"],
    )
    assert (view["tables"]["partner"]["id"], view["tables"]["home"]["id"]) == (partner_id, home_id)
    assert view["percentile"]["parameters"]["partner_table_id"] == partner_id
    assert (
        clerk_api.get(f"/api/v1/cases/{world.cases['enrolled']}/conversions").status_code == 404
    )  # no partner grade yet
    assert clerk_api.get(f"/api/v1/cases/{world.case_b}/conversions").status_code == 404
    with client(app) as student:
        student_login(student, engine, world.students[case_id], NOW)
        assert student.get(f"/api/v1/cases/{case_id}/conversions").status_code == 403


CSV = "kind,institution,scheme,isced,reference_year,grade,percentage\n"


def test_offices_import_and_list_grading_tables(
    app: Any, engine: Engine, world: Any, clerk_api: Any
) -> None:
    with transaction(session_factory(engine)) as s, bound(s):
        PartnerFactory(code="unitol.it", country="IT")  # the partner the file names
    good = (
        CSV
        + "".join(f"partner,unitol.it,ects,0612,2025,{x},{p}\n" for x, p in PARTNER)
        + "".join(f"home,uni-musterstadt.de,,,2025,{x},{p}\n" for x, p in HOME)
    )
    r = clerk_api.post(
        "/api/v1/grading-tables/import", files={"file": ("tables.csv", good.encode(), "text/csv")}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 2, "updated": 0, "unchanged": 0}
    bad = CSV + "partner,unitol.it,ects,0612,2026,G,100\nhome,uni-b.example,,,2026,1.0,100\n"
    refused = clerk_api.post(
        "/api/v1/grading-tables/import", files={"file": ("bad.csv", bad.encode(), "text/csv")}
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM)
    detail = refused.json()["detail"]
    assert "bad.csv, line 2, field grade: G is not a grade of scheme ects" in detail
    assert "bad.csv, line 3, field institution: uni-b.example is not your institution" in detail
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(GradingTable)) == 2
    listed = clerk_api.get("/api/v1/grading-tables").json()
    assert [(t["kind"], t["institution"], t["scope"]) for t in listed] == [
        ("partner", "unitol.it", "isced:0612"),
        ("home", "uni-musterstadt.de", "all"),
    ]
    assert listed[0]["grades"][0] == {"label": "A", "percentage": "2.0", "failing": False}
    with client(app) as other:
        from web_harness import api_token

        other.headers["Authorization"] = f"Bearer {api_token(engine, world.users['clerk_b'], NOW)}"
        seen = other.get("/api/v1/grading-tables").json()
        assert [t["kind"] for t in seen] == ["partner"]  # another office's distribution: not
