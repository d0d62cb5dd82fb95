"""Deadlines in e-mails are written as the mail's language writes a date: "03.12.2026 24:00"
in German, "3 December 2026 24:00" in English (a deadline at 00:00 is 24:00 of the day before)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tasks.delivery import _local

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("instant", "de", "en"),
    [
        pytest.param(
            dt.datetime(2026, 12, 3, 23, 0, tzinfo=dt.UTC),
            "03.12.2026 24:00",
            "3 December 2026 24:00",
            id="end-of-day",
        ),
        pytest.param(
            dt.datetime(2026, 6, 15, 12, 30, tzinfo=dt.UTC),
            "15.06.2026 14:30",
            "15 June 2026 14:30",
            id="with-time",
        ),
    ],
)
def test_deadlines_read_as_the_language_writes_dates(
    instant: dt.datetime, de: str, en: str
) -> None:
    assert _local(instant, BERLIN, "de") == de
    assert _local(instant, BERLIN, "en") == en


def test_no_deadline_is_none() -> None:
    assert _local(None, BERLIN, "de") is None


def test_a_mail_tells_a_deadline_as_passed_when_it_was_at_its_moment() -> None:
    """An event's message is worded at the event's moment; a reminder's at its sending: a
    deadline gone by then is never written as "by" it (tests/workflow/test_sweep_outbox.py
    has the reminders the sweep finds overtaken)."""
    from config.settings import load_settings
    from tasks.delivery import compose
    from workflow import Addressee, Claimed

    due = dt.datetime(2026, 6, 15, 22, 0, tzinfo=dt.UTC)  # 15 June 24:00 in Berlin
    item = Claimed(
        1, "reminder:1:email:student", 7, None, "email", "student", "transcript.remind", {}, 0
    )
    to = Addressee("s@example.org", "Sam", "en")
    facts = {"case_id": 7, "state": "course_passed", "due_kind": "transcript", "due_at": due}
    settings = load_settings()

    def text(**more: object) -> str:
        message = compose(item, to, {**facts, **more}, settings)
        body = message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())

    before = text(moment=due - dt.timedelta(days=1))
    after = text(moment=due + dt.timedelta(hours=9))
    assert "by 15 June 2026 24:00" in before
    assert "the deadline was 15 June 2026 24:00" not in before
    assert "by 15 June 2026 24:00" not in after
    assert "the deadline was 15 June 2026 24:00" in after
    # A reminder (no moment of its own) is worded when it is sent: now, after June 2026.
    assert "the deadline was 15 June 2026 24:00" in text()
