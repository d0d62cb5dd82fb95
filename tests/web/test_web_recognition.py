"""The office's recognition work over HTTP: transcript upload and matching by hand, precedents
and both grade conversions on the case page, cohort decisions, the ELMO export and notice
downloads, and inconsistent precedents. SQLite throughout; PostgreSQL where it is cheap."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from web_harness import api_token, build_world, client, login, store_example_tables, student_login

from models import Case, CaseEvent, ImportedResult, Offering, Precedent
from models.db import session_factory, transaction
from tests.factories import HOME_MODULES, CaseFactory, OfferingFactory, bound, home_modules
from workflow.cases.casefile import open_case
from workflow.cases.documents import FileStore
from workflow.cases.engine import fire
from workflow.office.catalog import add_institution, find_or_create_student

PROBLEM = "application/problem+json"
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
FRENCH = "unl.fr"  # the partner of the cohort tests' courses
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "elmo"
EXAMPLE = REFERENCE / "example.xml"
WARSAW_COURSE = "1000-217bMRJ"


# --- a small world: SQLite by default, PostgreSQL where a test asks for it ---------------------


@pytest.fixture(params=["sqlite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


ON_POSTGRES = pytest.mark.parametrize(
    "engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def world(engine: Engine, data_dir: Path) -> Any:
    return build_world(engine, data_dir, NOW, states=("enrolled", "in_review", "rejected"))


@pytest.fixture
def examiner(app: Any, world: Any) -> Any:
    with client(app) as c:
        c.csrf = login(c, world.users["examiner"])
        yield c


def speak(c: Any, lang: str) -> Any:
    """Choose the pages' language as a person would (the office users prefer German)."""
    r = c.post("/language", data={"lang": lang, "csrf": c.csrf, "back": "/cases"})
    assert r.status_code == 303
    return c


def bearer(app: Any, engine: Engine, username: str) -> Any:
    c = client(app)
    c.headers["Authorization"] = f"Bearer {api_token(engine, username, NOW)}"
    return c


def counts(engine: Engine) -> tuple[int, int]:
    with session_factory(engine)() as s:
        return (
            s.scalar(select(func.count()).select_from(CaseEvent)) or 0,
            s.scalar(select(func.count()).select_from(ImportedResult)) or 0,
        )


def state_of(engine: Engine, case_id: int) -> str:
    with session_factory(engine)() as s:
        return s.execute(select(Case.state).where(Case.id == case_id)).scalar_one()


def warsaw_cases(engine: Engine, world: Any, *matriculations: str) -> list[int]:
    """Enrolled cases of the official example's learner in its Warsaw course (the same
    person twice makes the result ambiguous)."""
    net = world.net
    ids = []
    with transaction(session_factory(engine)) as s:
        offering = s.execute(select(Offering.id).where(Offering.code == WARSAW_COURSE)).scalar()
        if offering is None:
            partner = add_institution(
                s,
                code="uw.edu.pl",
                name="University of Warsaw",
                country="PL",
                kind="partner",
                erasmus_code="PL WARSZAW01",
            )
            row = Offering(
                institution_id=partner.id,
                code=WARSAW_COURSE,
                term="2014-W",
                title="Budowa kompilatorów",
                ects=6,
                language="pl",
                eqf_level=6,
                learning_outcomes="Compilers",
                assessment_type="exam",
                participation_mode="online",
                start_date=dt.date(2014, 10, 1),
                end_date=dt.date(2015, 2, 28),
                exam_date=dt.date(2015, 2, 10),
                grading_scheme="pl",
            )
            s.add(row)
            s.flush()
            offering = row.id
        for matno in matriculations:
            student = find_or_create_student(
                s,
                net.home_id,
                matriculation_number=matno,
                name="Wojciech Łukasz Rygielski",
                email=f"{matno}@example.org",
                date_of_birth=dt.date(1983, 4, 12),
            )
            opened = open_case(
                s,
                student_id=student.id,
                offering_id=offering,
                actor=net.clerk,
                now=dt.datetime(2014, 9, 1, tzinfo=dt.UTC),
            )
            fire(
                s,
                opened.case_id,
                "enrol",
                actor=net.clerk,
                now=dt.datetime(2014, 9, 2, tzinfo=dt.UTC),
            )
            ids.append(opened.case_id)
    return ids


