"""An office's transcript upload keeps no grading table another home institution's cases are
converted by (docs/adr/0014-shared-partner-data.md); the report says why, the transcript
itself is still imported. The operator's import (no home institution) keeps it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import GradingTable, Offering
from tests.factories import CaseFactory, Office, musterstadt
from tests.workflow.test_grading_tables import EWP, NOW, warsaw
from workflow.cases.documents import MemoryStore
from workflow.grading.tables import SHARED_NOTE
from workflow.transcripts.importing import import_transcript


def _tables(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(GradingTable)) or 0


def _shared_with(session: Session, other: Office) -> None:
    """Home B has a case on the Warsaw course (scheme ects): B is converted by its tables."""
    partner = warsaw(session, scheme="ects")
    offering = session.scalars(select(Offering).where(Offering.institution_id == partner)).one()
    CaseFactory(
        state="planned",
        offering=offering,
        student__institution_id=other.home_id,
        student__matriculation_number="B-1",
    )


def test_an_office_upload_keeps_no_table_another_home_uses(
    session: Session, network: Office
) -> None:
    other = musterstadt("uni-b.example")
    _shared_with(session, other)
    report = import_transcript(
        session, EWP, store=MemoryStore(), now=NOW, home_institution_id=network.home_id
    )
    skipped = [t for t in report.tables if t["note"] == SHARED_NOTE]
    assert [t["what"] for t in skipped] == ["EWP table for ISCED-F 0612"]
    assert _tables(session) == 0
    # Home B's own upload, and the operator's import, keep it.
    report = import_transcript(
        session, EWP, store=MemoryStore(), now=NOW, home_institution_id=other.home_id
    )
    assert [t["status"] for t in report.tables if t["table"]] == ["created"]
    assert _tables(session) == 1


def test_the_operators_import_keeps_a_shared_table(session: Session, network: Office) -> None:
    _shared_with(session, musterstadt("uni-b.example"))
    report = import_transcript(session, EWP, store=MemoryStore(), now=NOW)
    assert [t["status"] for t in report.tables if t["table"]] == ["created"]
