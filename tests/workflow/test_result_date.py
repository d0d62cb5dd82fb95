"""A transcript result without its date keeps the date unknown (never the import day) and
asks a clerk to record it; a decision that credits the course waits for it. A result whose
ECTS credits or EQF level differ from the catalogue's is flagged for the examiner."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Case, CaseEvent
from tests.factories import Office, walk
from tests.workflow.refusals import events
from tests.workflow.test_transcript_import import EXAMPLE, NOW, warsaw_case
from workflow.cases.casefile import record_result_date, set_targets
from workflow.cases.documents import MemoryStore
from workflow.cases.engine import fire
from workflow.cases.queries import case_detail
from workflow.errors import Forbidden, GuardFailed, ValidationFailed
from workflow.transcripts.importing import import_transcript

# The example's one result for the Warsaw course, its <date> taken out.
DATELESS = EXAMPLE.read_bytes().replace(b"<date>2015-03-17</date>", b"", 1)


def imported_without_date(session: Session, network: Office) -> int:
    case_id = warsaw_case(session, network)
    set_targets(session, case_id, ["INF-ML"], actor=network.clerk, now=NOW)
    report = import_transcript(session, DATELESS, store=MemoryStore(), now=NOW, filename="t.xml")
    row = next(r for r in report.results if r["course"] == "1000-217bMRJ")
    assert (row["status"], row["case"]) == ("matched", case_id), row
    return case_id


def test_a_result_without_a_date_keeps_it_unknown(session: Session, network: Office) -> None:
    case_id = imported_without_date(session, network)
    case = session.get(Case, case_id)
    assert case is not None
    assert case.state == "transcript_received"
    assert case.result is not None
    assert case.result["date"] is None  # not the import day (2026-11-02), nor the catalogue's
    passed = session.scalar(
        select(CaseEvent.data).where(CaseEvent.case_id == case_id, CaseEvent.event == "pass_course")
    )
    assert passed is not None
    assert "date" not in passed
    flags = case_detail(session, case_id, actor=network.clerk, now=NOW)["result_flags"]
    assert {"field": "date", "result": None, "catalogue": None} in flags
    # The example's level is EQF 5; the catalogue lists the course at EQF 6. ECTS agree (6).
    assert {"field": "eqf_level", "result": "5", "catalogue": "6"} in flags
    assert not [f for f in flags if f["field"] == "ects"]


def test_a_decision_waits_for_the_date_and_a_clerk_records_it(
    session: Session, network: Office
) -> None:
    case_id = imported_without_date(session, network)
    later = walk(session, case_id, "in_review", now=NOW, store=MemoryStore())
    before = events(session, case_id)
    with pytest.raises(GuardFailed) as refused:
        fire(
            session,
            case_id,
            "recognize",
            actor=network.examiner,
            now=later,
            data={"modules": ["INF-ML"], "grade": "1.7"},
        )
    assert "the date of the partner's result is unknown" in str(refused.value)
    assert "a clerk must record it first" in str(refused.value)
    assert f"recog case result-date {case_id} YYYY-MM-DD" in str(refused.value)
    assert events(session, case_id) == before
    # Only the office records it, and only a date that can be right.
    with pytest.raises(Forbidden, match="it is for the clerk or admin"):
        record_result_date(session, case_id, "2015-03-17", actor=network.examiner, now=later)
    with pytest.raises(ValidationFailed, match="lies in the future"):
        record_result_date(session, case_id, "2099-01-01", actor=network.clerk, now=later)
    with pytest.raises(ValidationFailed, match="before the course started"):
        record_result_date(session, case_id, "2014-01-01", actor=network.clerk, now=later)
    with pytest.raises(ValidationFailed, match="YYYY-MM-DD"):
        record_result_date(session, case_id, "17.03.2015", actor=network.clerk, now=later)
    assert events(session, case_id) == before
    fired = record_result_date(session, case_id, "2015-03-17", actor=network.clerk, now=later)
    assert fired.event == "record_result_date"
    assert fired.to_state == "in_review"
    case = session.get(Case, case_id)
    assert case is not None
    session.refresh(case)
    assert case.result is not None
    assert case.result["date"] == "2015-03-17"
    assert case.result["grade"] == "45.1"  # the rest of the result as it was
    with pytest.raises(GuardFailed, match="it is known already"):
        record_result_date(session, case_id, "2015-03-18", actor=network.clerk, now=later)
    flags = case_detail(session, case_id, actor=network.clerk, now=later)["result_flags"]
    assert [f["field"] for f in flags] == ["eqf_level"]
    fire(
        session,
        case_id,
        "recognize",
        actor=network.examiner,
        now=later,
        data={"modules": ["INF-ML"], "grade": "1.7"},
    )


def test_a_clerk_still_gives_the_date(session: Session, network: Office) -> None:
    case_id = warsaw_case(session, network)
    with pytest.raises(ValidationFailed, match=r"date is required \(the date of the result"):
        fire(session, case_id, "pass_course", actor=network.clerk, now=NOW, data={"grade": "50"})


def test_a_case_without_a_result_has_no_date_to_record(session: Session, network: Office) -> None:
    case_id = warsaw_case(session, network)
    with pytest.raises(GuardFailed, match="it has no partner result yet"):
        record_result_date(session, case_id, "2015-03-17", actor=network.clerk, now=NOW)


def test_ects_that_differ_from_the_catalogue_are_flagged() -> None:
    from workflow.cases.queries import result_flags

    result = {"date": "2026-06-20", "ects": "4.0", "eqf_level": 7}
    assert result_flags(result, ects="5.0", eqf_level=7) == [
        {"field": "ects", "result": "4.0", "catalogue": "5.0"}
    ]
    assert result_flags({**result, "ects": "5"}, ects="5.0", eqf_level=7) == []
    assert result_flags(None, ects="5.0", eqf_level=7) == []