def in_review(
    engine: Engine,
    world: Any,
    data_dir: Path,
    n: int,
    *,
    course: int = 0,
    grades: list[str] | None = None,
) -> list[int]:
    """``n`` cases in review of one recent offering of the French partner, with the examiner;
    each student with their own partner grade (Italian 30..18 scale) when ``grades`` are
    given. A ``course`` number is one offering and one target module."""
    store = FileStore(data_dir / "documents")
    ids = []
    with transaction(session_factory(engine)) as s, bound(s):
        offering = OfferingFactory(
            institution__code=FRENCH, institution__country="FR", code=f"FR-{course + 1:02d}"
        )
        for i in range(n):
            ids.append(
                CaseFactory(
                    state="in_review",
                    offering=offering,
                    student__matriculation_number=f"C{course}{i:04d}",
                    student__name=f"Cohort {i}",
                    student__email=f"c{course}{i}@student.example",
                    student__preferred_language="en",
                    targets=home_modules(HOME_MODULES[course % 4][0]),
                    store=store,
                    present=NOW,
                ).id
            )
        for case_id, grade in zip(ids, grades or [], strict=False):
            result = dict(s.scalar(select(Case.result).where(Case.id == case_id)) or {})
            s.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(result={**result, "grade": grade, "scheme": "it"})
            )
    return ids


def offering_of(engine: Engine, case_id: int) -> int:
    with session_factory(engine)() as s:
        return s.execute(select(Case.offering_id).where(Case.id == case_id)).scalar_one()


# --- 1. transcripts ----------------------------------------------------------------------------


