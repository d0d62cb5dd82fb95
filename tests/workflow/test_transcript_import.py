"""Transcript import end to end on the database: the official ELMO example lands on its case;
what matches nothing, or several cases, waits for a clerk; a bad file changes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Case, CaseEvent, Document, ImportedResult, Offering, Student
from tests.factories import Office, walk
from workflow.cases.casefile import open_case
from workflow.cases.documents import MemoryStore
from workflow.errors import ValidationFailed
from workflow.office.catalog import add_institution, find_or_create_student
from workflow.transcripts.importing import import_transcript, match_by_hand, pending

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "elmo"
EXAMPLE = REFERENCE / "example.xml"
EWP = REFERENCE / "ewp-imobility-tors-get-response-example.xml"
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def warsaw_case(
    session: Session,
    net: Office,
    *,
    matno: str = "W1",
    state: str = "enrolled",
    name: str = "Wojciech Łukasz Rygielski",
    dob: dt.date | None = None,
) -> int:
    """A student of the example's learner, enrolled in 'Budowa kompilatorów' at Warsaw."""
    partner = session.execute(
        select(Offering.institution_id).where(Offering.code == "1000-217bMRJ")
    ).scalar()
    if partner is None:
        partner = add_institution(
            session,
            code="uw.edu.pl",
            name="University of Warsaw",
            country="PL",
            kind="partner",
            erasmus_code="PL WARSZAW01",
        ).id
        session.add(
            Offering(
                institution_id=partner,
                code="1000-217bMRJ",
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
        )
        session.flush()
    offering = session.execute(
        select(Offering.id).where(Offering.code == "1000-217bMRJ")
    ).scalar_one()
    student = find_or_create_student(
        session,
        net.home_id,
        matriculation_number=matno,
        name=name,
        email=f"{matno}@example.org",
        date_of_birth=dob or dt.date(1983, 4, 12),
    )
    opened = open_case(
        session,
        student_id=student.id,
        offering_id=offering,
        actor=net.clerk,
        now=dt.datetime(2014, 9, 1, tzinfo=dt.UTC),
    )
    walk(
        session,
        opened.case_id,
        state,
        now=dt.datetime(2014, 9, 2, tzinfo=dt.UTC),
        store=MemoryStore(),
    )
    return opened.case_id


def test_the_official_example_lands_on_its_case(session: Session, network: Office) -> None:
    case_id = warsaw_case(session, network)
    store = MemoryStore()
    report = import_transcript(session, EXAMPLE, store=store, now=NOW)
    assert report.format == "ELMO 1.7"
    matched = [r for r in report.results if r["status"] == "matched"]
    assert [(r["course"], r["case"]) for r in matched] == [("1000-217bMRJ", case_id)]
    case = session.get(Case, case_id)
    assert case is not None
    assert case.state == "transcript_received"
    assert case.result is not None
    assert (case.result["grade"], case.result["date"]) == ("45.1", "2015-03-17")
    events = list(
        session.scalars(
            select(CaseEvent.event).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
        )
    )
    assert events[-3:] == ["pass_course", "attach_document", "receive_transcript"]
    actors = set(
        session.scalars(
            select(CaseEvent.actor_role).where(
                CaseEvent.case_id == case_id, CaseEvent.event == "pass_course"
            )
        )
    )
    assert actors == {"import"}
    docs = session.scalars(select(Document.media_type).where(Document.case_id == case_id))
    assert "application/xml" in set(docs)
    waiting = pending(session)
    assert {w["status"] for w in waiting} == {"unmatched"}
    assert len(waiting) == len(report.results) - 1
    again = import_transcript(session, EXAMPLE, store=store, now=NOW)
    assert {r["status"] for r in again.results} == {"skipped"}


def test_ambiguous_student_waits_and_a_clerk_matches_it(
    session: Session,
    network: Office,
) -> None:
    first = warsaw_case(session, network, matno="A1")
    second = warsaw_case(session, network, matno="A2")  # same name and birthday
    store = MemoryStore()
    report = import_transcript(session, EXAMPLE, store=store, now=NOW)
    row = next(r for r in report.results if r["course"] == "1000-217bMRJ")
    assert row["status"] == "ambiguous"
    waiting = next(w for w in pending(session) if w["course"] == "1000-217bMRJ")
    assert sorted(waiting["candidates"]) == [first, second]
    events = match_by_hand(
        session, waiting["id"], second, store=store, actor=network.clerk, now=NOW
    )
    assert events == ["pass_course", "receive_transcript"]
    assert session.scalar(select(Case.state).where(Case.id == second)) == "transcript_received"
    assert session.scalar(select(Case.state).where(Case.id == first)) == "enrolled"
    resolved = session.get(ImportedResult, waiting["id"])
    assert resolved is not None
    assert resolved.status == "resolved"


def test_unknown_learner_waits(session: Session, network: Office) -> None:
    warsaw_case(session, network, name="Somebody Else")
    report = import_transcript(session, EXAMPLE, store=MemoryStore(), now=NOW)
    assert {r["status"] for r in report.results} == {"unmatched"}
    assert all("no student" in r["note"] for r in report.results)


def test_ewp_response_imports(session: Session, network: Office) -> None:
    report = import_transcript(session, EWP, store=MemoryStore(), now=NOW)
    assert report.format.startswith("EWP")
    assert report.results
    assert {r["status"] for r in report.results} == {"unmatched"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><elmo/>', "DOCTYPE"),
        (EXAMPLE.read_bytes()[:4000], "line"),
        (b"", "empty"),
    ],
)
def test_a_bad_file_changes_nothing(
    session: Session, network: Office, content: bytes, message: str
) -> None:
    case_id = warsaw_case(session, network)
    before = (
        session.scalar(select(func.count()).select_from(CaseEvent)),
        session.scalar(select(func.count()).select_from(ImportedResult)),
    )
    with pytest.raises(ValidationFailed) as err:
        import_transcript(session, content, filename="bad.xml", store=MemoryStore(), now=NOW)
    assert "bad.xml" in str(err.value)
    assert message.lower() in str(err.value).lower()
    after = (
        session.scalar(select(func.count()).select_from(CaseEvent)),
        session.scalar(select(func.count()).select_from(ImportedResult)),
    )
    assert after == before
    assert session.scalar(select(Case.state).where(Case.id == case_id)) == "enrolled"
    assert session.scalar(select(func.count()).select_from(Student)) >= 1
