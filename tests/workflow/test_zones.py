"""Times shown to people are in the institution's time zone: refusals, the outbox, the command
line (the pages: tests/web/test_web_pages.py; e-mails: tests/tasks/test_mail_dates.py). The
home institution here keeps its own zone, New York, unlike the installation's Berlin: a time
said in Berlin time or UTC would be caught."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Case, Institution, Outbox, Role
from tests.factories import CaseFactory, OfferingFactory, Office, musterstadt, student_actor
from workflow.cases import outbox
from workflow.cases.engine import fire
from workflow.errors import GuardFailed, ValidationFailed
from workflow.policy.actors import Actor
from workflow.texts import format_instant

NY = ZoneInfo("America/New_York")


def _in_new_york(session: Session, home_id: int) -> None:
    session.execute(
        update(Institution).where(Institution.id == home_id).values(timezone="America/New_York")
    )


def test_format_instant_writes_a_midnight_deadline_as_24_00_of_its_day() -> None:
    midnight = dt.datetime(2026, 12, 8, 5, 0, tzinfo=dt.UTC)  # 00:00 EST
    assert format_instant(midnight, NY) == "2026-12-07 24:00 EST"
    assert format_instant(midnight + dt.timedelta(minutes=90), NY) == "2026-12-08 01:30 EST"


def test_refusals_say_their_times_in_the_institutions_zone(
    session: Session, network: Office
) -> None:
    _in_new_york(session, network.home_id)
    case = CaseFactory(
        state="rejected", offering=OfferingFactory(past=True), student__matriculation_number="Z1"
    )
    ends = case.appeal_ends_at
    assert ends is not None
    assert ends.astimezone(NY).time() == dt.time(0, 0)  # counted in New York, too
    said = format_instant(ends, NY)
    with pytest.raises(GuardFailed) as early:
        fire(session, case.id, "close", actor=network.clerk, now=ends - dt.timedelta(days=1))
    assert f"the appeal window is open until {said};" in str(early.value)
    with pytest.raises(GuardFailed) as late:
        fire(
            session,
            case.id,
            "appeal",
            actor=student_actor(session, case.id),
            now=ends + dt.timedelta(minutes=1),
            data={"message": "Too late?"},
        )
    assert str(late.value).endswith(f"the appeal window ended at {said}")
    waiting = CaseFactory(
        state="transcript_received",
        offering=OfferingFactory(past=True),
        student__matriculation_number="Z2",
    )
    assert waiting.due_at is not None
    with pytest.raises(GuardFailed) as not_yet:
        fire(
            session,
            waiting.id,
            "lapse",
            actor=Actor.system(Role.TIMER),
            now=waiting.due_at - dt.timedelta(days=2),
        )
    assert f"it is due {format_instant(waiting.due_at, NY)}" in str(not_yet.value)
    for refusal in (early, late, not_yet):
        assert "UTC" not in str(refusal.value)
        assert " EST" in str(refusal.value) or " EDT" in str(refusal.value)


def test_a_refused_outbox_retry_says_when_in_the_institutions_zone(
    session: Session, network: Office
) -> None:
    _in_new_york(session, network.home_id)
    case = CaseFactory(student__matriculation_number="Z3")
    row = session.scalars(select(Outbox).where(Outbox.case_id == case.id).limit(1)).one()
    row.status, row.sent_at = "sent", dt.datetime(2026, 7, 1, 3, 30, tzinfo=dt.UTC)
    with pytest.raises(ValidationFailed, match="delivered at 2026-06-30 23:30 EDT;"):
        outbox.retry(session, row.id, now=dt.datetime(2026, 7, 2, tzinfo=dt.UTC))


def test_the_command_line_says_times_in_the_institutions_zone(
    cli: Callable[..., Any], cli_db: Any
) -> None:
    # The command line runs on the real clock: a case decided two days from now.
    opened = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    with cli_db() as s:
        office = musterstadt()
        _in_new_york(s, office.home_id)
        case = CaseFactory(state="rejected", offering=OfferingFactory(past=True), opened_at=opened)
        case_id, ends = case.id, case.appeal_ends_at
        at = s.scalar(select(Case.updated_at).where(Case.id == case_id))
    assert ends is not None
    assert at is not None
    said = format_instant(ends, NY)
    assert said.endswith((" EST", " EDT"))
    shown = cli("case", "show", str(case_id)).out
    assert f"Deadline:  appeal_window {said}" in shown
    assert said in cli("case", "list").out
    assert format_instant(at, NY) in cli("case", "history", str(case_id)).out
    refused = cli("case", "fire", str(case_id), "close", "--actor", "clerk", check=False)
    assert refused.code == 1
    assert f"open until {said}" in refused.err
    assert "UTC" not in refused.err