@ON_POSTGRES
def test_transcript_upload_api(
    app: Any, engine: Engine, world: Any, clerk_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (case_id,) = warsaw_cases(engine, world, "W1")
    example = EXAMPLE.read_bytes()
    with bearer(app, engine, world.users["examiner"]) as other:
        refused = other.post(
            "/api/v1/transcripts", files={"file": ("example.xml", example, "application/xml")}
        )
        assert refused.status_code == 403
    wrong_type = clerk_api.post(
        "/api/v1/transcripts", files={"file": ("example.pdf", example, "application/pdf")}
    )
    assert wrong_type.status_code == 415
    assert wrong_type.headers["content-type"] == PROBLEM
    rt = app.state.runtime
    with monkeypatch.context() as m:
        m.setattr(rt, "settings", rt.settings.model_copy(update={"max_transcript_bytes": 1000}))
        big = clerk_api.post(
            "/api/v1/transcripts", files={"file": ("example.xml", example, "text/xml")}
        )
        assert big.status_code == 413
    before = counts(engine)
    bad = clerk_api.post(
        "/api/v1/transcripts", files={"file": ("bad.xml", example[:4000], "application/xml")}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == PROBLEM
    problem = bad.json()
    assert problem["file"] == "bad.xml"
    assert isinstance(problem["line"], int)
    assert problem["element"]
    assert f"line {problem['line']}" in problem["detail"]
    assert counts(engine) == before  # nothing from a bad file
    assert state_of(engine, case_id) == "enrolled"

    ok = clerk_api.post(
        "/api/v1/transcripts", files={"file": ("example.xml", example, "application/xml")}
    )
    assert ok.status_code == 200, ok.text
    report = ok.json()
    assert report["format"] == "ELMO 1.7"
    matched = [r for r in report["results"] if r["status"] == "matched"]
    assert [(r["course"], r["case"]) for r in matched] == [(WARSAW_COURSE, case_id)]
    assert report["counts"]["matched"] == 1
    assert report["counts"]["unmatched"] == len(report["results"]) - 1
    assert state_of(engine, case_id) == "transcript_received"
    with session_factory(engine)() as s:
        roles = set(
            s.scalars(
                select(CaseEvent.actor_role).where(
                    CaseEvent.case_id == case_id, CaseEvent.event == "pass_course"
                )
            )
        )
    assert roles == {"import"}
    again = clerk_api.post(
        "/api/v1/transcripts", files={"file": ("example.xml", example, "application/xml")}
    )
    assert {r["status"] for r in again.json()["results"]} == {"skipped"}

    waiting = clerk_api.get("/api/v1/transcripts/pending").json()
    assert len(waiting) == len(report["results"]) - 1
    assert {w["status"] for w in waiting} == {"unmatched"}
    assert waiting[0]["learner"] == "Wojciech Łukasz Rygielski"
    with bearer(app, engine, world.users["clerk_b"]) as other_office:
        assert other_office.get("/api/v1/transcripts/pending").json() == []


def test_transcript_match_by_hand_api(app: Any, engine: Engine, world: Any, clerk_api: Any) -> None:
    first, second = warsaw_cases(engine, world, "A1", "A2")
    report = clerk_api.post(
        "/api/v1/transcripts",
        files={"file": ("example.xml", EXAMPLE.read_bytes(), "application/xml")},
    ).json()
    row = next(r for r in report["results"] if r["course"] == WARSAW_COURSE)
    assert row["status"] == "ambiguous"
    waiting = next(
        w
        for w in clerk_api.get("/api/v1/transcripts/pending").json()
        if w["course"] == WARSAW_COURSE
    )
    assert sorted(waiting["candidates"]) == [first, second]
    url = f"/api/v1/transcripts/pending/{waiting['id']}/match"
    with bearer(app, engine, world.users["clerk_b"]) as other_office:
        assert other_office.post(url, json={"case_id": second}).status_code == 404
    assert clerk_api.post(url, json={"case_id": world.case_b}).status_code == 404
    busy = clerk_api.post(url, json={"case_id": world.cases["in_review"]})
    assert busy.status_code == 422
    assert "in_review" in busy.json()["detail"]
    done = clerk_api.post(url, json={"case_id": second})
    assert done.status_code == 200, done.text
    assert done.json() == {
        "result_id": waiting["id"],
        "case_id": second,
        "events": ["pass_course", "receive_transcript"],
    }
    assert state_of(engine, second) == "transcript_received"
    assert state_of(engine, first) == "enrolled"
    assert waiting["id"] not in [
        w["id"] for w in clerk_api.get("/api/v1/transcripts/pending").json()
    ]
    assert clerk_api.post(url, json={"case_id": first}).status_code == 404


def test_transcripts_page_upload_report_and_match(
    app: Any, engine: Engine, world: Any, clerk: Any, examiner: Any
) -> None:
    first, _second = warsaw_cases(engine, world, "P1", "P2")
    speak(clerk, "en")
    assert examiner.get("/transcripts").status_code == 403
    page = clerk.get("/transcripts")
    assert page.status_code == 200
    assert 'action="/transcripts"' in page.text
    assert 'href="/transcripts"' in page.text  # the office's navigation
    files = {"file": ("example.xml", EXAMPLE.read_bytes(), "text/xml")}
    assert clerk.post("/transcripts", files=files).status_code == 403  # no CSRF token
    before = counts(engine)
    bad = clerk.post(
        "/transcripts",
        data={"csrf": clerk.csrf},
        files={"file": ("broken.xml", b"<elmo><learner>", "text/xml")},
    )
    assert bad.status_code == 422
    assert "broken.xml" in bad.text
    assert "line" in bad.text
    assert counts(engine) == before
    wrong = clerk.post(
        "/transcripts",
        data={"csrf": clerk.csrf},
        files={"file": ("tor.pdf", b"%PDF-1.4", "application/pdf")},
    )
    assert wrong.status_code == 415
    assert "application/xml" in wrong.text

    up = clerk.post("/transcripts", data={"csrf": clerk.csrf}, files=files)
    assert up.status_code == 303
    assert up.headers["location"].startswith("/transcripts?file=")
    report = clerk.get(up.headers["location"])
    assert "example.xml" in report.text
    assert WARSAW_COURSE in report.text
    assert "several cases" in report.text
    assert f'value="{first}"' in report.text  # offered as a candidate
    again = clerk.post("/transcripts", data={"csrf": clerk.csrf}, files=files)
    assert "new=0" in again.headers["location"]
    assert "imported before" in clerk.get(again.headers["location"]).text

    with session_factory(engine)() as s:
        result_id = s.execute(
            select(ImportedResult.id).where(ImportedResult.status == "ambiguous")
        ).scalar_one()
    refused = clerk.post(
        f"/transcripts/pending/{result_id}/match", data={"csrf": clerk.csrf, "case_id": "abc"}
    )
    assert refused.status_code == 422
    matched = clerk.post(
        f"/transcripts/pending/{result_id}/match", data={"csrf": clerk.csrf, "case_id": str(first)}
    )
    assert matched.status_code == 303
    assert state_of(engine, first) == "transcript_received"
    assert f"case #{first}" in clerk.get(matched.headers["location"]).text


# --- 2. and 3. precedents and conversions on the case page -------------------------------------


def test_case_page_shows_precedents_and_the_bavarian_conversion(
    app: Any, engine: Engine, world: Any, data_dir: Path, examiner: Any, clerk_api: Any
) -> None:
    decided, aged, current = in_review(engine, world, data_dir, 3)
    with transaction(session_factory(engine)) as s:
        fire(
            s, decided, "recognize", actor=world.net.examiner, now=NOW, data={"modules": ["INF-ML"]}
        )
        fire(
            s,
            aged,
            "reject",
            actor=world.net.examiner,
            now=NOW,
            data={"reasons": {"level": "EQF 5 only"}, "advice": "Take the home exam"},
        )
        s.execute(
            update(Precedent)
            .where(Precedent.case_id == aged)
            .values(expires_at=NOW - dt.timedelta(days=1))
        )
    page = speak(examiner, "en").get(f"/cases/{current}")
    assert page.status_code == 200
    text = page.text
    assert 'id="precedents-h"' in text
    assert "Suggested by the precedents" in text
    assert f'href="/cases/{decided}"' in text
    assert "credited with 1.7" in text
    expired = text.split('class="plain expired"')[1].split("</ul>")[0]
    assert f"#{aged}" in expired
    assert "older than the validity period" in expired
    # The decision form: the Bavarian conversion, the percentile one explained as missing.
    assert "Modified Bavarian formula" in text
    assert "x = 1 + 3 × (30 − 27) / (30 − 18) = 1.75" in text
    assert "partner&#39;s ECTS grading table" in text
    assert '<option value="1.7" selected>' in text
    assert "differ by" not in text
    german = speak(examiner, "de").get(f"/cases/{current}")
    assert "Präzedenzfälle" in german.text
    assert "ECTS-Notenverteilungstabelle des Partners" in german.text

    detail = clerk_api.get(f"/api/v1/cases/{current}").json()
    assert [p["case"] for p in detail["precedents"]["valid"]] == [decided]
    assert detail["precedents"]["expired"][0]["why"] == "older than the validity period"
    assert detail["precedents"]["suggestion"]["INF-ML"]["grade"] == "1.7"
    with client(app) as student:
        student_login(student, engine, _student_of(engine, current), NOW)
        assert student.get(f"/api/v1/cases/{current}").json()["precedents"] is None
        assert "precedents-h" not in student.get(f"/cases/{current}").text


def _student_of(engine: Engine, case_id: int) -> int:
    with session_factory(engine)() as s:
        return s.execute(select(Case.student_id).where(Case.id == case_id)).scalar_one()


def test_known_grading_tables_show_both_conversions_flagged(
    engine: Engine, world: Any, examiner: Any
) -> None:
    case_id = world.cases["in_review"]
    with transaction(session_factory(engine)) as s:
        result = dict(s.scalar(select(Case.result).where(Case.id == case_id)) or {})
        s.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(result={**result, "grade": "C", "scheme": "ects"})
        )
    store_example_tables(engine, case_id, NOW)
    text = speak(examiner, "en").get(f"/cases/{case_id}").text
    form = text.split('id="form-recognize"')[1].split("</form>")[0]
    assert "Modified Bavarian formula" in form
    assert "Percentile (ECTS grading tables)" in form
    assert '<p class="result">2.3</p>' in form  # C on A..E: x = 2.5, the tie to the better
    assert '<p class="result">2.0</p>' in form  # its band's midpoint 30.3 % lies in 2.0
    assert "band 12.0 to 48.6 %" in form
    assert 'class="conversions differs"' in form
    assert "differ by 0.3" in form
    # Both known: the examiner chooses the method; the grade follows the chosen method.
    assert 'name="conversion" value="bavarian" required' in form
    assert 'name="conversion" value="percentile" required' in form
    assert '<option value="" selected>the grade of the chosen conversion</option>' in form


def test_case_detail_schema_documents_precedents(app: Any) -> None:
    with client(app) as c:
        schema = c.get("/api/v1/openapi.json").json()
    ok = schema["paths"]["/api/v1/cases/{case_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/CaseDetail")
    models = schema["components"]["schemas"]
    precedents = models["CaseDetail"]["properties"]["precedents"]
    assert "description" in precedents
    assert set(models["PrecedentsOut"]["properties"]) == {"valid", "expired", "suggestion"}
    assert "why" in models["ExpiredPrecedentOut"]["properties"]
    for path in (
        "/api/v1/transcripts",
        "/api/v1/transcripts/pending",
        "/api/v1/transcripts/pending/{result_id}/match",
        "/api/v1/cohorts/decide",
        "/api/v1/cases/{case_id}/export/elmo",
        "/api/v1/precedents/inconsistent",
    ):
        assert path in schema["paths"]


# --- 4. cohort decisions -----------------------------------------------------------------------


def test_cohort_decision_from_the_case_page(
    engine: Engine, world: Any, data_dir: Path, examiner: Any, clerk: Any
) -> None:
    cases = in_review(engine, world, data_dir, 3, grades=["30", "27", "24"])
    offering = offering_of(engine, cases[0])
    speak(examiner, "en")
    page = examiner.get(f"/cases/{cases[0]}").text
    assert "Decide all 3 waiting cases" in page
    assert "Decide all" not in clerk.get(f"/cases/{cases[0]}").text
    assert clerk.get(f"/cohorts?offering={offering}&module=INF-ML").status_code == 403
    dashboard = examiner.get("/cases").text
    assert f"/cohorts?offering={offering}&amp;module=INF-ML" in dashboard

    confirm = examiner.get(f"/cohorts?offering={offering}&module=INF-ML")
    assert confirm.status_code == 200
    table = confirm.text.split("<tbody>")[1].split("</tbody>")[0]
    for case_id, grade in zip(cases, ["1.0", "1.7", "2.3"], strict=True):
        assert f'href="/cases/{case_id}"' in table
        assert f"<strong>{grade}</strong>" in table
    ids = ",".join(map(str, cases))
    form = {
        "csrf": examiner.csrf,
        "offering": str(offering),
        "module": "INF-ML",
        "event": "recognize",
        "grade": "",
        "cases": ids,
    }
    before = counts(engine)[0]
    unconfirmed = examiner.post("/cohorts/decide", data=form)
    assert unconfirmed.status_code == 422
    stale = examiner.post(
        "/cohorts/decide", data={**form, "confirm": "1", "cases": ids.rsplit(",", 1)[0]}
    )
    assert stale.status_code == 409
    assert "changed" in stale.text
    assert counts(engine)[0] == before
    done = examiner.post("/cohorts/decide", data={**form, "confirm": "1"})
    assert done.status_code == 303, done.text
    assert "decided=3" in done.headers["location"]
    assert "3 cases were decided" in examiner.get(done.headers["location"]).text
    assert counts(engine)[0] == before + 3  # one audit event per case
    with session_factory(engine)() as s:
        decisions = {
            r.id: r.decision
            for r in s.execute(select(Case.id, Case.decision).where(Case.id.in_(cases)))
        }
    assert [decisions[c]["grade"] for c in cases] == ["1.0", "1.7", "2.3"]


@ON_POSTGRES
def test_cohort_decision_api(
    app: Any, engine: Engine, world: Any, data_dir: Path, clerk_api: Any
) -> None:
    cases = in_review(engine, world, data_dir, 3, course=1, grades=["30", "28", "18"])
    offering = offering_of(engine, cases[0])
    body = {
        "offering_id": offering,
        "module": "INF-CC",
        "event": "recognize",
        "data": {"modules": ["INF-CC"]},
    }
    assert clerk_api.post("/api/v1/cohorts/decide", json=body).status_code == 403
    with bearer(app, engine, world.users["examiner"]) as api:
        groups = api.get("/api/v1/cohorts").json()
        assert {"offering_id": offering, "module": "INF-CC", "waiting": 3}.items() <= next(
            g for g in groups if g["offering_id"] == offering
        ).items()
        shown = api.get(
            "/api/v1/cohorts/preview", params={"offering_id": offering, "module": "INF-CC"}
        ).json()
        assert [c["converted"] for c in shown["cases"]] == ["1.0", "1.3", "4.0"]
        before = counts(engine)[0]
        stale = api.post("/api/v1/cohorts/decide", json={**body, "expected_cases": cases[:2]})
        assert stale.status_code == 409
        assert stale.headers["content-type"] == PROBLEM
        smuggled = api.post("/api/v1/cohorts/decide", json={**body, "data": {"decision": "x"}})
        assert smuggled.status_code == 422
        assert counts(engine)[0] == before
        done = api.post("/api/v1/cohorts/decide", json={**body, "expected_cases": cases})
        assert done.status_code == 200, done.text
        assert done.json()["decided"] == 3
        assert [c["grade"] for c in done.json()["cases"]] == ["1.0", "1.3", "4.0"]
        assert {state_of(engine, c) for c in cases} == {"recognized"}
        nothing = api.post("/api/v1/cohorts/decide", json=body)
        assert nothing.status_code == 404


# --- 5. export and notices ---------------------------------------------------------------------


def test_elmo_export_and_notice_download(
    app: Any, engine: Engine, world: Any, data_dir: Path, clerk: Any, clerk_api: Any
) -> None:
    from workflow.decisions.notice_issue import keep_notice, notice_inputs
    from workflow.decisions.notices import render_notice

    rejected = world.cases["rejected"]
    undecided = clerk_api.get(f"/api/v1/cases/{world.cases['in_review']}/export/elmo")
    assert undecided.status_code == 409
    assert undecided.headers["content-type"] == PROBLEM
    assert "no decision" in undecided.json()["detail"]
    assert clerk_api.get(f"/api/v1/cases/{world.case_b}/export/elmo").status_code == 404

    # The worker issues the notice at delivery; here the same functions run directly.
    with transaction(session_factory(engine)) as s:
        seq = s.execute(
            select(CaseEvent.seq).where(CaseEvent.case_id == rejected, CaseEvent.event == "reject")
        ).scalar_one()
        notice = render_notice(
            **notice_inputs(s, rejected, seq, language="de", settings=app.state.runtime.settings)
        )
        notice_id = keep_notice(
            s, rejected, notice, store=FileStore(data_dir / "documents"), now=NOW
        )
    docs = clerk_api.get(f"/api/v1/cases/{rejected}/documents").json()
    assert {"id": notice_id, "kind": "notice"}.items() <= next(
        d for d in docs if d["id"] == notice_id
    ).items()
    for c, url in (
        (clerk_api, f"/api/v1/cases/{rejected}/documents/{notice_id}"),
        (clerk, f"/cases/{rejected}/documents/{notice_id}"),
    ):
        pdf = c.get(url)
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")
        assert pdf.headers["content-disposition"].startswith("attachment;")

    page = clerk.get(f"/cases/{rejected}").text
    assert f'href="/cases/{rejected}/export/elmo"' in page
    assert f"/documents/{notice_id}" in page
    exported = clerk_api.get(f"/api/v1/cases/{rejected}/export/elmo")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "application/xml"
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="recognition-case-{rejected}.xml"; '
        f"filename*=UTF-8''recognition-case-{rejected}.xml"
    )
    assert "sandbox" in exported.headers["content-security-policy"]
    assert exported.headers["cache-control"] == "no-store"
    assert b"resultOfRecognition" in exported.content
    assert b"<attachment" in exported.content  # the notice travels with the decision
    from_page = clerk.get(f"/cases/{rejected}/export/elmo")
    assert from_page.status_code == 200
    assert from_page.content == exported.content
    with client(app) as student:
        student_login(student, engine, world.students[rejected], NOW)
        mine = student.get(f"/api/v1/cases/{rejected}/export/elmo")
        assert mine.status_code == 200
        assert "export/elmo" in student.get(f"/cases/{rejected}").text
        assert (
            student.get(f"/api/v1/cases/{world.cases['in_review']}/export/elmo").status_code == 404
        )


