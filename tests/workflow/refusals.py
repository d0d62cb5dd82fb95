"""Set-up shared by the refusal tests (guards, event fields): a case in a given state, and the
number of its audit events, so a test can show that a refusal wrote nothing."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import CaseEvent
from workflow.demo import Network, create_case


def case_in(session: Session, network: Network, state: str, n: int = 0) -> int:
    term = "next" if state == "planned" else "past"
    return create_case(
        session,
        network,
        target=state,
        term=term,
        matriculation=f"G{n}",
        name=f"Gina {n}",
        email=f"g{n}@example.org",
    )


def events(session: Session, case_id: int) -> int:
    return session.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) or 0
