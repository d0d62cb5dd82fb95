"""Deadlines as the law counts them, in the institution's zone, and the decision clock that
pauses while the student is asked for information."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import load_settings
from models import Case
from tests.factories import (
    CaseFactory,
    OfferingFactory,
    Office,
    student_actor,
)
from workflow.cases.deadlines import Clocks, add_months, end_of_day, next_clocks
from workflow.cases.engine import fire
from workflow.errors import GuardFailed

BERLIN = ZoneInfo("Europe/Berlin")
SETTINGS = load_settings()


def test_end_of_day_is_local_midnight_across_dst() -> None:
    # 2026-03-29 is the spring change in Berlin (CET -> CEST), 2026-10-25 the autumn one.
    assert end_of_day(dt.date(2026, 3, 28), BERLIN) == dt.datetime(
        2026, 3, 28, 23, 0, tzinfo=dt.UTC
    )
    assert end_of_day(dt.date(2026, 3, 29), BERLIN) == dt.datetime(
        2026, 3, 29, 22, 0, tzinfo=dt.UTC
    )
    assert end_of_day(dt.date(2026, 10, 25), BERLIN) == dt.datetime(
        2026, 10, 25, 23, 0, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29)),
        (dt.date(2026, 3, 15), 1, dt.date(2026, 4, 15)),
        (dt.date(2026, 12, 10), 1, dt.date(2027, 1, 10)),
        (dt.date(2026, 8, 31), 6, dt.date(2027, 2, 28)),
    ],
)
def test_add_months_follows_section_188(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected


def clocks(kind: str | None, before: Clocks, now: dt.datetime) -> Clocks:
    return next_clocks(
        kind,
        before=before,
        now=now,
        zone=BERLIN,
        settings=SETTINGS,
        start_date=dt.date(2026, 4, 1),
        course_end=dt.date(2026, 7, 10),
    )


def test_decision_clock_pauses_and_resumes_with_the_time_left() -> None:
    submitted = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)  # a Monday, CEST
    c1 = clocks("decision", Clocks(), submitted)
    # 42 days from the day after 4 May: ends at 24:00 on 15 June, Berlin time.
    assert c1.due_at == dt.datetime(2026, 6, 15, 22, 0, tzinfo=dt.UTC)
    review = clocks("decision", c1, submitted + dt.timedelta(days=1))
    assert review.due_at == c1.due_at
    asked = submitted + dt.timedelta(days=10)
    paused = clocks("info_reply", review, asked)
    assert paused.decision_due_at is None
    # 14 May (local) to 15 June: 32 whole days left, kept in seconds.
    assert paused.decision_paused_seconds == 32 * 86_400
    assert paused.due_kind == "info_reply"
    answered = asked + dt.timedelta(days=7)
    resumed = clocks("decision", paused, answered)
    assert resumed.due_at == c1.due_at + dt.timedelta(days=7)
    assert resumed.decision_paused_seconds is None
    decided = clocks("appeal_window", resumed, answered + dt.timedelta(days=1))
    assert decided.decision_due_at is None
    assert decided.due_at == decided.appeal_ends_at
    assert clocks(None, decided, answered).due_at is None


def test_a_resumed_decision_deadline_ends_at_local_midnight() -> None:
    # Paused on a Thursday morning, answered a week later in the afternoon: the days left
    # run from the day after the answer and end at 24:00 Berlin time, not at 15:37 + the rest.
    submitted = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
    c1 = clocks("decision", Clocks(), submitted)
    paused = clocks("info_reply", c1, dt.datetime(2026, 5, 14, 7, 12, tzinfo=dt.UTC))
    answered = dt.datetime(2026, 5, 21, 13, 37, tzinfo=dt.UTC)  # 15:37 in Berlin
    resumed = clocks("decision", paused, answered)
    assert resumed.due_at == dt.datetime(2026, 6, 22, 22, 0, tzinfo=dt.UTC)  # Mon 24:00 CEST
    assert resumed.due_at.astimezone(BERLIN).time() == dt.time(0, 0)
    # Answered late in the evening local time (already the next day in Berlin, not in UTC):
    # the local day counts.
    late = clocks("decision", paused, dt.datetime(2026, 5, 21, 22, 30, tzinfo=dt.UTC))
    assert late.due_at == dt.datetime(2026, 6, 23, 22, 0, tzinfo=dt.UTC)


def test_a_resumed_period_ending_on_a_weekend_ends_on_the_next_working_day() -> None:
    submitted = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
    paused = clocks(
        "info_reply", clocks("decision", Clocks(), submitted), submitted + dt.timedelta(days=10)
    )
    # Resumed on Tuesday 19 May: 32 days later is Saturday 20 June -> Monday 22 June.
    resumed = clocks("decision", paused, dt.datetime(2026, 5, 19, 9, 0, tzinfo=dt.UTC))
    assert resumed.due_at == dt.datetime(2026, 6, 22, 22, 0, tzinfo=dt.UTC)


def test_appeal_window_ends_one_month_later_at_local_midnight() -> None:
    notice = dt.datetime(2026, 3, 16, 15, 0, tzinfo=dt.UTC)  # a Monday
    c = clocks("appeal_window", Clocks(), notice)
    assert c.appeal_ends_at == dt.datetime(2026, 4, 16, 22, 0, tzinfo=dt.UTC)  # Thu, CEST


def test_a_period_ending_on_a_weekend_or_holiday_ends_on_the_next_working_day() -> None:
    # 31 January + 1 month = 28 February 2026, a Saturday: the window runs to Monday 2 March.
    c = clocks("appeal_window", Clocks(), dt.datetime(2026, 1, 31, 15, 0, tzinfo=dt.UTC))
    assert c.appeal_ends_at == dt.datetime(2026, 3, 2, 23, 0, tzinfo=dt.UTC)
    # 24 November + 1 month = 24 December (Thu); 25/26 December are holidays, 27 a Sunday.
    xmas = clocks("appeal_window", Clocks(), dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC))
    assert xmas.appeal_ends_at == dt.datetime(2026, 12, 24, 23, 0, tzinfo=dt.UTC)
    c2 = clocks("appeal_window", Clocks(), dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC))
    assert c2.appeal_ends_at == dt.datetime(2026, 12, 28, 23, 0, tzinfo=dt.UTC)
    plain = load_settings(skip_non_working_days=False)
    c3 = next_clocks(
        "appeal_window",
        before=Clocks(),
        now=dt.datetime(2026, 1, 31, 15, tzinfo=dt.UTC),
        zone=BERLIN,
        settings=plain,
        start_date=dt.date(2026, 4, 1),
        course_end=dt.date(2026, 7, 10),
    )
    assert c3.appeal_ends_at == dt.datetime(2026, 2, 28, 23, 0, tzinfo=dt.UTC)


def test_a_case_through_info_request_keeps_its_decision_time(
    session: Session,
    network: Office,
) -> None:
    case_id = CaseFactory(
        state="in_review",
        offering=OfferingFactory(past=True),
        student__matriculation_number="D1",
        student__name="Dora D",
        student__email="d@example.org",
    ).id
    due = session.scalar(select(Case.due_at).where(Case.id == case_id))
    assert due is not None
    at = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert at is not None
    ask = at + dt.timedelta(days=2)
    fire(
        session,
        case_id,
        "request_info",
        actor=network.examiner,
        now=ask,
        data={"message": "Send the syllabus"},
    )
    case = session.get(Case, case_id)
    assert case is not None
    assert case.due_kind == "info_reply"
    assert case.decision_paused_seconds == (due - ask).days * 86_400  # whole days left
    fire(
        session,
        case_id,
        "provide_info",
        actor=student_actor(session, case_id),
        now=ask + dt.timedelta(days=5),
        data={"message": "Attached"},
    )
    session.refresh(case)
    assert case.due_kind == "decision"
    assert case.due_at == due + dt.timedelta(days=5)


def test_appeal_one_second_before_the_end_is_accepted_and_after_refused(
    session: Session,
    network: Office,
) -> None:
    case_id = CaseFactory(
        state="rejected",
        offering=OfferingFactory(past=True),
        student__matriculation_number="A1",
        student__name="Ari A",
        student__email="a@example.org",
    ).id
    ends = session.scalar(select(Case.appeal_ends_at).where(Case.id == case_id))
    assert ends is not None
    student = student_actor(session, case_id)
    with pytest.raises(GuardFailed, match="the appeal window ended"):
        fire(
            session,
            case_id,
            "appeal",
            actor=student,
            now=ends + dt.timedelta(seconds=1),
            data={"message": "I object"},
        )
    fired = fire(
        session,
        case_id,
        "appeal",
        actor=student,
        now=ends - dt.timedelta(seconds=1),
        data={"message": "I object"},
    )
    assert fired.to_state == "appealed"