# --- 6. inconsistent precedents ----------------------------------------------------------------


@ON_POSTGRES
def test_inconsistent_precedents(
    app: Any, engine: Engine, world: Any, data_dir: Path, clerk: Any, clerk_api: Any
) -> None:
    assert clerk_api.get("/api/v1/precedents/inconsistent").json() == []
    speak(clerk, "en")
    assert "Precedents decided differently" not in clerk.get("/cases").text
    yes, no = in_review(engine, world, data_dir, 2, course=2)
    with transaction(session_factory(engine)) as s:
        fire(s, yes, "recognize", actor=world.net.examiner, now=NOW, data={"modules": ["INF-HCI"]})
        fire(
            s,
            no,
            "reject",
            actor=world.net.examiner,
            now=NOW,
            data={"reasons": {"workload": "3 ECTS less"}, "advice": "Add a project"},
        )
    found = clerk_api.get("/api/v1/precedents/inconsistent").json()
    assert len(found) == 1
    pair = found[0]
    assert (pair["partner"], pair["module"]) == (FRENCH, "INF-HCI")
    assert sorted((d["case"], d["outcome"]) for d in pair["decisions"]) == [
        (yes, "credited"),
        (no, "not_credited"),
    ]
    with bearer(app, engine, world.users["clerk_b"]) as other_office:
        assert other_office.get("/api/v1/precedents/inconsistent").json() == []
    # An examiner sees the precedents of their programmes' cases, not another programme's.
    with bearer(app, engine, world.users["examiner"]) as theirs:
        assert theirs.get("/api/v1/precedents/inconsistent").json() == found
    with bearer(app, engine, world.users["outsider"]) as other_programme:
        assert other_programme.get("/api/v1/precedents/inconsistent").json() == []
    with client(app) as student:
        student_login(student, engine, world.students[world.cases["rejected"]], NOW)
        assert student.get("/api/v1/precedents/inconsistent").status_code == 403
    section = clerk.get("/cases").text.split('id="inconsistent-h"')[1].split("</section>")[0]
    assert f'href="/cases/{yes}"' in section
    assert f'href="/cases/{no}"' in section
    assert "INF-HCI" in section


