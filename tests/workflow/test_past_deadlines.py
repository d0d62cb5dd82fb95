"""Deadlines that never slip: a deadline already past when a case enters its state is due at
once, and the sweep's next run lapses, closes, escalates or reminds it. Every state of the
procedure that runs a clock is tried (read from the procedure, not listed here)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.procedure import get_procedure
from config.settings import get_settings
from models import Case, CaseEvent, Outbox, Reminder
from tests.factories import TODAY, CaseFactory, OfferingFactory, Office
from workflow.cases.sweep import sweep

# A course that began more than a year before the case is opened: every clock counted from
# its dates (enrolment, result, transcript) has long run out when the case gets there.
OPENED = dt.datetime.combine(TODAY - dt.timedelta(days=30), dt.time(9), tzinfo=dt.UTC)
RESULT = (TODAY - dt.timedelta(days=300)).isoformat()  # the partner's result, long ago


def _entered(session: Session, case_id: int) -> dt.datetime:
    at = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert at is not None
    return at


def test_every_deadline_past_on_entry_is_done_by_the_next_sweep(
    session: Session, network: Office
) -> None:
    settings = get_settings()
    states = [name for name, st in get_procedure().states.items() if st.deadline]
    assert states, "the procedure runs no clock"
    past_on_entry: list[str] = []
    for number, state in enumerate(states):
        case = CaseFactory(
            state=state,
            offering=OfferingFactory(starts_in=-400, code=f"P-{number}"),
            opened_at=OPENED,
            student__matriculation_number=f"PD{number}",
            data={"pass_course": {"date": RESULT}, "fail_course": {"date": RESULT}},
        )
        entered = _entered(session, case.id)
        assert case.due_at is not None, f"{state}: no deadline"
        assert case.due_kind == get_procedure().states[state].deadline
        if case.due_at <= entered:
            past_on_entry.append(state)
            # Due at once: planned for the moment the case entered the state.
            due = session.scalars(
                select(Reminder.due_at).where(
                    Reminder.case_id == case.id, Reminder.done_at.is_(None)
                )
            ).all()
            assert due, f"{state}: nothing planned"
            assert min(due) <= entered, f"{state}: nothing due at once"
            when = entered + dt.timedelta(minutes=1)
        else:
            # A clock counted from the day the state is entered cannot have run out then;
            # the sweep after it has does what the deadline says.
            when = case.due_at + dt.timedelta(hours=settings.reminder_hour + 1)
        result = sweep(session, now=when, settings=settings)
        assert result.claimed >= 1, f"{state}: the sweep at {when} found nothing due"
        session.refresh(case)
        fired = [event for cid, event in result.fired if cid == case.id]
        told = session.scalars(
            select(Outbox.template).where(
                Outbox.case_id == case.id,
                Outbox.event_seq.is_(None),
                Outbox.template.startswith(f"{get_procedure().states[state].deadline}."),
            )
        ).all()
        assert fired or told, f"{state}: its deadline passed and nothing happened"
        if fired:
            assert case.state != state
            last = session.scalar(
                select(CaseEvent.event)
                .where(CaseEvent.case_id == case.id)
                .order_by(CaseEvent.seq.desc())
                .limit(1)
            )
            assert last == fired[0]
    # The clocks counted from the course's dates and its result were all past on entry.
    assert get_procedure().initial in past_on_entry
    assert len(past_on_entry) >= 3, past_on_entry


def test_a_case_opened_months_after_the_course_began_lapses_at_once(
    session: Session, network: Office
) -> None:
    case = CaseFactory(
        offering=OfferingFactory(starts_in=-266, code="LATE"),
        opened_at=OPENED,
        student__matriculation_number="PD-LATE",
    )
    assert case.state == get_procedure().initial
    result = sweep(session, now=OPENED + dt.timedelta(minutes=1), settings=get_settings())
    assert result.fired == [(case.id, "lapse")]
    session.refresh(case)
    assert case.state == "lapsed"
