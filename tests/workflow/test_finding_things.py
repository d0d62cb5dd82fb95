"""Finding cases and reference data, and the plain refusals of the first week: the free-text
search (one query for the dashboard, the API and the CLI; case-insensitive with umlauts on
SQLite and PostgreSQL; under the policy), a catalogue's unknown grading scheme, a new student
without a name, a decision without a grade it can convert, and a notice's preview."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import get_settings
from models import Case, CaseEvent, Document, Offering, Outbox, Student
from tests.factories import (
    CaseFactory,
    OfferingFactory,
    Office,
    PartnerFactory,
    StudentFactory,
    musterstadt,
)
from workflow.cases import queries
from workflow.cases.engine import fire
from workflow.decisions.notice_issue import preview_notice
from workflow.errors import DomainError, Forbidden, NotFound, ValidationFailed
from workflow.imports import ImportRejected
from workflow.office.catalog import find_or_create_student, import_catalogue

NOW = dt.datetime.now(dt.UTC)


def _found(session: Session, actor: object, text: str) -> list[int]:
    items, total = queries.search_cases(session, actor=actor, now=NOW, text=text)  # type: ignore[arg-type]
    assert total == len(items)
    return [i["id"] for i in items]


def test_the_search_finds_by_name_number_case_and_course_in_any_case(
    session: Session, network: Office
) -> None:
    partner = PartnerFactory(code="unitol.it")
    ml = OfferingFactory(institution=partner, code="IT-ML", title="Machine Learning")
    ds = OfferingFactory(institution=partner, code="IT-DS", title="Sistemi Distribuiti")
    jurgen = CaseFactory(
        student=StudentFactory(name="Jürgen Özdemir", matriculation_number="4711"), offering=ml
    )
    ada = CaseFactory(
        student=StudentFactory(name="Ada Lovelace", matriculation_number="123456"), offering=ds
    )
    clerk = network.clerk
    assert _found(session, clerk, "JÜRGEN") == [jurgen.id]  # umlauts fold too
    assert _found(session, clerk, "özdemir") == [jurgen.id]
    assert _found(session, clerk, "lovelace") == [ada.id]
    assert _found(session, clerk, "2345") == [ada.id]  # part of a matriculation number
    assert _found(session, clerk, "it-ml") == [jurgen.id]
    assert _found(session, clerk, "distribuiti") == [ada.id]
    assert _found(session, clerk, f"#{ada.id}") == [ada.id]
    assert _found(session, clerk, "ada machine") == []  # every word must be found
    assert _found(session, clerk, "100%") == []  # % and _ are text, not patterns
    assert sorted(_found(session, clerk, "it-")) == sorted([jurgen.id, ada.id])
    # The search narrows the filters that exist, and they narrow it.
    items, total = queries.search_cases(
        session, actor=clerk, now=NOW, text="it-", course="IT-DS", partner="unitol.it"
    )
    assert ([i["id"] for i in items], total) == ([ada.id], 1)


def test_the_search_stays_inside_the_policy(session: Session, network: Office) -> None:
    other = musterstadt("uni-y.de")
    theirs = CaseFactory(student=StudentFactory(name="Zoë Fremd", institution_id=other.home_id))
    ours = CaseFactory(student=StudentFactory(name="Zoë Eigen"))
    assert _found(session, network.clerk, "zoë") == [ours.id]
    assert _found(session, other.clerk, "ZOË") == [theirs.id]
    assert _found(session, network.clerk, f"#{theirs.id}") == []


def test_a_catalogue_with_an_unknown_grading_scheme_is_refused(
    session: Session, network: Office, tmp_path: Path
) -> None:
    PartnerFactory(code="tdu.fi", country="FI")
    path = tmp_path / "catalog.csv"
    path.write_text(
        "institution,code,term,title,ects,language,eqf_level,learning_outcomes,"
        "assessment_type,participation_mode,start_date,end_date,grading_scheme\n"
        "tdu.fi,FI-1,2027-03,Quantum,5,en,7,Qubits,exam,online,2027-03-01,2027-06-01,fi\n"
        "tdu.fi,FI-2,2027-03,Qubits,5,en,7,Qubits,exam,online,2027-03-01,2027-06-01,0-5\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as refused:
        import_catalogue(session, path)
    message = str(refused.value)
    assert "line 3, field grading_scheme: unknown grading scheme '0-5'" in message
    assert "known schemes: de, ects, es, fi, fr, fr-eff17, it, nl, passfail, pl" in message
    assert "line 2" not in message
    assert session.scalar(select(func.count()).select_from(Offering)) == 0


def test_a_new_student_needs_a_name(session: Session, network: Office) -> None:
    with pytest.raises(ValidationFailed) as refused:
        find_or_create_student(
            session, network.home_id, matriculation_number="999", email="x@example.org"
        )
    assert str(refused.value) == "there is no student 999 yet: a new student needs a name (--name)"
    assert session.scalar(select(func.count()).select_from(Student)) == 0
    known = StudentFactory(matriculation_number="1000")
    assert find_or_create_student(session, network.home_id, matriculation_number="1000") == known


def test_a_decision_without_a_grade_says_plainly_why(session: Session, network: Office) -> None:
    # The partner's grade was recorded without its grading scheme (the README's old example).
    case = CaseFactory(state="in_review", data={"pass_course": {"grade": "27", "scheme": ""}})
    with pytest.raises(DomainError) as refused:
        fire(
            session,
            case.id,
            "recognize",
            actor=network.examiner,
            now=NOW,
            data={"modules": ["INF-ML"]},
        )
    message = str(refused.value)
    assert "None" not in message
    assert "give the German grade as grade=" in message
    assert "the partner's grade 27 was recorded without its grading scheme" in message
    assert session.get(Case, case.id).state == "in_review"  # type: ignore[union-attr]


def test_a_notice_preview_says_which_decision_and_writes_nothing(
    session: Session, network: Office
) -> None:
    case = CaseFactory(state="in_review")
    with pytest.raises(NotFound, match="has no decision yet \\(it is in_review\\)"):
        preview_notice(session, case.id, actor=network.clerk, settings=get_settings())
    fire(
        session,
        case.id,
        "recognize",
        actor=network.examiner,
        now=NOW,
        data={"modules": ["INF-ML"], "grade": "1.7"},
    )
    session.flush()
    counts = [
        session.scalar(select(func.count()).select_from(t)) for t in (CaseEvent, Document, Outbox)
    ]
    shown = preview_notice(
        session, case.id, actor=network.clerk, settings=get_settings(), language="en"
    )
    assert (shown.event, shown.language) == ("recognize", "en")
    last = session.scalar(select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == case.id))
    assert shown.seq == last
    assert "1.7" in shown.html
    assert [
        session.scalar(select(func.count()).select_from(t)) for t in (CaseEvent, Document, Outbox)
    ] == counts
    assert not session.new
    assert not session.dirty
    with pytest.raises(NotFound, match="event 1 of case"):
        preview_notice(session, case.id, actor=network.clerk, settings=get_settings(), seq=1)
    other = musterstadt("uni-y.de")
    with pytest.raises(NotFound):
        preview_notice(session, case.id, actor=other.clerk, settings=get_settings())


def test_a_student_may_not_preview(session: Session, network: Office) -> None:
    from workflow.policy.auth import actor_for_case_student

    case = CaseFactory(state="recognized")
    student = actor_for_case_student(session, case.id)
    assert student is not None
    with pytest.raises(Forbidden, match="may not preview decision notices"):
        preview_notice(session, case.id, actor=student, settings=get_settings())