def test_dates_on_pages_are_written_as_the_language_writes_them(
    app: Any, engine: Engine, world: Any, data_dir: Path, examiner: Any
) -> None:
    (decided,) = in_review(engine, world, data_dir, 1)
    with transaction(session_factory(engine)) as s:
        fire(
            s, decided, "recognize", actor=world.net.examiner, now=NOW, data={"modules": ["INF-ML"]}
        )
    english = speak(examiner, "en").get(f"/cases/{decided}").text
    decision = english.split('id="decision-h"')[1].split("</section>")[0]
    assert "<dd>2 November 2026</dd>" in decision  # decided_at, in the institution's zone
    assert "2 November 2026 10:00" in english  # the timeline: 09:00 UTC is 10:00 in Berlin
    assert "02.11.2026" not in english
    german = speak(examiner, "de").get(f"/cases/{decided}").text
    assert "<dd>02.11.2026</dd>" in german.split('id="decision-h"')[1].split("</section>")[0]
    assert "02.11.2026 10:00" in german
    # the partner's result: its date too (it was written as stored, 2026-11-02)
    for page, label, written in (
        (english, "Partner result", r"\d{1,2} [A-Z][a-z]+ \d{4}"),
        (german, "Ergebnis des Partners", r"\d{2}\.\d{2}\.\d{4}"),
    ):
        shown = page.split(f"<dt>{label}</dt><dd>")[1].split("</dd>")[0]
        assert re.search(written, shown), shown
        assert not re.search(r"\d{4}-\d{2}-\d{2}", shown), shown
