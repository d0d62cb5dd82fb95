"""Set-up shared by the refusal tests (guards, event fields): a case in a given state, and the
number of its audit events, so a test can show that a refusal wrote nothing."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import CaseEvent
from tests.factories import CaseFactory, OfferingFactory, Office, StudentFactory


def case_in(session: Session, network: Office, state: str, n: int = 0) -> int:
    """A case of the office's home in ``state``, on a course of last term (a planned one on
    a course that starts in two months)."""
    offering = OfferingFactory(upcoming=True) if state == "planned" else OfferingFactory(past=True)
    student = StudentFactory(
        institution_id=network.home_id,
        matriculation_number=f"G{n}",
        name=f"Gina {n}",
        email=f"g{n}@example.org",
    )
    return int(CaseFactory(state=state, student=student, offering=offering).id)


def events(session: Session, case_id: int) -> int:
    return session.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) or 0
